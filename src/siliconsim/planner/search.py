"""Search strategies and the sweep that runs them.

A strategy turns the problem into the tasks to evaluate (``Strategy`` Protocol; ``STRATEGIES``
maps a name to a constructor). ``sweep`` runs them on an executor, skips the tasks a checkpoint
already holds, appends each finished chunk to it, reports progress, and returns the results in
task order, so the answer does not depend on the executor or on an interruption.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from siliconsim.models.catalog import load_model
from siliconsim.planner.checkpoint import Checkpoint
from siliconsim.planner.executors import Executor, LocalExecutor
from siliconsim.planner.space import Problem, Task, tasks
from siliconsim.plans import plan_deployment

Progress = Callable[[int, int], None]


class Strategy(Protocol):
    def select(self, problem: Problem) -> list[Task]:
        ...


class Exhaustive:
    """Every layout, precision, mode and speculation setting of every hardware."""

    def select(self, problem: Problem) -> list[Task]:
        return tasks(problem)


class NearSmallest:
    """Layouts up to ``factor`` x the smallest replica that holds the model (per hardware): larger
    replicas rarely pay for their collectives; a pruned search for very large spaces."""

    def __init__(self, factor: int = 8):
        self.factor = factor

    def select(self, problem: Problem) -> list[Task]:
        model = load_model(problem.model)
        out = []
        for t in tasks(problem):
            smallest = _smallest(problem, model, t.hardware, t.dtype)
            if smallest is not None and t.par.chips <= self.factor * smallest:
                out.append(t)
        return out


_SMALLEST: dict[tuple, int | None] = {}


def _smallest(problem: Problem, model: Any, hw: str, dtype: str) -> int | None:
    context = problem.context_tokens
    key = (model.id, hw, problem.what_if, dtype, context)
    if key not in _SMALLEST:
        plan = plan_deployment(model, problem.chip(hw), dtype=dtype, context_tokens=context)
        _SMALLEST[key] = plan.deployment.par.chips if plan.feasible else None  # type: ignore[union-attr]
    return _SMALLEST[key]


STRATEGIES: dict[str, Callable[[], Strategy]] = {"exhaustive": Exhaustive, "near-smallest": NearSmallest}


def sweep(problem: Problem, selected: list[Task], executor: Executor | None = None,
          checkpoint: Checkpoint | None = None, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every selected task's result dict, in task order (finished ones come from ``checkpoint``)."""
    done: dict[str, dict[str, Any]] = dict(checkpoint.done) if checkpoint else {}
    todo = [t for t in selected if t.key not in done]
    total = len(selected)
    count = [total - len(todo)]
    if progress:
        progress(count[0], total)

    def on_done(results: list[dict[str, Any]]) -> None:
        if checkpoint:
            checkpoint.append(results)
        done.update((r["key"], r) for r in results)
        count[0] += len(results)
        if progress:
            progress(count[0], total)

    if todo:
        (executor or LocalExecutor()).run(problem, todo, on_done)
    return [done[t.key] for t in selected]


def evaluated(results: list[dict[str, Any]]) -> int:
    """Configurations evaluated (task batches)."""
    return int(math.fsum(r["evaluated"] for r in results))
