"""Closed-form inference estimates: TTFT, TPOT, tokens/s per user and aggregate throughput.

For a batch of ``B`` requests with ``I`` prompt tokens and ``O`` output tokens on one replica:
- TTFT is the prefill step of all ``B`` prompts (``B*I`` tokens, each attending to ``I/2``
  earlier tokens on average under the causal mask).
- TPOT is the decode step at batch ``B`` with the mean context over the generation,
  ``I + O/2``.
- Aggregate output tokens/s is ``replicas * B * O / (TTFT + O * TPOT)``: each batch's prefill
  is paid once per ``O`` decode steps (continuous batching interleaves it; the total work is the
  same).
All inputs may be NumPy arrays, so sweeps are one vectorised call (see ``sweep``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siliconsim.errors import InputError, require_positive
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.step import StepCost, Work, decode_context, held_tokens
from siliconsim.plans import Deployment, Plan, Verdict, plan_deployment


@dataclass(frozen=True)
class Scenario:
    batch: float = 1
    input_tokens: float = 1024
    output_tokens: float = 128
    # mean context of a decoding sequence; None: input + output / 2 (equal lengths). Lengths that
    # vary make it length-biased (``perf.step.length_biased_context``)
    decode_context_tokens: float | None = None

    def __post_init__(self) -> None:
        require_positive("batch", self.batch)
        require_positive("input_tokens", self.input_tokens)
        require_positive("output_tokens", self.output_tokens)
        if self.decode_context_tokens is not None:
            require_positive("decode_context_tokens", self.decode_context_tokens)

    @property
    def context_tokens(self) -> float:
        return self.input_tokens + self.output_tokens

    @property
    def decode_context(self) -> Any:
        return decode_context(self.input_tokens, self.output_tokens, self.decode_context_tokens)


@dataclass(frozen=True)
class Estimate:
    """One prediction. Times in seconds; ``feasible`` False means the other numbers are NaN."""

    model_id: str
    hardware_id: str
    scenario: Scenario
    plan: Plan
    ttft_s: float = float("nan")
    tpot_s: float = float("nan")
    prefill: StepCost | None = None
    decode: StepCost | None = None
    replicas: int = 1
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.plan.feasible

    @property
    def deployment(self) -> Deployment | None:
        return self.plan.deployment

    @property
    def chips(self) -> int:
        d = self.deployment
        return d.par.chips * self.replicas if d else 0

    @property
    def output_tok_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def aggregate_output_tok_s(self) -> float:
        s = self.scenario
        return self.replicas * s.batch * s.output_tokens / (self.ttft_s + s.output_tokens * self.tpot_s)

    def breakdown(self) -> dict[str, float]:
        """Decode step split by cause (seconds per output token step)."""
        if self.decode is None:
            return {"compute_s": float("nan"), "memory_s": float("nan"), "network_s": float("nan"),
                    "overhead_s": float("nan")}
        return self.decode.breakdown()


def _timings(dep: Deployment, sc: Scenario) -> tuple[StepCost, StepCost]:
    prefill = dep.step(Work(prefill_tokens=np.multiply(sc.batch, sc.input_tokens),
                            prefill_context=np.multiply(sc.input_tokens, 0.5)))
    decode = dep.step(Work(decode_batch=sc.batch, decode_context=sc.decode_context))
    return prefill, decode


def estimate(model: ModelSpec, chip: Chip, scenario: Scenario, *, chips: int | None = None, dtype: str | None = None,
             kv_dtype: str | None = None, replicas: int = 1) -> Estimate:
    """Plan ``model`` on ``chip`` and time one batch of ``scenario``."""
    require_positive("replicas", replicas)
    plan = plan_deployment(model, chip, chips=chips, dtype=dtype, kv_dtype=kv_dtype,
                           context_tokens=scenario.context_tokens, batch=scenario.batch)
    if not plan.feasible:
        return Estimate(model.id, chip.id, scenario, plan, replicas=replicas)
    prefill, decode = _timings(plan.deployment, scenario)  # type: ignore[arg-type]
    return Estimate(model.id, chip.id, scenario, plan, float(prefill.latency_s), float(decode.latency_s),
                    prefill, decode, replicas)


def sweep(dep: Deployment, batch: Any, input_tokens: Any, output_tokens: Any,
          decode_context_tokens: Any = None) -> dict[str, np.ndarray]:
    """Vectorised TTFT/TPOT/throughput over arrays of batch and lengths on one deployment
    (``decode_context_tokens``: see :class:`Scenario`).

    Memory fit is checked per point: infeasible points come back as NaN.
    """
    b, i, o = (np.asarray(x, dtype=float) for x in (batch, input_tokens, output_tokens))
    if np.any(b <= 0) or np.any(i <= 0) or np.any(o <= 0):
        raise InputError("sweep: batch, input_tokens and output_tokens must all be > 0")
    sc = Scenario.__new__(Scenario)  # arrays: skip the scalar checks done above
    object.__setattr__(sc, "batch", b)
    object.__setattr__(sc, "input_tokens", i)
    object.__setattr__(sc, "output_tokens", o)
    object.__setattr__(sc, "decode_context_tokens", decode_context_tokens)
    prefill, decode = _timings(dep, sc)
    ttft, tpot = np.asarray(prefill.latency_s), np.asarray(decode.latency_s)
    fits = b * held_tokens(i, o, decode_context_tokens) <= dep.kv_capacity_tokens
    nan = np.nan
    return {
        "ttft_s": np.where(fits, ttft, nan),
        "tpot_s": np.where(fits, tpot, nan),
        "aggregate_output_tok_s": np.where(fits, b * o / (ttft + o * tpot), nan),
    }


def max_throughput(model: ModelSpec, chip: Chip, input_tokens: float, output_tokens: float, *,
                   chips: int | None = None, dtype: str | None = None, kv_dtype: str | None = None,
                   replicas: int = 1, max_tpot_s: float | None = None,
                   decode_context_tokens: float | None = None) -> Estimate:
    """The batch that maximises aggregate output tokens/s (MLPerf Offline), optionally under a
    TPOT limit. Searches batch sizes on a geometric grid up to the KV-cache capacity.
    ``decode_context_tokens``: see :class:`Scenario`."""
    dc = decode_context_tokens
    sc1 = Scenario(1, input_tokens, output_tokens, dc)
    base = estimate(model, chip, sc1, chips=chips, dtype=dtype, kv_dtype=kv_dtype, replicas=replicas)
    if not base.feasible:
        return base
    dep = base.deployment
    assert dep is not None
    # The planner's layout depends on the batch (a large batch may want data-parallel attention and the
    # KV room it frees): search the batch on a layout, then re-plan at that batch, until the layout
    # stops changing; keep the fastest (layout, batch) seen.
    found: Estimate | None = None
    seen: set[str] = set()
    while dep.describe() not in seen:
        seen.add(dep.describe())
        best = _best_batch(dep, input_tokens, output_tokens, max_tpot_s, dc)
        if best is None:
            break
        est = estimate_on(dep, Scenario(best, input_tokens, output_tokens, dc), replicas)
        if found is None or est.aggregate_output_tok_s > found.aggregate_output_tok_s:
            found = est
        nxt = estimate(model, chip, Scenario(best, input_tokens, output_tokens, dc), chips=dep.par.chips,
                       dtype=dep.dtype, kv_dtype=dep.kv_dtype, replicas=replicas)
        if not nxt.feasible:
            break
        dep = nxt.deployment  # type: ignore[assignment]
    return found if found is not None else base


def max_throughput_on(dep: Deployment, input_tokens: float, output_tokens: float, *, replicas: int = 1,
                      decode_context_tokens: float | None = None) -> Estimate:
    """``max_throughput`` on a given deployment (a published layout) instead of the planner's."""
    best = _best_batch(dep, input_tokens, output_tokens, None, decode_context_tokens) or 1.0
    return estimate_on(dep, Scenario(best, input_tokens, output_tokens, decode_context_tokens), replicas)


def estimate_on(dep: Deployment, sc: Scenario, replicas: int = 1) -> Estimate:
    """The estimate of ``sc`` on ``dep`` as it is (no re-planning): a batch found on a deployment
    priced on that same deployment."""
    prefill, decode = _timings(dep, sc)
    return Estimate(dep.model.id, dep.chip.id, sc, Plan(Verdict(True), dep), float(prefill.latency_s),
                    float(decode.latency_s), prefill, decode, replicas)


def finite_run(dep: Deployment, requests: int, input_tokens: float, output_tokens: float) -> tuple[float, float]:
    """(batch, output tokens/s) of a run of ``requests`` requests of identical lengths, all queued at once
    (a throughput benchmark's fixed dataset): they run in waves of ``batch`` (prefilled together, decoded
    together, finishing together), the last wave with the remainder, so the run takes
    ``floor(N / b) * T(b) + T(N mod b)`` with ``T(x) = TTFT(x) + output_tokens * TPOT(x)``. The batch is the
    one that finishes soonest among a geometric grid up to the KV-cache capacity (and ``requests``) and the
    batches that split the run into equal waves; (nan, nan) when not one request fits."""
    require_positive("requests", requests)
    cap = min(dep.kv_capacity_tokens / (input_tokens + output_tokens), dep.max_batch, requests)
    if cap < 1:
        return math.nan, math.nan
    even = np.ceil(requests / np.arange(1, 65))  # batches that split the run into 1..64 equal waves
    grid = np.unique(np.concatenate([np.floor(np.geomspace(1, cap, 48)), [math.floor(cap)], even[even <= cap]]))
    waves, rest = np.floor(requests / grid), np.mod(requests, grid)
    full = sweep(dep, grid, input_tokens, output_tokens)
    t_full = full["ttft_s"] + output_tokens * full["tpot_s"]
    part = sweep(dep, np.maximum(rest, 1.0), input_tokens, output_tokens)
    t_rest = np.where(rest > 0, part["ttft_s"] + output_tokens * part["tpot_s"], 0.0)
    makespan = waves * t_full + t_rest
    if np.all(np.isnan(makespan)):
        return math.nan, math.nan
    best = int(np.nanargmin(makespan))
    return float(grid[best]), float(requests * output_tokens / makespan[best])


def _best_batch(dep: Deployment, input_tokens: float, output_tokens: float, max_tpot_s: float | None,
                decode_context_tokens: float | None = None) -> float | None:
    """The batch on a geometric grid up to the KV-cache capacity with the highest aggregate throughput
    (None: not even one sequence fits, or none meets ``max_tpot_s``)."""
    cap = min(dep.kv_capacity_tokens / float(held_tokens(input_tokens, output_tokens, decode_context_tokens)),
              dep.max_batch)
    if cap < 1:
        return None
    grid = np.unique(np.floor(np.geomspace(1, cap, 48)))
    res = sweep(dep, grid, input_tokens, output_tokens, decode_context_tokens)
    tput = res["aggregate_output_tok_s"]
    if max_tpot_s is not None:
        tput = np.where(res["tpot_s"] <= max_tpot_s, tput, np.nan)
    if np.all(np.isnan(tput)):
        return None
    return float(grid[int(np.nanargmax(tput))])

