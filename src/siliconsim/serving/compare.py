"""One system's serving figures at one request rate, for ``compare --serve``.

``serve_row(model, chip, rate)`` simulates the ``code-completion`` workload (or another preset)
on the smallest feasible replica of ``model`` on ``chip`` (or ``chips`` per replica) and returns a
flat dict: p99 TTFT/TPOT, goodput under the preset's SLOs, throughputs. Infeasible plans return a
row with ``feasible: False`` and the reason, never an exception.
"""

from __future__ import annotations

from typing import Any

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.serving.config import ServeConfig
from siliconsim.serving.deploy import serve_system
from siliconsim.serving.scenario import WorkloadSpec, build_requests, run_study

ROW_METRICS = ("p99_ttft_ms", "mean_ttft_ms", "p99_tpot_ms", "mean_tpot_ms", "p99_itl_ms", "p99_e2el_ms",
               "request_throughput", "output_throughput", "request_goodput", "slo_attainment", "mean_queue_ms",
               "mean_batch", "max_kv_occupancy", "rejected")


def serve_row(model: Any, chip: Any, rate: float, workload: str = "code-completion", seed: int = 0,
              chips: int | None = None, *, requests: int = 1000, replicas: int = 1, dtype: str | None = None,
              config: ServeConfig | None = None) -> dict[str, Any]:
    """Serving metrics of one system at ``rate`` requests (sessions) per second.

    ``model`` and ``chip`` are ids or loaded specs. The SLOs are the preset's defaults.
    """
    model = load_model(model) if isinstance(model, str) else model
    chip = load_chip(chip) if isinstance(chip, str) else chip
    rs, preset = build_requests(WorkloadSpec(preset=workload, rate_per_s=rate, requests=requests, seed=seed))
    context = float((rs.input_tokens + rs.output_tokens).max())
    system = serve_system(model, chip, chips=chips, dtype=dtype, context_tokens=context)
    row: dict[str, Any] = {"model": model.id, "hardware": chip.id, "workload": workload, "rate_per_s": rate,
                           "seed": seed, "feasible": system.feasible, "reason": system.reason}
    if not system.feasible:
        return row | {k: None for k in ROW_METRICS}
    cfg = config or ServeConfig(replicas=replicas)
    record, _, _ = run_study(system, rs, cfg, slo_ttft_s=preset.slo_ttft_s, slo_tpot_s=preset.slo_tpot_s,
                             series_points=1)
    m = record["metrics"]
    row.update({"deployment": record["deployment"], "chips": record["total_chips"],
                "slo_ttft_ms": m["slo_ttft_ms"], "slo_tpot_ms": m["slo_tpot_ms"]})
    row.update({k: m[k] for k in ROW_METRICS})
    return row
