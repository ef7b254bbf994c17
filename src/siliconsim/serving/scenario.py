"""A whole serving study in one call: requests from a preset or a trace, a planned system,
the simulation and its metrics record. Used by ``simulate`` (CLI) and ``compare --serve``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from siliconsim.errors import InputError
from siliconsim.serving.config import ServeConfig
from siliconsim.serving.deploy import ServedSystem
from siliconsim.serving.engine import simulate
from siliconsim.serving.metrics import summarize
from siliconsim.serving.result import SimResult
from siliconsim.workloads import RequestSet, generate, load_preset, load_presets, read_trace, rescale, take
from siliconsim.workloads.presets import Preset

DEFAULT_REQUESTS = 1000  # for presets when neither a count nor a duration is given


@dataclass(frozen=True)
class WorkloadSpec:
    """Where requests come from: a preset (generated) or a trace (replayed)."""

    preset: str | None = None
    trace: str | None = None
    rate_per_s: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    seed: int = 0


def build_requests(spec: WorkloadSpec) -> tuple[RequestSet, Preset | None]:
    """The requests of ``spec`` and the preset they follow (a trace's matching preset, if any)."""
    if (spec.preset is None) == (spec.trace is None):
        raise InputError("workload: expected exactly one of --workload PRESET or --trace FILE")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, (int, np.integer)) or spec.seed < 0:
        raise InputError(f"--seed {spec.seed}: expected a whole number >= 0")
    if spec.preset is not None:
        preset = load_preset(spec.preset)
        count = spec.requests if spec.requests or spec.duration_s else DEFAULT_REQUESTS
        rng = np.random.default_rng(spec.seed)
        return generate(preset, rng, rate_per_s=spec.rate_per_s, count=count, duration_s=spec.duration_s), preset
    rs = read_trace(spec.trace)
    if spec.rate_per_s:
        rs = rescale(rs, spec.rate_per_s)
    if spec.requests or spec.duration_s:
        rs = take(rs, spec.requests, spec.duration_s)
    preset = next((p for p in load_presets().values() if p.trace == spec.trace), None)
    return rs, preset


def workload_record(rs: RequestSet, spec: WorkloadSpec) -> dict[str, Any]:
    roots = rs.arrival_s[rs.parent < 0]
    span = float(roots[-1] - roots[0]) if roots.size > 1 else 0.0
    return {"source": spec.preset or spec.trace, "kind": "preset" if spec.preset else "trace", "seed": spec.seed,
            "requests": len(rs), "sessions": int(roots.size),
            "offered_rate_per_s": (roots.size - 1) / span if span > 0 else None,
            "mean_input_tokens": float(rs.input_tokens.mean()), "mean_output_tokens": float(rs.output_tokens.mean()),
            "mean_cached_tokens": float(rs.cached_tokens.mean())}


def check_fleet(system: ServedSystem, config: ServeConfig) -> None:
    """Raise InputError when the replicas need more chips than the system scales to (the catalog's
    sourced ``max_chips``); the simulator holds every replica in memory."""
    dep = system.deployment
    replicas = sum(config.pools)
    limit = dep.chip.system.max_chips
    if replicas * dep.par.chips > limit:
        raise InputError(f"--replicas {replicas:,}: {replicas:,} replicas of {dep.par.chips} chip(s) exceed the "
                         f"{limit:,} chips {dep.chip.system.id} scales to; expected at most "
                         f"{max(limit // dep.par.chips, 1):,} replicas")


def run_study(system: ServedSystem, rs: RequestSet, config: ServeConfig, *, slo_ttft_s: float | None,
              slo_tpot_s: float | None, series_points: int = 100,
              progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], SimResult, dict[str, float]]:
    """Simulate and summarize. Returns (deterministic record, raw result, wall-clock figures)."""
    check_fleet(system, config)
    model = system.step_model
    t0 = time.perf_counter()
    result = simulate(model, rs, config, progress=progress)
    wall_s = time.perf_counter() - t0
    metrics = summarize(result, slo_ttft_s, slo_tpot_s, series_points)
    series = metrics.pop("timeseries")
    dep = system.deployment
    prefill, decode = config.pools
    record = {
        "model": dep.model.id, "hardware": dep.chip.id, "deployment": dep.describe(),
        "chips_per_replica": dep.par.chips, "replicas": prefill + decode, "total_chips": dep.par.chips * (prefill + decode),
        "kv_capacity_tokens": int(model.kv_capacity_tokens) if np.isfinite(model.kv_capacity_tokens) else None,
        "config": {**asdict(config), "max_batch": config.effective_max_batch(model.max_batch),
                   "chunk_tokens": config.chunk()},
        "metrics": metrics,
        "timeseries": series,
        "simulator": {"events": result.events, "simulated_s": result.end_s, "steps": int(result.step_s.size),
                      "cost_model_calls": getattr(model, "cost_model_calls", None)},
    }
    timing = {"wall_s": wall_s, "events_per_s": result.events / wall_s if wall_s > 0 else None,
              "simulated_per_wall": result.end_s / wall_s if wall_s > 0 else None}
    return record, result, timing
