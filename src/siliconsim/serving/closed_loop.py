"""Closed-loop concurrency runs: ``N`` requests always in flight, each completion releases the next.

This is how serving sweeps such as InferenceX are measured (vLLM's ``benchmark_serving.py`` with
``--max-concurrency N --request-rate inf``): every request's prompt and output lengths are drawn
uniformly in ``[0.8, 1.0] x nominal`` (``RANDOM_RANGE_RATIO = 0.8``), outputs run to their drawn
length (ignore-EOS). The client runs ``2 N`` warm-up requests, then measures ``10 N`` requests
that start as ``N`` at once; warm-up only warms the engine (caches, compiled graphs), which a
model does not have, so the measured phase alone is simulated, burst start and final drain included.

Two ways to predict such a run, on one replica (a ``plans`` Deployment):

* ``simulate_closed_loop``: the discrete-event engine (``serving.engine``) with ``N`` request
  chains of zero think time (a finished request's slot takes the next prompt at once), lengths
  drawn as above; medians over the requests and output throughput over the whole run, as the
  benchmark reports them.
* ``closed_loop_point``: a closed form of the steady state. With ``B = min(N, max batch,
  KV-cache capacity / (I + O / 2))`` requests in service (engines allocate KV as tokens are
  made and admit on what is held now, so a request holds ``I + O / 2`` on average), one
  request's cycle is ``P_B + O * D_B``: the prefill of the ``B`` prompts it shares the engine
  with (paid once per ``O`` decode steps, as chunked prefill interleaves it) and ``O`` decode
  steps at batch ``B`` and mean context ``I + O / 2``. Output
  throughput is ``B * O / cycle``; TTFT in service is the request's own prefill plus one decode
  step (it is chunked in between steps of the running batch); TPOT is the rest of the cycle over
  ``O - 1`` tokens. Requests beyond ``B`` wait for a slot, so by Little's law the end-to-end
  latency is ``N / request throughput`` and the wait adds to TTFT.

Both add the API's first-token latency outside the engine (``api_overhead_s``: tokenization,
scheduler hand-off, detokenization and streaming of an HTTP server, fitted per chip group on the
sweeps' TTFT) to TTFT. In the closed form the client also holds the slot meanwhile, which
lengthens the cycle when no request waits for a slot; the simulator adds it to TTFT only.

``validate`` scores the suite with the closed form (milliseconds per row); tests check it
against the simulator on a few rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.serving.config import ServeConfig
from siliconsim.serving.engine import simulate
from siliconsim.serving.metrics import latencies_s
from siliconsim.serving.step_model import DeploymentStepModel
from siliconsim.workloads.requests import RequestSet, make_requests

RANGE_RATIO = 0.8  # benchmark_serving.py --random-range-ratio as InferenceX sets it (benchmarks/benchmark_lib.sh)
WARMUP_PER_SLOT = 2  # InferenceX: 2 x concurrency warm-up prompts (a separate phase, not simulated)
MEASURED_PER_SLOT = 10  # InferenceX: 10 x concurrency prompts


@dataclass(frozen=True)
class ClosedLoopPoint:
    """Steady state of a closed-loop run. Times in seconds; NaN when nothing fits."""

    concurrency: int
    in_service: float  # requests the engine runs at once (the rest wait for a slot)
    output_tok_s: float  # output tokens/s of the replica
    tpot_s: float  # time per output token after the first (median request)
    ttft_s: float  # time to first token, waiting for a slot included (median request)
    mean_output_tokens: float = 0.0

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.output_tok_s))

    @property
    def request_s(self) -> float:
        """Requests completed per second."""
        return self.output_tok_s / self.mean_output_tokens if self.mean_output_tokens else float("nan")


def _step_s(dep: Any, work: Any) -> float:
    return float(np.asarray(dep.step(work).latency_s))


def closed_loop_point(dep: Any, concurrency: int, input_tokens: float, output_tokens: float,
                      config: ServeConfig | None = None) -> ClosedLoopPoint:
    """The closed-form steady state of ``concurrency`` requests in flight on ``dep`` (see module doc);
    ``input_tokens``/``output_tokens`` are the mean lengths."""
    from siliconsim.perf.step import Work  # perf is below serving; imported here as step_model does

    cfg = config or ServeConfig()
    i, o, n = float(input_tokens), float(output_tokens), int(concurrency)
    nan = float("nan")
    fit = int(dep.kv_capacity_tokens // (i + o / 2)) if np.isfinite(dep.kv_capacity_tokens) else n
    b = min(n, cfg.effective_max_batch(dep.max_batch), fit)
    if b < 1:
        return ClosedLoopPoint(n, 0.0, nan, nan, nan, o)
    prefill_all = _step_s(dep, Work(prefill_tokens=b * i, prefill_context=i / 2))
    decode = _step_s(dep, Work(decode_batch=b, decode_context=i + o / 2))
    own_prefill = _step_s(dep, Work(prefill_tokens=i, prefill_context=i / 2))
    api = api_overhead_s(dep)
    cycle = prefill_all + o * decode
    ttft_service = own_prefill + decode
    tpot = max(cycle - ttft_service, decode * (o - 1)) / max(o - 1, 1)
    # Little's law: N in flight, each for its wait, its cycle in the engine and the API's latency
    e2e = max(n * cycle / b, cycle + api)
    ttft = ttft_service + (e2e - cycle)  # the API's latency and any wait for a slot
    return ClosedLoopPoint(n, float(b), n * o / e2e, tpot, ttft, o)


def api_overhead_s(dep: Any) -> float:
    """First-token latency of a request served over an HTTP API outside the engine's steps
    (the chip's ``api_overhead``, fitted by ``siliconsim calibrate`` on the serving sweeps; 0 for
    a chip without one). The client holds the request's slot meanwhile, so it also lengthens the
    closed loop's cycle."""
    return float(getattr(dep.chip, "efficiency", {}).get("api_overhead", 0.0))


def closed_loop_requests(concurrency: int, input_tokens: float, output_tokens: float, *,
                         rng: np.random.Generator, per_slot: int = MEASURED_PER_SLOT) -> RequestSet:
    """``concurrency`` chains of ``per_slot`` requests each; a request arrives the moment the one
    before it in its chain completes. Lengths uniform in ``[0.8, 1.0] x nominal`` with the given
    means (nominal = mean / 0.9). Request ``k * concurrency + s`` is the ``k``-th of chain ``s``."""
    n, count = int(concurrency), int(concurrency) * per_slot
    scale = (1.0 + RANGE_RATIO) / 2.0

    def draw(mean: float) -> np.ndarray:
        nominal = mean / scale
        return np.maximum(np.floor(rng.uniform(RANGE_RATIO * nominal, nominal + 1, count)), 1)

    idx = np.arange(count)
    parent = np.where(idx < n, -1, idx - n)
    return make_requests(np.zeros(count), draw(input_tokens), draw(output_tokens), parent=parent,
                         source=f"closed loop x{n}")


def simulate_closed_loop(dep: Any, concurrency: int, input_tokens: float, output_tokens: float, *,
                         seed: int = 0, config: ServeConfig | None = None) -> ClosedLoopPoint:
    """The engine's run of the measured phase (see module doc): median TTFT and TPOT over the
    ``10 N`` requests, output tokens over the time from the first arrival to the last completion."""
    n = int(concurrency)
    reqs = closed_loop_requests(n, input_tokens, output_tokens, rng=np.random.default_rng(seed))
    res = simulate(DeploymentStepModel(dep, dep.kv_dtype), reqs, config or ServeConfig())
    ok = res.completed
    if not ok.any():
        nan = float("nan")
        return ClosedLoopPoint(n, 0.0, nan, nan, nan, float(output_tokens))
    lat = latencies_s(res)
    api = api_overhead_s(dep)  # the engine does not see it: added to each request's first token
    duration = float(np.max(res.finish_s[ok]) - np.min(res.arrival_s[ok]))
    busy = float(np.median(res.step_seqs)) if len(res.step_seqs) else 0.0
    return ClosedLoopPoint(n, busy, float(res.output_tokens[ok].sum()) / duration, float(np.nanmedian(lat["tpot"])),
                           float(np.median(lat["ttft"])) + api, float(output_tokens))
