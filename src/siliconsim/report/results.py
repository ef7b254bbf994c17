"""Turn estimates into records (dicts with SI-named keys) for JSON/CSV, and rows for tables."""

from __future__ import annotations

from typing import Any

from siliconsim.accounting import Accounting
from siliconsim.inference import Estimate

NAN = float("nan")


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
        "kv_capacity_tokens": dep.kv_capacity_tokens if dep else NAN,
        "power_w": acct.power_w if acct else NAN,
        "energy_j_per_token": acct.energy_j_per_token if acct else NAN,
        "usd_per_million_tokens": acct.usd_per_million_tokens if acct else NAN,
        "capex_usd": acct.capex_usd if acct else NAN,
    }
    rec.update(est.extras)
    return rec


def breakdown_shares(b: dict[str, float]) -> str:
    """'mem 82% · comp 3% · net 9% · ovh 6%' from a breakdown dict."""
    total = sum(v for v in b.values() if v == v)
    if not total:
        return "–"
    names = (("compute_s", "comp"), ("memory_s", "mem"), ("network_s", "net"), ("overhead_s", "ovh"))
    parts = sorted(((b[k] / total, short) for k, short in names), reverse=True)
    return " · ".join(f"{short} {share:.0%}" for share, short in parts if share >= 0.005)
