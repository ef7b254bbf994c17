"""Executors: run tasks in this process, in local worker processes, or on Ray.

An executor is anything with ``run(problem, tasks, on_done)``: it evaluates every task and calls
``on_done(results)`` in the calling process as chunks finish (in any order). Callers order the
results by task, so every executor gives the same answer. ``EXECUTORS`` maps a name to a
constructor taking ``workers`` and ``address``.

Ray is an optional extra (``pip install 'siliconsim[ray]'``): ``ray`` starts a local cluster
with ``workers`` CPUs, or joins an existing one at ``address``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol

from siliconsim.errors import InputError
from siliconsim.planner.closed_form import evaluate
from siliconsim.planner.space import Problem, Task

OnDone = Callable[[list[dict[str, Any]]], None]
CHUNK_TASKS = 64  # tasks per shipped chunk: a task takes ~1 ms, a round trip to a worker more


def evaluate_chunk(problem: Problem, chunk: Sequence[Task]) -> list[dict[str, Any]]:
    """Evaluate tasks in order (what every worker runs)."""
    return [evaluate(problem, t).as_dict() for t in chunk]


def chunks(tasks: Sequence[Task], size: int = CHUNK_TASKS) -> list[Sequence[Task]]:
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


class Executor(Protocol):
    def run(self, problem: Problem, tasks: Sequence[Task], on_done: OnDone) -> None:
        ...


class LocalExecutor:
    """``workers`` processes (1: this process, no pool)."""

    def __init__(self, workers: int = 1, address: str | None = None):
        if address:
            raise InputError("--ray-address: only with --executor ray")
        self.workers = max(1, int(workers))

    def run(self, problem: Problem, tasks: Sequence[Task], on_done: OnDone) -> None:
        if self.workers == 1:
            for c in chunks(tasks):
                on_done(evaluate_chunk(problem, c))
            return
        with ProcessPoolExecutor(self.workers) as pool:
            pending = {pool.submit(evaluate_chunk, problem, c) for c in chunks(tasks)}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    on_done(f.result())


class RayExecutor:
    """Ray tasks over chunks; a local cluster of ``workers`` CPUs, or the cluster at ``address``."""

    def __init__(self, workers: int = 1, address: str | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("--executor ray: Ray is not installed (pip install 'siliconsim[ray]')") from None
        self.workers, self.address = max(1, int(workers)), address

    def run(self, problem: Problem, tasks: Sequence[Task], on_done: OnDone) -> None:
        import ray

        started = not ray.is_initialized()
        if started:
            kw: dict[str, Any] = {"address": self.address} if self.address else {"num_cpus": self.workers}
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kw)
        try:
            remote = ray.remote(num_cpus=1)(evaluate_chunk)
            ref = ray.put(problem)
            pending = [remote.remote(ref, list(c)) for c in chunks(tasks)]
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                for r in finished:
                    on_done(ray.get(r))
        finally:
            if started:
                ray.shutdown()


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    if name not in EXECUTORS:
        raise InputError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers or (os.cpu_count() or 1) if name == "ray" else workers or 1, address)
