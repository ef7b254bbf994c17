"""Bounds from datasheet numbers alone: what no implementation on the stated chips can beat.

A measured value past its bound cannot be a plain run of the stated setup: the row used more
chips than stated, speculative decoding, a lower precision, or its numbers were converted
wrongly. Such rows are reported in a section of their own and left out of the headline error.

* Throughput (``aggregate_output_tok_s``): ``chips * dense peak(dtype)`` divided by the matmul
  FLOP each output token costs, prompt included: ``2 * active params * (1 + I/O)`` (Kaplan et
  al. 2020; attention left out, so the bound stays an upper bound).
* Per-user speed: one full read of the active weights per token at 100% of ``chips`` x memory
  bandwidth (or the family's own ``physical_bound_tok_s`` where it has one, e.g. wafer-scale).
* Mean TPOT: the inverse of the per-user bound. TTFT: the prompt's matmul FLOP at ``chips`` x
  dense peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconsim.hardware.spec import Chip
from siliconsim.audit import physical_bound_tok_s
from siliconsim.models.spec import ModelSpec
from siliconsim.validation.suite import POWER_METRICS, Case
from siliconsim.validation.workload import Lengths


@dataclass(frozen=True)
class Bound:
    value: float  # in the row's unit
    upper: bool  # True: the measurement may not exceed it; False: may not fall below it
    basis: str

    def violated_by(self, measured: float) -> bool:
        return measured > self.value * (1 + 1e-9) if self.upper else measured < self.value * (1 - 1e-9)


def _matmul_flop_per_token(model: ModelSpec) -> float:
    return 2.0 * (model.active_params - model.embedding_params())


def per_user_bound(model: ModelSpec, chip: Chip, chips: int, dtype: str) -> tuple[float, str]:
    """Best single-stream tok/s on ``chips`` chips from datasheet numbers (``audit``'s bound)."""
    return physical_bound_tok_s(model, chip, chips, dtype)


def bound(case: Case, model: ModelSpec, chip: Chip, ln: Lengths, chips: int) -> Bound | None:
    """The datasheet bound on ``case``'s metric on ``chips`` chips (None where none applies)."""
    if case.metric in POWER_METRICS:
        return None  # no datasheet bound on wall power or energy per token
    peak = chips * chip.peak_flop_per_s(case.weight_dtype)
    flop = _matmul_flop_per_token(model)
    if case.metric == "aggregate_output_tok_s":
        per_out = flop * (1.0 + ln.input_tokens / ln.output_tokens)
        return Bound(peak / per_out, True, f"{chips} x {peak / chips / 1e15:.3g} PFLOP/s dense over "
                                           f"{per_out / 1e9:.3g} GFLOP per output token (prompt included)")
    if case.metric in ("ttft_ms", "ttft_mean_ms"):
        return Bound(flop * ln.input_tokens / peak * 1e3, False, f"prompt matmul FLOP at {chips} x dense peak")
    if case.is_speculative:
        return None  # several tokens per weight read: the per-token bounds do not apply
    tok_s, basis = per_user_bound(model, chip, chips, case.weight_dtype)
    if not math.isfinite(tok_s) or tok_s <= 0:
        return None
    if case.metric == "output_tok_s_per_user":
        return Bound(tok_s, True, basis)
    return Bound(1e3 / tok_s, False, basis)  # tpot_mean_ms
