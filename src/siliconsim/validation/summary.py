"""Error statistics of a validation run: headline, breakdowns, and the rows set aside.

The headline (median and mean absolute percentage error) is over predicted rows whose
measurement is within its datasheet bound. Rows past a bound are listed with a likely cause;
rows that could not be predicted are listed with the reason. No row is dropped silently.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from siliconsim.validation.runner import RowResult


def _group_stats(rows: Sequence[RowResult]) -> dict[str, Any]:
    ape = [abs(r.error_pct) for r in rows]
    return {"n": len(rows),
            "median_ape_pct": statistics.median(ape) if ape else None,
            "mean_ape_pct": statistics.fmean(ape) if ape else None,
            "median_error_pct": statistics.median(r.error_pct for r in rows) if rows else None}


def breakdown(rows: Sequence[RowResult], key: Callable[[RowResult], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[RowResult]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return {k: _group_stats(v) for k, v in sorted(groups.items())}


def likely_cause(r: RowResult) -> str:
    """A short guess at why a measurement beats a datasheet bound."""
    notes = r.case.notes.lower()
    if r.case.is_speculative or "undisclosed" in notes or "speculat" in notes:
        return "decoding method undisclosed: speculative decoding likely"
    if r.case.chips is None:
        return "chip count not disclosed: more chips than the minimum that holds the model"
    return "precision, chip count or speculation differs from what the row states"


def headline_rows(results: Sequence[RowResult]) -> list[RowResult]:
    return [r for r in results if r.covered and not r.exceeds_bound]


def summarize(results: Sequence[RowResult]) -> dict[str, Any]:
    """The summary object of ``siliconsim validate --format json``."""
    head = headline_rows(results)
    overall = _group_stats(head)
    covered = sum(r.covered for r in results)
    return {
        "rows": len(results),
        "predicted": covered,
        "coverage_pct": 100.0 * covered / len(results) if results else 0.0,
        "headline_rows": len(head),
        "median_ape_pct": overall["median_ape_pct"],
        "mean_ape_pct": overall["mean_ape_pct"],
        "median_error_pct": overall["median_error_pct"],
        "by_vendor": breakdown(head, lambda r: r.vendor),
        "by_metric": breakdown(head, lambda r: r.case.metric),
        "by_scenario": breakdown(head, lambda r: r.case.scenario),
        "by_trust": breakdown(head, lambda r: r.case.trust),
        "by_speculative": breakdown(head, lambda r: "speculative" if r.case.is_speculative else "none"),
        "by_hardware": breakdown(head, lambda r: r.case.hardware),
        "exceeds_bound": [{"id": r.case.id, "reason": r.reason, "likely_cause": likely_cause(r)}
                          for r in results if r.exceeds_bound],
        "not_predicted": [{"id": r.case.id, "reason": r.reason}
                          for r in results if not r.covered and not r.exceeds_bound],
        "chips_chosen": [r.case.id for r in results if r.prediction.chips_chosen],
        "assumptions": sorted({r.assumption for r in results if r.assumption}),
    }


def row_record(r: RowResult) -> dict[str, Any]:
    """One row of ``siliconsim validate --format json``."""
    return {"id": r.case.id, "hardware": r.case.hardware, "model": r.case.model, "scenario": r.case.scenario,
            "metric": r.case.metric, "predicted": r.predicted, "measured": r.case.value,
            "error_pct": r.error_pct, "status": r.status, "reason": r.reason, "layout": r.prediction.layout,
            "chips_chosen": r.prediction.chips_chosen, "assumption": r.assumption}


def summarize_concurrency(results: Sequence[RowResult]) -> dict[str, Any]:
    """The summary of a serving-sweep suite (``inferencex-dev.csv``), scored apart from the dev
    headline: the usual breakdowns plus median |error| per (hardware, engine) and per metric within
    it, and how many rows ran on their published layout. The hbm efficiencies are fitted on these
    rows' throughput and TPOT too (``siliconsim calibrate``), so the figure to quote is the
    leave-one-(hardware, engine)-group-out one that calibration writes to ``residuals.toml``."""
    out = summarize(results)
    head = headline_rows(results)
    out["by_hardware_engine"] = breakdown(head, lambda r: f"{r.case.hardware} {r.case.engine or '?'}")
    out["by_hardware_engine_metric"] = breakdown(
        head, lambda r: f"{r.case.hardware} {r.case.engine or '?'} {r.case.metric}")
    out["published_layout_rows"] = sum(r.case.tp is not None for r in results if r.covered)
    out["planner_layout_rows"] = sum(r.case.tp is None for r in results if r.covered)
    return out
