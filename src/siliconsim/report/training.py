"""Training estimates as records (SI-named keys, the JSON of ``siliconsim train``) and table rows."""

from __future__ import annotations

import math
from typing import Any

from siliconsim.accounting import CostAssumptions, TrainingAccounting, account_training
from siliconsim.perf.step import StepCost
from siliconsim.training.estimate import TrainEstimate
from siliconsim.training.params import speed_interval

BREAKDOWN_LABELS = {
    "compute_s": "compute", "memory_s": "memory-bound", "tp_comm_s": "TP comm", "dp_comm_s": "DP comm",
    "cp_comm_s": "CP comm", "ep_comm_s": "EP comm", "pp_bubble_s": "pipeline bubble", "optimizer_s": "optimizer",
    "overhead_s": "overhead", "weight_stream_s": "weight streaming", "grad_reduce_s": "gradient reduce",
    "step_bubble_s": "step bubble",
}
# exposed communication between chips, bubbles, and (wafer) weight and gradient streaming
SYNC_KEYS = ("tp_comm_s", "dp_comm_s", "cp_comm_s", "ep_comm_s", "pp_bubble_s", "weight_stream_s", "grad_reduce_s",
             "step_bubble_s")


def busy_step(est: TrainEstimate) -> StepCost:
    """The step as compute-, memory- and network-bound seconds for the power model; bubbles and
    host overhead count as idle."""
    b = est.breakdown
    assert b is not None
    d = b.as_dict()
    streaming = d.get("weight_stream_s", 0.0) + d.get("grad_reduce_s", 0.0)  # wafer breakdowns only
    network = b.tp_comm_s + b.dp_comm_s + b.cp_comm_s + b.ep_comm_s + streaming
    idle = b.pp_bubble_s + b.overhead_s + d.get("step_bubble_s", 0.0)
    return StepCost(b.compute_s, b.memory_s + b.optimizer_s, network, idle, b.step_time_s)


def account(est: TrainEstimate, a: CostAssumptions | None, usd_per_chip_hour: float | None) -> TrainingAccounting | None:
    """Power, energy and cost over the token budget (or one step when no budget was given)."""
    if not est.feasible:
        return None
    duration = est.time_to_train_s if est.time_to_train_s is not None else est.step_time_s
    return account_training(est.job.chip, est.job.chips, busy_step(est), duration, a, usd_per_chip_hour)


def sync_share(est: TrainEstimate) -> float:
    """Share of the step spent on synchronisation and data movement between chips (exposed
    TP, DP, CP and EP communication and the pipeline bubble; on wafers, exposed weight
    streaming, gradient reduction and the step-boundary bubble)."""
    if not est.feasible:
        return float("nan")
    d = est.breakdown.as_dict()  # type: ignore[union-attr]
    return sum(d.get(k, 0.0) for k in SYNC_KEYS) / est.step_time_s


def error_bars(est: TrainEstimate) -> dict[str, dict[str, float]]:
    """10th-90th percentile ranges of tokens/s and step time from the training suite's
    leave-one-group-out errors (`siliconsim calibrate --training`); empty before calibration."""
    iv = speed_interval()
    if iv is None or not est.feasible or est.job.chip.family == "wafer":  # wafer rows are not in that fit's LOGO
        return {}
    lo, hi = iv  # log(predicted / true) speed: the true speed lies between pred/e^hi and pred/e^lo
    tok = est.tokens_per_s
    return {"tokens_per_s": {"low": tok / math.exp(hi), "high": tok / math.exp(lo)},
            "step_time_s": {"low": est.step_time_s * math.exp(lo), "high": est.step_time_s * math.exp(hi)}}


def training_record(est: TrainEstimate, acct: TrainingAccounting | None) -> dict[str, Any]:
    """The JSON schema of ``siliconsim train --format json`` (one estimate)."""
    job = est.job
    rec: dict[str, Any] = {
        "model": job.model.id, "hardware": job.chip.id, "what_if": list(job.chip.what_if), "chips": job.chips, "framework": est.framework,
        "dtype": job.dtype, "seq_len": job.seq_len, "global_batch": job.global_batch,
        "tokens_per_step": job.tokens_per_step, "lora_rank": job.lora_rank or None,
        "feasible": est.feasible, "reason": est.reason,
        "layout": est.layout.as_dict() | {"describe": est.layout.describe()},
        "memory_per_chip_bytes": est.memory.as_dict(),
    }
    if not est.feasible:
        return rec
    rec |= {
        "step_time_s": est.step_time_s, "tokens_per_s": est.tokens_per_s,
        "tokens_per_s_per_chip": est.tokens_per_s / job.chips, "mfu": est.mfu, "hfu": est.hfu,
        "mfu_dtype_peak": est.mfu_dtype_peak, "model_flop_per_token": est.model_flop_per_token,
        "sync_share": sync_share(est), "tokens": job.tokens or None, "time_to_train_s": est.time_to_train_s,
        "breakdown": est.breakdown.as_dict(),  # type: ignore[union-attr]
        "error_bars": error_bars(est),
    }
    if acct is not None:
        rec |= {"power_w": acct.power_w, "energy_j": acct.energy_j, "cost_usd": acct.cost_usd,
                "cost_rented_usd": acct.cost_rented_usd, "usd_per_hour": acct.usd_per_hour,
                "accounting_covers": "the token budget" if job.tokens else "one step"}
    return rec
