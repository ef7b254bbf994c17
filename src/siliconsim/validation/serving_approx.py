"""Closed-form operating point of an MLPerf Server/Interactive run on one replica.

Model (documented in the README's accuracy section and ``data/serving.toml``):

* Continuous batching with chunked prefill (Sarathi-Serve). In steady state ``B`` requests
  decode at once and every step also carries the prompt tokens of the requests that arrived
  during it. With arrival rate ``lam`` and mean lengths ``I`` in / ``O`` out, Little's law
  gives ``lam = B / (O * t)``, so each step carries ``B * I / O`` prompt tokens, and
  ``t = step(decode B at context I + O/2, prefill B*I/O tokens at context I/2)``.
* Mean TPOT = ``t``; mean TTFT = ``t * (0.5 + max(1, O / B))``: the residual of the step in
  flight, then the prompt's prefill, served one prompt at a time at the steady-state rate of
  ``B*I/O`` tokens per step (``O/B`` steps, at least one).
* p99 = mean x a tail ratio derived from published p99/mean pairs (``serving.toml``).
* The steady-state prompt load plus the decode tokens must fit the per-step token budget.
* Throughput = ``B / t`` output tokens/s. Among the batches meeting both p99 limits, the
  smallest reaching ``knee_fraction`` of the best feasible throughput is the operating point
  (1.0 for MLPerf: submitters run as close to the limits as the KV cache allows).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.perf.step import Work
from siliconsim.plans import Deployment
from siliconsim.validation.suite import DATA


@dataclass(frozen=True)
class OperatingPoint:
    batch: float
    step_s: float
    ttft_mean_s: float
    tpot_mean_s: float
    output_tok_s: float  # per replica

    @property
    def feasible(self) -> bool:
        return self.batch > 0


NONE = OperatingPoint(0.0, float("nan"), float("nan"), float("nan"), float("nan"))


@functools.cache
def serving_constants() -> dict[str, float]:
    path = DATA / "serving.toml"
    table = read_toml(path)["serving"]
    return {k: sourced(v, "dimensionless", f"{path.name}: serving.{k}").value for k, v in table.items()}


def batch_grid(dep: Deployment, context_tokens: float, points: int = 64) -> np.ndarray:
    """Whole batch sizes from 1 to what the KV cache and the engine allow."""
    cap = min(dep.kv_capacity_tokens / context_tokens, dep.max_batch)
    if cap < 1:
        return np.zeros(0)
    return np.unique(np.floor(np.geomspace(1.0, cap, points)))


def operating_point(dep: Deployment, input_tokens: float, output_tokens: float, ttft_limit_s: float,
                    tpot_limit_s: float) -> OperatingPoint:
    """The steady state at the highest arrival rate meeting both p99 limits (see module doc)."""
    k = serving_constants()
    b = batch_grid(dep, input_tokens + output_tokens)
    if b.size == 0:
        return NONE
    prompt = b * input_tokens / output_tokens
    step = dep.step(Work(prefill_tokens=prompt, prefill_context=input_tokens * 0.5,
                         decode_batch=b, decode_context=input_tokens + output_tokens * 0.5))
    t = np.asarray(step.latency_s, dtype=float) * np.ones_like(b)
    ttft = t * (0.5 + np.maximum(1.0, output_tokens / b))
    ok = ((k["p99_over_mean_tpot"] * t <= tpot_limit_s) & (k["p99_over_mean_ttft"] * ttft <= ttft_limit_s)
          & (prompt + b <= k["prefill_token_budget"]))
    if not ok.any():
        return NONE
    tput = np.where(ok, b / t, 0.0)
    i = int(np.argmax(tput >= k["knee_fraction"] * tput.max()))
    return OperatingPoint(float(b[i]), float(t[i]), float(ttft[i]), float(t[i]), float(tput[i]))
