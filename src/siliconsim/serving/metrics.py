"""Serving metrics, named as vLLM's ``benchmark_serving`` names them.

TTFT: arrival to first token. TPOT: ``(e2el - ttft) / (output_tokens - 1)`` per request with
more than one output token. ITL: every gap between consecutive tokens of a request (pooled over
requests, as vLLM pools them). E2EL: arrival to last token. Each as ``mean_``, ``median_``,
``std_``, ``p50_``, ``p90_`` and ``p99_`` in milliseconds. Throughputs divide by the duration
from the first arrival to the last completion. Goodput counts requests that meet every SLO given
(vLLM's ``--goodput``); a request with one output token has no TPOT and meets a TPOT SLO.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siliconsim.errors import InputError
from siliconsim.serving.result import SimResult

PERCENTILES = (50, 90, 99)
MAX_SERIES_POINTS = 100_000  # bins of the JSON time series; more bins than steps say nothing new


def weighted_percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """``np.percentile(np.repeat(values, counts), q)`` (linear interpolation) without repeating."""
    return weighted_percentiles(values, counts, (q,))[0]


def weighted_percentiles(values: np.ndarray, counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """:func:`weighted_percentile` at each of ``qs``, sorting once."""
    if values.size == 0 or counts.sum() == 0:
        return [float("nan")] * len(qs)
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(counts[order])
    out = []
    for q in qs:
        rank = q / 100.0 * (cum[-1] - 1)
        lo = int(np.floor(rank))
        hi = min(lo + 1, int(cum[-1]) - 1)
        v_lo = v[np.searchsorted(cum, lo, side="right")]
        v_hi = v[np.searchsorted(cum, hi, side="right")]
        out.append(float(v_lo + (v_hi - v_lo) * (rank - lo)))
    return out


def _stats_ms(name: str, x_s: np.ndarray, counts: np.ndarray | None = None) -> dict[str, float]:
    """mean/median/std/pNN of ``x_s`` (weighted by ``counts``) in milliseconds."""
    out: dict[str, float] = {}
    if counts is None:
        counts = np.ones(x_s.size, np.int64)
    total = int(counts.sum())
    median, *pq = weighted_percentiles(x_s, counts, (50, *PERCENTILES))
    if total == 0:
        mean = median = std = float("nan")
    else:
        mean = float(np.dot(x_s, counts) / total)
        std = float(np.sqrt(max(np.dot((x_s - mean) ** 2, counts) / total, 0.0)))
    out[f"mean_{name}_ms"] = mean * 1e3
    out[f"median_{name}_ms"] = median * 1e3
    out[f"std_{name}_ms"] = std * 1e3
    for q, value in zip(PERCENTILES, pq):
        out[f"p{q}_{name}_ms"] = value * 1e3
    return out


def latencies_s(r: SimResult) -> dict[str, np.ndarray]:
    """Per completed request: ttft, tpot (NaN for one-token outputs), e2el, queueing delay."""
    ok = r.completed
    ttft = r.first_token_s[ok] - r.arrival_s[ok]
    e2el = r.finish_s[ok] - r.arrival_s[ok]
    out = r.output_tokens[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (e2el - ttft) / np.maximum(out - 1, 1), np.nan)
    return {"ttft": ttft, "tpot": tpot, "e2el": e2el, "queue": r.sched_s[ok] - r.arrival_s[ok]}


def summarize(r: SimResult, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None,
              series_points: int = 100) -> dict[str, Any]:
    """The metrics dict: counts, throughputs, goodput, latency stats, batch/KV stats and time series."""
    lat = latencies_s(r)
    done = int(r.completed.sum())
    start = float(np.nanmin(r.arrival_s)) if np.any(np.isfinite(r.arrival_s)) else 0.0
    duration_s = float(np.nanmax(r.finish_s)) - start if done else 0.0
    per_s = 1.0 / duration_s if duration_s > 0 else float("nan")
    good = _meets_slo(lat, slo_ttft_s, slo_tpot_s)
    out: dict[str, Any] = {
        "completed": done, "rejected": int(r.rejected.sum()), "rejection_reasons": r.reasons,
        "duration_s": duration_s,
        "total_input_tokens": int(r.input_tokens[r.completed].sum()),
        "total_output_tokens": int(r.output_tokens[r.completed].sum()),
        "request_throughput": done * per_s,
        "output_throughput": float(r.output_tokens[r.completed].sum()) * per_s,
        "total_token_throughput": float((r.input_tokens + r.output_tokens)[r.completed].sum()) * per_s,
        "request_goodput": int(good.sum()) * per_s,
        "slo_attainment": float(good.mean()) if done else float("nan"),
        "slo_ttft_ms": None if slo_ttft_s is None else slo_ttft_s * 1e3,
        "slo_tpot_ms": None if slo_tpot_s is None else slo_tpot_s * 1e3,
        "preemptions": int(r.preemptions.sum()),
    }
    tpot = lat["tpot"][np.isfinite(lat["tpot"])]
    for name, x in (("ttft", lat["ttft"]), ("tpot", tpot), ("e2el", lat["e2el"]), ("queue", lat["queue"])):
        out.update(_stats_ms(name, x))
    out.update(_stats_ms("itl", r.itl_s, r.itl_count))
    out.update(_occupancy(r, duration_s))
    out["timeseries"] = timeseries(r, series_points)
    return out


def _meets_slo(lat: dict[str, np.ndarray], slo_ttft_s: float | None, slo_tpot_s: float | None) -> np.ndarray:
    good = np.ones(lat["ttft"].size, bool)
    if slo_ttft_s is not None:
        good &= lat["ttft"] <= slo_ttft_s
    if slo_tpot_s is not None:
        good &= ~(lat["tpot"] > slo_tpot_s)  # NaN (one output token) meets it
    return good


def _occupancy(r: SimResult, duration_s: float) -> dict[str, float]:
    """Batch size (sequences per step) and KV occupancy (fraction of all replicas' capacity)."""
    if r.step_s.size == 0:
        return {"mean_batch": 0.0, "p50_batch": 0.0, "p99_batch": 0.0, "max_batch": 0,
                "mean_kv_occupancy": 0.0, "max_kv_occupancy": 0.0, "busy_fraction": 0.0}
    busy_s = float(r.step_s.sum())
    span = max(duration_s, 1e-30) * r.replicas
    return {
        "mean_batch": float(np.dot(r.step_seqs, r.step_s) / busy_s),  # time-weighted over busy time
        "p50_batch": float(np.percentile(r.step_seqs, 50)),  # over steps
        "p99_batch": float(np.percentile(r.step_seqs, 99)),
        "max_batch": int(r.step_seqs.max()),
        "mean_kv_occupancy": float(np.dot(r.step_kv_tokens, r.step_s) / (span * r.kv_capacity_tokens)),
        "max_kv_occupancy": float(r.step_kv_tokens.max() / r.kv_capacity_tokens),
        "busy_fraction": busy_s / span,
    }


def timeseries(r: SimResult, points: int = 100) -> dict[str, list[float]]:
    """Running sequences (summed over replicas) and KV occupancy, time-averaged in ``points`` bins.

    Each step is counted in the bin of its midpoint (steps are far shorter than a bin).
    """
    if not 1 <= points <= MAX_SERIES_POINTS:
        raise InputError(f"--series-points {points}: expected a whole number between 1 and {MAX_SERIES_POINTS:,}")
    end = float(r.end_s)
    if r.step_s.size == 0 or end <= 0:
        return {"t_s": [], "running": [], "kv_occupancy": []}
    width = end / points
    mid = r.step_start_s + 0.5 * r.step_s
    b = np.minimum((mid / width).astype(np.int64), points - 1)
    running = np.bincount(b, r.step_seqs * r.step_s, points) / width
    kv = np.bincount(b, r.step_kv_tokens * r.step_s, points) / (width * r.replicas * r.kv_capacity_tokens)
    t = (np.arange(points) + 0.5) * width
    return {"t_s": np.round(t, 6).tolist(), "running": np.round(running, 4).tolist(),
            "kv_occupancy": np.round(kv, 6).tolist()}
