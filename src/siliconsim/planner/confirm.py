"""Confirm a closed-form finalist with the discrete-event serving simulator.

The finalist's exact layout, precision and replica count (or prefill:decode pools)
(the engine's own batch cap; the closed form's batch is a mean, not a cap)
are simulated on the demand's requests (the preset, trace or fixed lengths, Poisson at the
demand rate, seeded); its simulated p99 TTFT and TPOT are compared with the SLO. The simulator
does not model speculative decoding or power caps; such finalists are reported unconfirmed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from siliconsim.models.catalog import load_model
from siliconsim.planner.space import Problem, Task
from siliconsim.plans import default_kv_dtype, fit_layout
from siliconsim.serving.config import ServeConfig
from siliconsim.serving.deploy import ServedSystem
from siliconsim.serving.scenario import run_study
from siliconsim.serving.step_model import DeploymentStepModel
from siliconsim.workloads import RequestSet


SCALE_STEPS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)  # replica multipliers tried when the closed form's fleet misses


@dataclass(frozen=True)
class Confirmation:
    simulated: bool
    meets_slo: bool
    p99_ttft_s: float | None = None
    p99_tpot_s: float | None = None
    requests: int = 0
    note: str = ""
    scale: float = 1.0  # replicas the simulator needed over the closed form's
    pools: tuple[int, int] = (0, 0)  # (prefill, decode) replicas simulated (aggregated: (0, replicas))

    def as_dict(self) -> dict[str, Any]:
        return {"simulated": self.simulated, "meets_slo": self.meets_slo, "p99_ttft_s": self.p99_ttft_s,
                "p99_tpot_s": self.p99_tpot_s, "requests": self.requests, "note": self.note,
                "prefill_replicas": self.pools[0], "decode_replicas": self.pools[1], "replica_scale": self.scale}


def confirm_sized(problem: Problem, point: dict[str, Any], requests: RequestSet) -> Confirmation:
    """``confirm`` at the closed form's fleet, then at larger fleets (``SCALE_STEPS``, within
    ``max_chips``) until the simulated p99s meet the SLO; the last try when none does."""
    last = Confirmation(False, False, note="not simulated")
    for k in SCALE_STEPS:
        pools = (math.ceil(point["prefill_replicas"] * k), math.ceil(point["decode_replicas"] * k))
        if k > 1.0 and sum(pools) * point["chips_per_replica"] > problem.max_chips:
            break
        prev, last = last, confirm(problem, point, requests, pools)
        if last.meets_slo or not last.simulated:
            return replace(last, scale=k)
        if _stalled(prev, last, problem.tpot_p99_s):
            break
    return last


def _stalled(prev: Confirmation, last: Confirmation, tpot_limit_s: float) -> bool:
    """More replicas stopped helping: TPOT still misses and fell by under 10% (prefill stalls, not
    queueing, set it), so larger fleets are not simulated."""
    if not (prev.simulated and last.p99_tpot_s is not None and prev.p99_tpot_s is not None):
        return False
    return last.p99_tpot_s > tpot_limit_s and last.p99_tpot_s > 0.9 * prev.p99_tpot_s


def confirm(problem: Problem, point: dict[str, Any], requests: RequestSet,
            pools: tuple[int, int] | None = None) -> Confirmation:
    """Simulate ``point`` (a closed-form point of ``problem``) on ``requests`` with ``pools``
    (prefill, decode) replicas (default: the point's)."""
    task = Task.from_key(point["key"])
    if task.speculative:
        return Confirmation(False, False, note="not simulated: the serving simulator does not model MTP speculation")
    if problem.chip_power_limit_w is not None:
        return Confirmation(False, False, note="not simulated: the serving simulator does not model power caps")
    model, chip = load_model(problem.model), problem.chip(task.hardware)
    context = float((requests.input_tokens + requests.output_tokens).max())
    dep = fit_layout(model, chip, task.par, task.dtype, default_kv_dtype(task.dtype), context)
    if isinstance(dep, str):
        return Confirmation(False, False, note=f"not simulated: the longest request does not fit ({dep})")
    system = ServedSystem(True, "", dep, DeploymentStepModel(dep, dep.kv_dtype))
    # the closed form's batch is the mean number in flight at the demand, not a cap: the engine keeps its own
    pools = pools or (int(point["prefill_replicas"]), int(point["decode_replicas"]))
    cfg = ServeConfig(disaggregate=pools) if task.mode == "disaggregated" else ServeConfig(replicas=pools[1])
    record, _, _ = run_study(system, requests, cfg, slo_ttft_s=problem.ttft_p99_s, slo_tpot_s=problem.tpot_p99_s,
                             series_points=1)
    m = record["metrics"]
    ttft, tpot = m["p99_ttft_ms"], m["p99_tpot_ms"]
    ok = bool(ttft is not None and tpot is not None and np.isfinite(ttft) and np.isfinite(tpot)
              and ttft * 1e-3 <= problem.ttft_p99_s and tpot * 1e-3 <= problem.tpot_p99_s and not m["rejected"])
    return Confirmation(True, ok, None if ttft is None else ttft * 1e-3, None if tpot is None else tpot * 1e-3,
                        len(requests), pools=pools)
