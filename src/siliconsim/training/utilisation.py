"""Where a training step's peak goes: the fraction of the chips' dense peak the step turns into
model FLOPs (MFU), and the rest split into time not computing (by breakdown part), inefficiency
while computing, and recomputation, beside the vendor's headline figure.

With ``c`` the compute share of the step, the waterfall is ``1 = (1 - c) + (c - HFU) + (HFU - MFU)
+ MFU``: ``1 - c`` is split over the breakdown's other parts in proportion to their seconds;
``c - HFU`` is the gap between the dense peak and the rate achieved while computing (GEMM
efficiency, and on wafers the PE mesh's SRAM-fed FMAC rate and the release line's fraction);
``HFU - MFU`` is recomputed work (Korthikanti et al. 2022 §5).
"""

from __future__ import annotations

from typing import Any

from siliconsim.training.estimate import TrainEstimate
from siliconsim.training.wafer import mesh_flop_per_s


def utilisation(est: TrainEstimate) -> dict[str, Any]:
    """The step's use of peak as a record (fractions of the bf16 dense peak of all chips)."""
    job = est.job
    if est.breakdown is None:
        return {"feasible": False, "reason": est.reason}
    parts = est.breakdown.as_dict()
    step = est.step_time_s
    c = parts["compute_s"] / step
    rows = [{"part": k, "seconds": v, "fraction_of_peak": v / step} for k, v in parts.items() if k != "compute_s" and v > 0]
    rows.append({"part": "below peak while computing", "seconds": None, "fraction_of_peak": max(c - est.hfu, 0.0)})
    rows.append({"part": "recomputation", "seconds": None, "fraction_of_peak": est.hfu - est.mfu})
    rows.append({"part": "model FLOPs (MFU)", "seconds": None, "fraction_of_peak": est.mfu})
    dense = job.chip.peak_flop_per_s("bf16") * job.chips
    head = job.chip.headline_flop_per_s.get("bf16", 0.0) * job.chips
    return {
        "feasible": True, "model": job.model.id, "hardware": job.chip.id, "chips": job.chips,
        "layout": est.layout.describe(), "step_time_s": step, "tokens_per_s": est.tokens_per_s,
        "model_flop_per_s": est.model_flop_per_token * est.tokens_per_s, "dense_peak_flop_per_s": dense,
        "headline_flop_per_s": head or None, "mfu": est.mfu, "hfu": est.hfu,
        "mfu_of_headline": est.model_flop_per_token * est.tokens_per_s / head if head else None, "rows": rows,
        "mesh_flop_per_s": mesh_flop_per_s(job.chip, job.dtype) * job.chips if job.chip.family == "wafer" else None,
    }
