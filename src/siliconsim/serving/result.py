"""What a simulation leaves behind: per-request times, ITL samples and per-step records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.serving.requests import DONE, REJECTED

NAN = float("nan")
_STEP = np.dtype([("t0", np.float64), ("dt", np.float64), ("seqs", np.int64), ("kv", np.float64), ("replica", np.int64)])


@dataclass(frozen=True)
class SimResult:
    """Arrays over requests (NaN where a time never happened) and over steps (all replicas)."""

    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    sched_s: np.ndarray  # first time the request was scheduled (queueing delay ends)
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray
    replica: np.ndarray  # last replica that held it
    completed: np.ndarray  # bool
    rejected: np.ndarray  # bool
    reasons: dict[str, int]  # rejection reason -> count
    itl_s: np.ndarray  # distinct inter-token gaps ...
    itl_count: np.ndarray  # ... and how many tokens had each
    step_start_s: np.ndarray
    step_s: np.ndarray
    step_seqs: np.ndarray
    step_kv_tokens: np.ndarray
    step_replica: np.ndarray
    replicas: int
    roles: tuple[str, ...]
    kv_capacity_tokens: float
    events: int
    end_s: float


def build_result(engine: Any) -> SimResult:
    """Collect an Engine's final state into arrays (engine: serving.engine.Engine)."""
    reqs = engine.reqs

    def times(attr: str) -> np.ndarray:
        return np.array([NAN if getattr(r, attr) is None else getattr(r, attr) for r in reqs], np.float64)

    state = np.array([r.state for r in reqs], np.int64)
    rejected = state == REJECTED
    arrival = np.array([r.arrival_s for r in reqs], np.float64)
    arrival[rejected & (engine.requests.parent >= 0)] = NAN  # later turns of rejected sessions never arrive
    reasons = Counter(r.reason.split(":")[0] for r in reqs if r.state == REJECTED)
    itl_v = [v for rep in engine.replicas for v in rep.itl_values]
    itl_c = [c for rep in engine.replicas for c in rep.itl_counts]
    steps = np.fromiter(engine.steps, _STEP, len(engine.steps))  # (t0, dt, seqs, kv, replica) tuples
    return SimResult(
        arrival_s=arrival, first_token_s=times("first_token_s"), finish_s=times("finish_s"), sched_s=times("sched_s"),
        input_tokens=np.array([r.prompt for r in reqs], np.int64),
        output_tokens=np.array([r.output for r in reqs], np.int64),
        preemptions=np.array([r.preemptions for r in reqs], np.int64),
        replica=np.array([r.replica for r in reqs], np.int64),
        completed=state == DONE, rejected=rejected, reasons=dict(sorted(reasons.items())),
        itl_s=np.array(itl_v, np.float64), itl_count=np.array(itl_c, np.int64),
        step_start_s=steps["t0"].copy(), step_s=steps["dt"].copy(), step_seqs=steps["seqs"].copy(),
        step_kv_tokens=steps["kv"].copy(), step_replica=steps["replica"].copy(), replicas=len(engine.replicas),
        roles=tuple(r.role for r in engine.replicas), kv_capacity_tokens=engine.replicas[0].kv.capacity_tokens,
        events=engine.events, end_s=engine.now)
