"""What the explorer computes for one query: the estimate, its breakdown and a curve, as JSON.

A query is a JSON object (every field optional except model and hardware):

    {"model": "llama-3.1-8b" | null, "model_config": {...HF config.json...} | null,
     "hardware": "h100-sxm", "chip_toml": "...TOML text..." | null, "what_if": ["memory.hbm.bandwidth=6.7 TB/s"],
     "batch": 1, "input_tokens": 1024, "output_tokens": 128, "slo_ttft_ms": 500, "slo_tpot_ms": 50}

Bad input raises a SiliconsimError with a one-line message; the server shows it on the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siliconsim.errors import InputError, require_positive
from siliconsim.hardware.catalog import chip_ids
from siliconsim.hardware.custom import chip_from_text, resolve_chip
from siliconsim.inference import Scenario, sweep
from siliconsim.models.catalog import load_model, model_ids, spec_from_config
from siliconsim.models.spec import ModelSpec
from siliconsim.planner.compare import evaluate
from siliconsim.report.document import Figure, series
from siliconsim.report.figures import BREAKDOWN
from siliconsim.report.html import figure_svg
from siliconsim.report.results import estimate_record

MAX_BATCH = 4096
MAX_TOKENS = 10_000_000
MAX_WHAT_IF = 32
DEFAULTS = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": 1, "input_tokens": 1024, "output_tokens": 128,
            "slo_ttft_ms": 1000, "slo_tpot_ms": 50}


def options() -> dict[str, Any]:
    return {"models": model_ids(), "hardware": chip_ids(), "defaults": DEFAULTS}


def _int(q: dict[str, Any], key: str, top: int) -> int:
    v = q.get(key, DEFAULTS.get(key))
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise InputError(f"{key}: expected a whole number, got {v!r}")
    try:
        n = float(v)
    except ValueError:
        raise InputError(f"{key}: expected a whole number, got {v!r}") from None
    require_positive(key, n)
    if n != int(n) or n > top:
        raise InputError(f"{key}: expected a whole number from 1 to {top:,}, got {v!r}")
    return int(n)


def _model(q: dict[str, Any]) -> ModelSpec:
    if q.get("model_config") is not None:
        return spec_from_config(q["model_config"], "uploaded-model", "uploaded config.json")
    ref = q.get("model")
    if not isinstance(ref, str) or not ref or "/" in ref or ref.endswith(".json"):
        raise InputError(f"model: pick a catalog model id or upload a config.json, got {ref!r}")
    return load_model(ref)


def _chip(q: dict[str, Any]) -> Any:
    sets = q.get("what_if") or []
    if not isinstance(sets, list) or len(sets) > MAX_WHAT_IF or not all(isinstance(s, str) for s in sets):
        raise InputError(f"what_if: expected up to {MAX_WHAT_IF} 'KEY=VALUE' strings")
    sets = [s for s in sets if s.strip()]
    if q.get("chip_toml"):
        return chip_from_text(str(q["chip_toml"]), "uploaded-chip.toml", sets)
    ref = q.get("hardware")
    if not isinstance(ref, str) or not ref or ref not in chip_ids():
        raise InputError(f"hardware: pick a catalog hardware id or upload a chip TOML, got {ref!r}")
    return resolve_chip(ref, sets)


def _slo(q: dict[str, Any], key: str) -> float | None:
    v = q.get(key)
    if v in (None, ""):
        return None
    try:
        return require_positive(key, v) / 1e3
    except TypeError:
        raise InputError(f"{key}: expected a number of milliseconds, got {v!r}") from None


def answer(q: Any) -> dict[str, Any]:
    """The estimate record, SLO verdict, curve points and figures (inline SVG) for a query."""
    if not isinstance(q, dict):
        raise InputError("the request body must be a JSON object")
    model, chip = _model(q), _chip(q)
    sc = Scenario(_int(q, "batch", MAX_BATCH), _int(q, "input_tokens", MAX_TOKENS), _int(q, "output_tokens", MAX_TOKENS))
    row = evaluate(model, chip, sc)
    rec = estimate_record(row.estimate, row.accounting) | {"what_if": list(chip.what_if)}
    out: dict[str, Any] = {"record": rec, "figures": {}, "curve": []}
    if not rec["feasible"]:
        return out
    ttft_s, tpot_s = _slo(q, "slo_ttft_ms"), _slo(q, "slo_tpot_ms")
    out["slo"] = {"ttft_ok": ttft_s is None or rec["ttft_s"] <= ttft_s, "tpot_ok": tpot_s is None or rec["tpot_s"] <= tpot_s}
    out["curve"] = _curve(row.estimate, tpot_s)
    out["figures"] = {"breakdown": figure_svg(_breakdown(rec)), "curve": figure_svg(_curve_figure(out["curve"], rec))}
    return out


def _curve(est: Any, tpot_s: float | None) -> list[dict[str, float]]:
    dep, sc = est.deployment, est.scenario
    cap = max(1.0, min(dep.max_batch, dep.kv_capacity_tokens / sc.context_tokens))
    batches = np.unique(np.round(np.geomspace(1, cap, 24)))
    s = sweep(dep, batches, sc.input_tokens, sc.output_tokens)
    pts = []
    for b, tpot, agg in zip(batches, s["tpot_s"], s["aggregate_output_tok_s"] * est.replicas):
        if np.isfinite(tpot):
            pts.append({"batch": float(b), "tok_s_per_user": 1.0 / float(tpot), "aggregate_tok_s": float(agg),
                        "meets_tpot_slo": tpot_s is None or float(tpot) <= tpot_s})
    return pts


def _breakdown(rec: dict[str, Any]) -> Figure:
    label = [f"{rec['hardware']} ({rec['chips']}×)"]
    segs = tuple(series(name, label, [rec["breakdown"][k] * 1e3]) for k, name in BREAKDOWN)
    return Figure("stacked_bars", "decode step time by cause", "milliseconds per output token", "system", segs)


def _curve_figure(pts: list[dict[str, float]], rec: dict[str, Any]) -> Figure:
    line = series(f"{rec['hardware']}: batch 1 to {pts[-1]['batch']:g}" if pts else rec["hardware"],
                  [p["tok_s_per_user"] for p in pts], [p["aggregate_tok_s"] for p in pts])
    here = series(f"batch {rec['batch']:g}", [rec["output_tok_s_per_user"]], [rec["aggregate_output_tok_s"]])
    return Figure("lines", "throughput vs interactivity (one replica)", "output tok/s per user (tok/s)",
                  "aggregate output (tok/s)", (line,), markers=(here,))
