"""Build a StepModel for a model on a chip through ``plans`` (the same path ``estimate`` takes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siliconsim.plans import plan_deployment
from siliconsim.serving.step_model import DeploymentStepModel


@dataclass(frozen=True)
class ServedSystem:
    """A planned replica (or why none fits) and its step model."""

    feasible: bool
    reason: str
    deployment: Any = None
    step_model: DeploymentStepModel | None = None

    def describe(self) -> str:
        return self.deployment.describe() if self.deployment is not None else f"infeasible: {self.reason}"


def serve_system(model: Any, chip: Any, *, chips: int | None = None, dtype: str | None = None,
                 kv_dtype: str | None = None, context_tokens: float = 8192, batch: float = 1) -> ServedSystem:
    """Plan one replica of ``model`` (a ModelSpec) on ``chip`` (a Chip) and wrap it for the engine.

    ``context_tokens`` is the context the plan sizes memory for; on SRAM machines it decides how
    much KV cache remains, which the simulation then sees as ``kv_capacity_tokens``.
    """
    plan = plan_deployment(model, chip, chips=chips, dtype=dtype, kv_dtype=kv_dtype,
                           context_tokens=context_tokens, batch=batch)
    if not plan.feasible:
        return ServedSystem(False, plan.reason)
    dep = plan.deployment
    return ServedSystem(True, "", dep, DeploymentStepModel(dep, dep.kv_dtype))
