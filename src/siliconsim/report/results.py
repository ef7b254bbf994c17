"""Turn estimates into records (dicts with SI-named keys) for JSON/CSV, and rows for tables."""

from __future__ import annotations

import math
from typing import Any

from siliconsim.accounting import Accounting
from siliconsim.inference import Estimate
from siliconsim.validation.errorbars import interval

NAN = float("nan")
BARRED = ("ttft_s", "tpot_s", "output_tok_s_per_user", "aggregate_output_tok_s")


def error_bars(est: Estimate, values: dict[str, float]) -> dict[str, dict[str, Any]]:
    """10th-90th percentile range of each headline figure from the validation residuals of its
    execution family and metric; ``basis`` says whether chip and model were validated."""
    dep = est.deployment
    if dep is None:
        return {}
    out = {}
    for key in BARRED:
        iv = interval(est.hardware_id, dep.chip.family, est.model_id, key)
        low, high = iv.bounds(values[key])
        out[key] = {"low": low, "high": high, "basis": iv.basis, "n": iv.n}
    return out


def with_range(value: float, bar: dict[str, Any] | None, unit: str = "", scale: float = 1.0) -> str:
    """'6.67 ms (5.9–8.1)' with an 'extrapolated' mark when the chip or model has no validation data."""
    from siliconsim.report.render import fmt, fmt_short

    text = f"{fmt(value * scale)}{unit}"
    if not bar or bar["low"] != bar["low"]:
        return text
    lo, hi = sorted((bar["low"] * scale, bar["high"] * scale))
    mark = "" if bar["basis"] == "validated" else ", extrap."
    return f"{text} ({fmt_short(lo)}–{fmt_short(hi)}{mark})"


def whole_tokens(n: float) -> int | None:
    """A token capacity as the whole tokens it holds (None when unbounded)."""
    return int(math.floor(n)) if math.isfinite(n) else None


def slo_text(slo_ttft_ms: float | None, slo_tpot_ms: float | None) -> str:
    """'TTFT ≤ 500 ms, TPOT ≤ 50 ms', or what goodput means when no SLO was given."""
    from siliconsim.report.render import fmt

    parts = [f"{name} ≤ {fmt(v)} ms" for name, v in (("TTFT", slo_ttft_ms), ("TPOT", slo_tpot_ms)) if v is not None]
    return ", ".join(parts) if parts else "no SLO given, so every completed request counts"


def estimate_record(est: Estimate, acct: Accounting | None) -> dict[str, Any]:
    """The JSON schema of ``siliconsim estimate --format json``."""
    dep = est.deployment
    rec: dict[str, Any] = {
        "model": est.model_id,
        "hardware": est.hardware_id,
        "feasible": est.feasible,
        "reason": est.plan.reason,
        "chips": est.chips,
        "replicas": est.replicas,
        "parallel": dep.par.describe() if dep else None,
        "dtype": dep.dtype if dep else None,
        "weights": dep.weights_label if dep else None,
        "kv_dtype": dep.kv_dtype if dep else None,
        "batch": est.scenario.batch,
        "input_tokens": est.scenario.input_tokens,
        "output_tokens": est.scenario.output_tokens,
        "ttft_s": est.ttft_s,
        "tpot_s": est.tpot_s,
        "output_tok_s_per_user": est.output_tok_s_per_user if est.feasible else NAN,
        "aggregate_output_tok_s": est.aggregate_output_tok_s if est.feasible else NAN,
        "breakdown": est.breakdown(),
        "prefill_breakdown": est.prefill.breakdown() if est.prefill is not None else None,
        "memory_per_chip": dep.memory.as_dict() if dep else None,
        "kv_capacity_tokens": whole_tokens(dep.kv_capacity_tokens) if dep else None,
        "power_w": acct.power_w if acct else NAN,
        "energy_j_per_token": acct.energy_j_per_token if acct else NAN,
        "usd_per_million_tokens": acct.usd_per_million_tokens if acct else NAN,
        "usd_per_mtok_input": acct.usd_per_mtok_input if acct else NAN,
        "usd_per_mtok_output": acct.usd_per_mtok_output if acct else NAN,
        "usd_per_mtok_blended": acct.usd_per_mtok_blended if acct else NAN,
        "pricing": acct.pricing if acct else "",
        "capex_usd": acct.capex_usd if acct else NAN,
    }
    rec["error_bars"] = error_bars(est, rec) if est.feasible else {}
    rec["roofline"] = _roofline(dep) if dep else None
    rec.update(est.extras)
    return rec


def _roofline(dep: Any) -> dict[str, float]:
    """Per-chip ceilings of a roofline: dense peak at the deployment's matmul type and the
    bandwidth of the memory that holds the weights (HBM, else on-chip SRAM)."""
    chip = dep.chip
    tier = chip.tier("hbm") or chip.tier("sram") or chip.memory[0]
    return {"peak_flop_per_s": chip.peak_flop_per_s(dep.dtype), "bandwidth_bytes_per_s": tier.bandwidth_bytes_per_s,
            "memory": tier.name}


def breakdown_shares(b: dict[str, float]) -> str:
    """'mem 82% · comp 3% · net 9% · ovh 6%' from a breakdown dict."""
    total = sum(v for v in b.values() if v == v)
    if not total:
        return "–"
    names = (("compute_s", "comp"), ("memory_s", "mem"), ("network_s", "net"), ("overhead_s", "ovh"))
    parts = sorted(((b[k] / total, short) for k, short in names), reverse=True)
    return " · ".join(f"{short} {share:.0%}" for share, short in parts if share >= 0.005)
