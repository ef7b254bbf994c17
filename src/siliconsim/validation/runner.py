"""Run a validation suite: predict every row, attach its datasheet bound, never skip a row.

``run_suite`` takes optional efficiency overrides per chip id (used by calibration to evaluate
trial parameters without touching the catalog) and returns one :class:`RowResult` per row:
predicted, or not predicted with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from siliconsim.errors import SiliconsimError
from siliconsim.hardware.catalog import load_chip
from siliconsim.hardware.spec import Chip
from siliconsim.models.catalog import load_model
from siliconsim.validation.bounds import Bound, bound
from siliconsim.validation.generations import Multipliers, calibrated, generation_of, on_generation
from siliconsim.validation.scenarios import Prediction, predict
from siliconsim.validation.speculation import as_served
from siliconsim.validation.suite import Case
from siliconsim.validation.workload import lengths

Overrides = Mapping[str, Mapping[str, float]]  # chip id -> {efficiency key: value}


class Scored:
    """Signed and log error of a row result from its ``predicted`` value and ``case.value``
    (shared by the inference and training runners)."""

    @property
    def error_pct(self) -> float:
        """Signed error, predicted relative to measured, in percent."""
        return (self.predicted / self.case.value - 1.0) * 100.0 if self.covered else math.nan  # type: ignore[attr-defined]

    @property
    def log_error(self) -> float:
        return math.log(self.predicted / self.case.value) if self.covered else math.nan  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RowResult(Scored):
    case: Case
    prediction: Prediction
    vendor: str
    family: str
    assumption: str = ""
    bound: Bound | None = None

    @property
    def covered(self) -> bool:
        return self.prediction.covered

    @property
    def predicted(self) -> float:
        return self.prediction.value if self.covered else math.nan


    @property
    def exceeds_bound(self) -> bool:
        return self.bound is not None and self.bound.violated_by(self.case.value)

    @property
    def status(self) -> str:
        if self.exceeds_bound:
            return "exceeds-bound"
        return "predicted" if self.covered else "not-predicted"

    @property
    def reason(self) -> str:
        if self.exceeds_bound:
            assert self.bound is not None
            side = "above" if self.bound.upper else "below"
            where = " on the chosen system (the row gives no chip count)" if self.case.chips is None else ""
            return (f"measured {self.case.value:g} is {side} the datasheet bound {self.bound.value:.4g}{where} "
                    f"({self.bound.basis})")
        return self.prediction.reason


def _chip(chip_id: str, overrides: Overrides | None, cache: dict[str, Chip]) -> Chip:
    if chip_id not in cache:
        chip = load_chip(chip_id)
        if overrides and chip_id in overrides:
            chip = replace(chip, efficiency={**chip.efficiency, **overrides[chip_id]})
        cache[chip_id] = chip
    return cache[chip_id]


def _chips_used(case: Case, pred: Prediction) -> int | None:
    if case.chips is not None:
        return case.chips
    head = pred.layout.split("×")[0].strip() if pred.layout else ""
    return int(head) if head.isdigit() else None


def run_case(case: Case, overrides: Overrides | None = None, cache: dict[str, Chip] | None = None,
             software: Multipliers | None = None) -> RowResult:
    """Predict one row; catalog errors (unknown ids) become the row's reason. A row that ran on an
    older software generation (``validation.generations``) runs on that generation's kernels, with
    ``software``'s multipliers (default: the calibrated ones)."""
    cache = {} if cache is None else cache
    try:
        chip = _chip(case.hardware, overrides, cache)
        model = load_model(case.model)
        gen = generation_of(case)
        if gen is not None:
            chip = on_generation(chip, model, gen, (calibrated() if software is None else software).get(gen.id, {}))
    except SiliconsimError as exc:
        return RowResult(case, Prediction(reason=str(exc)), "unknown", "unknown")
    ln = lengths(case)
    served = as_served(case)[0]  # the decoding its service documents, where the row names none
    pred = predict(served, model, chip, ln)
    if gen is not None and pred.covered:
        pred = replace(pred, layout=f"{pred.layout}; {gen.id} kernels")
    used = _chips_used(case, pred)
    bnd = bound(served, model, chip, ln, used) if used else None
    return RowResult(case, pred, chip.vendor, chip.family, ln.assumption, bnd)


def run_suite(cases: Sequence[Case], overrides: Overrides | None = None,
              progress: Callable[[int, int], None] | None = None, software: Multipliers | None = None) -> list[RowResult]:
    """Every row's result, in suite order."""
    cache: dict[str, Chip] = {}
    out = []
    for i, case in enumerate(cases):
        out.append(run_case(case, overrides, cache, software))
        if progress:
            progress(i + 1, len(cases))
    return out
