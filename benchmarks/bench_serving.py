"""Serving simulator speed: the whole Azure code trace (8,819 requests) on 8×H100.

Prints wall time, simulated events per second and simulated time / wall time for:
- a LinearStepModel of similar cost to Llama-3.1-70B FP8 on 8×H100 (TP8): ~5 ms decode steps,
  ~14 µs per prompt token;
- the real cost model (``plans`` → ``dep.step``), cold (grid filled during the run) and warm;
- the same trace rescaled to 4× its rate, and 4 replicas at 10× its rate.

Bars (issue): ≤ 2 s wall for the code trace on 8×H100, ≥ 1,000× faster than real time. Figures
are printed, never asserted. Run: ``PYTHONPATH=src python3 benchmarks/bench_serving.py``.
"""

from __future__ import annotations

import time

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.serving import LinearStepModel, ServeConfig, simulate
from siliconsim.serving.deploy import serve_system
from siliconsim.workloads import read_trace, rescale

FAKE_8XH100_70B = LinearStepModel(kv_capacity_tokens=3.0e6, max_batch=2048, overhead_s=1.8e-3, weights_s=3.5e-3,
                                  per_seq_s=1e-5, per_prefill_token_s=1.4e-5, per_context_token_s=1e-9)


def bench(label: str, model, rs, config: ServeConfig, repeats: int = 3) -> None:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = simulate(model, rs, config)
        best = min(best, time.perf_counter() - t0)
    calls = getattr(model, "cost_model_calls", None)
    extra = f", {calls} cost-model calls" if calls is not None else ""
    print(f"{label:58s} {len(rs):6d} req  {r.events:8,d} events  {best:6.3f} s wall  "
          f"{r.events / best:10,.0f} events/s  {r.end_s / best:9,.0f}× real time{extra}")


def main() -> None:
    rs = read_trace("azure-code")
    print(f"Azure code trace: {len(rs)} requests over {rs.arrival_s[-1]:.0f} s (best of 3 unless noted)")
    bench("fake 8×H100 70B-FP8 step model, 1 replica", FAKE_8XH100_70B, rs, ServeConfig())
    system = serve_system(load_model("llama-3.1-70b"), load_chip("h100-sxm"), chips=8, dtype="fp8")
    print(f"real cost model: {system.describe()}, KV capacity {system.step_model.kv_capacity_tokens:,.0f} tokens")
    cold = serve_system(load_model("llama-3.1-70b"), load_chip("h100-sxm"), chips=8, dtype="fp8").step_model
    bench("real 8×H100 70B-FP8, cold grid (single run)", cold, rs, ServeConfig(), repeats=1)
    bench("real 8×H100 70B-FP8, warm grid", cold, rs, ServeConfig())
    bench("real 8×H100 70B-FP8, trace at 4× rate", cold, rescale(rs, 4 * 2.566), ServeConfig())
    bench("real 4 replicas of 8×H100 70B-FP8, trace at 10× rate", cold, rescale(rs, 25.66), ServeConfig(replicas=4))
    bench("real 8×H100 70B-FP8, disaggregated 1:1", cold, rs, ServeConfig(disaggregate=(1, 1)))


if __name__ == "__main__":
    main()
