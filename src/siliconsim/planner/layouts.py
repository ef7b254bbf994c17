"""Layout search over a fixed chip budget: how to split ``total`` chips into equal replicas.

Used by the planner and by validation (an MLPerf submission fixes the chip count, not the replica
size). ``best_split`` tries every replica size that divides the budget and holds the model and
keeps the split an ``evaluate`` callback scores highest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import ModelSpec
from siliconsim.plans import Plan, plan_deployment

T = TypeVar("T")
Scored = tuple[float, T]  # (score of the split, e.g. aggregate throughput; whatever the caller keeps)


def replica_sizes(model: ModelSpec, chip: Chip, total: int, dtype: str, context: float) -> list[int]:
    """Replica sizes that divide ``total`` chips and hold the model, fewest chips first."""
    out = []
    for n in range(1, total + 1):
        if total % n == 0 and plan_deployment(model, chip, chips=n, dtype=dtype, context_tokens=context).feasible:
            out.append(n)
    return out


def best_split(model: ModelSpec, chip: Chip, total: int, dtype: str, context: float,
               evaluate: Callable[[int, int], Scored], fixed: int | None = None) -> Scored | Plan | str:
    """The highest-scoring ``evaluate(replica_chips, replicas)`` over the splits of ``total`` chips.

    Returns the winning (score, value); when no split is scored finite, the last split's pair; a
    ``Plan`` (infeasible, with its reason) when no size holds the model; a reason string when
    ``fixed`` (a stack's replica size) is not a usable split.
    """
    sizes = replica_sizes(model, chip, total, dtype, context)
    if fixed is not None:
        if fixed not in sizes:
            return (f"the row's stack runs {fixed}-chip replicas, which do not divide {total} "
                    f"chips or do not hold {model.id}")
        sizes = [fixed]
    if not sizes:
        return plan_deployment(model, chip, chips=total, dtype=dtype, context_tokens=context)
    scored = [evaluate(n, total // n) for n in sizes]
    good = [s for s in scored if math.isfinite(s[0])]
    return max(good, key=lambda s: s[0]) if good else scored[-1]


def serving_unit_chips(model: ModelSpec, chip: Chip, dtype: str | None, context: float) -> int | Plan:
    """Chips of the smallest whole number of nodes that holds ``model``: the vendor's unit of
    deployment, for a per-user speed measured on a service that publishes no chip count.

    Services hand a model whole nodes of their system (``chips_per_node`` in the system catalog:
    a 16-socket SambaRack, an 8-GPU HGX board, an 8-chip GroqNode, one CS-3), not the fewest
    chips whose memory holds it: SambaNova serves Llama-3.1-405B and DeepSeek-R1 on one 16-RDU
    rack (see ``hardware/data/systems/sambanova-sn40l-16.toml``). Returns the infeasible ``Plan``
    when no system holds the model.
    """
    plan = plan_deployment(model, chip, dtype=dtype, context_tokens=context)
    if not plan.feasible:
        return plan
    node = chip.system.chips_per_node
    return math.ceil(plan.deployment.par.chips / node) * node  # type: ignore[union-attr]
