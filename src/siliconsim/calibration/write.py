"""Write calibration results: per-chip efficiency overlays and the residuals for error bars.

* ``hardware/data/calibration/<chip>.toml``: ``[efficiency]`` entries with basis
  ``calibrated`` (read back by ``hardware.catalog``), ``[meta]`` with the date, the fit's
  rows and residuals.
* ``validation/data/residuals.toml``: quantiles of the leave-one-group-out log errors per
  (execution family, metric), read by ``validation.errorbars.interval``.

A run without leave-one-group-out (``calibrate --no-logo``) never labels an in-sample figure as
leave-one-group-out: the overlays say ``logo_computed = false`` and give no held-out figure,
``residuals.toml`` is not written (its held-out figures stay as they were), and
``scripts/update_readme_accuracy.py`` refuses to publish until a full run has replaced them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from siliconsim.calibration.fit import GroupFit
from siliconsim.calibration.run import Calibration, split
from siliconsim.hardware.catalog import DATA as HW_DATA
from siliconsim.validation.errorbars import CLOSED_LOOP_SUFFIX, QUANTILES, RESIDUALS_FILE
from siliconsim.validation.runner import RowResult


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(key: str, v: float) -> str:
    return _q(f"{v * 1e6:.3g} us") if key.endswith("overhead") else f"{v:.4g}"


def chip_overlay(chip_id: str, fit: GroupFit, values: dict[str, float], logo_median_pct: float | None,
                 today: str) -> str:
    """The overlay file of one chip. ``logo_median_pct`` is None when leave-one-group-out was not
    run; the notes then say so instead of giving a figure."""
    src = (f"siliconsim calibrate {today}: group '{fit.group.name}' ({', '.join(fit.group.chips)}) fitted on "
           f"{len(fit.rows)} suite rows; multiplier on this chip's prior")
    logo = (f"leave-one-group-out median |error| {logo_median_pct:.1f}% (all rows)" if logo_median_pct is not None
            else "leave-one-group-out not computed (calibrate --no-logo); rerun `make calibrate` for it")
    lines = [f"# Written by `siliconsim calibrate` on {today}. Do not edit by hand; rerun `make calibrate`.",
             "", "[meta]", f"id = {_q(chip_id)}",
             'sources = ["siliconsim validation suite (src/siliconsim/validation/data/dev.csv)"]',
             f"retrieved = {_q(today)}",
             f"logo_computed = {'true' if logo_median_pct is not None else 'false'}",
             f"notes = {_q(f'Regularised least squares on log error; RMS log residual {fit.rms_log_error:.3f} in-sample; {logo}. Group rationale: {fit.group.why}')}",
             "", "[efficiency]"]
    for k, v in values.items():
        lines.append(f"{k} = {{ value = {_value(k, v)}, basis = \"calibrated\", source = "
                     f"{_q(f'{src} x{math.exp(fit.theta[k]):.3f}')} }}")
    return "\n".join(lines) + "\n"


def write_overlays(fits: dict[str, GroupFit], logo_median_pct: float | None, folder: Path | None = None) -> list[Path]:
    folder = folder or HW_DATA / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    out = []
    for fit in fits.values():
        if not fit.rows:
            continue
        for chip_id, values in fit.values().items():
            path = folder / f"{chip_id}.toml"
            _atomic(path, chip_overlay(chip_id, fit, values, logo_median_pct, today))
            out.append(path)
    return out


def _logo_meta(held: Sequence[RowResult]) -> list[str]:
    from siliconsim.validation.summary import summarize

    s = summarize(held)
    vend = ", ".join(f"{_q(k)} = {v['median_ape_pct']:.2f}" for k, v in s["by_vendor"].items())
    rows = ", ".join(f"{_q(k)} = {v['n']}" for k, v in s["by_vendor"].items())
    scen = ", ".join(f"{_q(k)} = {v['median_ape_pct']:.2f}" for k, v in s["by_scenario"].items())
    return [f"logo_median_ape_pct = {s['median_ape_pct']:.2f}", f"logo_mean_ape_pct = {s['mean_ape_pct']:.2f}",
            f"logo_by_vendor_median_ape_pct = {{ {vend} }}", f"logo_by_vendor_rows = {{ {rows} }}",
            f"logo_by_scenario_median_ape_pct = {{ {scen} }}"]


def _sweep_logo_meta(held: Sequence[RowResult]) -> list[str]:
    """Leave-one-(hardware, engine)-group-out figures of the serving-sweep rows, per metric."""
    from siliconsim.validation.summary import summarize_concurrency

    if not held:
        return []
    s = summarize_concurrency(held)
    metric = ", ".join(f"{_q(k)} = {v['median_ape_pct']:.2f}" for k, v in s["by_metric"].items())
    group = ", ".join(f"{_q(k)} = {v['median_ape_pct']:.2f}" for k, v in s["by_hardware_engine_metric"].items())
    return ["[concurrency]", f"rows = {len(held)}", f"predicted = {sum(r.covered for r in held)}",
            f"logo_median_ape_pct = {s['median_ape_pct']:.2f}",
            f"logo_by_metric_median_ape_pct = {{ {metric} }}",
            f"logo_by_hardware_engine_metric_median_ape_pct = {{ {group} }}", ""]


def residuals_toml(held: Sequence[RowResult], today: str) -> str:
    """Quantiles of held-out log errors per (family, metric), and what has validation data."""
    buckets: dict[tuple[str, str], list[float]] = {}
    for r in held:
        if r.covered and not r.exceeds_bound:
            metric = r.case.metric + (CLOSED_LOOP_SUFFIX if r.case.closed_loop else "")
            buckets.setdefault((r.family, metric), []).append(r.log_error)
            buckets.setdefault((r.family, "*"), []).append(r.log_error)
    chips = sorted({r.case.hardware for r in held if r.covered})
    models = sorted({r.case.model for r in held if r.covered})
    lines = ["# Written by `siliconsim calibrate`: leave-one-group-out log errors, log(predicted / measured).",
             "# Read by siliconsim.validation.errorbars.interval. Do not edit by hand.", "",
             "[meta]", f"retrieved = {_q(today)}", f"quantiles = {list(QUANTILES)}",
             f"chips = [{', '.join(_q(c) for c in chips)}]", f"models = [{', '.join(_q(m) for m in models)}]",
             *_logo_meta(split(held, False)), "", *_sweep_logo_meta(split(held, True))]
    for (family, metric), errs in sorted(buckets.items()):
        lo, hi = np.quantile(np.asarray(errs), QUANTILES)
        lines += ["[[bucket]]", f"family = {_q(family)}", f"metric = {_q(metric)}", f"n = {len(errs)}",
                  f"log_error_low = {lo:.4f}", f"log_error_high = {hi:.4f}", ""]
    return "\n".join(lines)


def write_residuals(held: Sequence[RowResult], path: Path | None = None) -> Path:
    path = path or RESIDUALS_FILE
    _atomic(path, residuals_toml(held, dt.date.today().isoformat()))
    return path


def write_generations(cal: Calibration, path: Path | None = None) -> Path:
    """The software generations' fitted multipliers (``validation/data/generations_calibrated.toml``)."""
    from siliconsim.validation.generations import CALIBRATED_FILE, calibrated, calibrated_toml

    gens = cal.generations or {}
    path = path or CALIBRATED_FILE
    _atomic(path, calibrated_toml({g: f.multipliers for g, f in gens.items()}, {g: f.rows for g, f in gens.items()},
                                  {g: f.rms_log_error for g, f in gens.items()}, dt.date.today().isoformat()))
    calibrated.cache_clear()
    return path


def write_calibration(cal: Calibration, overlay_folder: Path | None = None, residuals_path: Path | None = None,
                      generations_path: Path | None = None) -> None:
    """Write the overlays and, only when leave-one-group-out ran, the held-out residuals: an
    in-sample figure is never written where a leave-one-group-out one belongs."""
    from siliconsim.validation.summary import summarize

    logo = summarize(split(cal.held_out, False))["median_ape_pct"] if cal.held_out is not None else None
    write_overlays(cal.fits, logo, overlay_folder)
    # a trial run into its own overlay folder leaves the package's generation file alone
    if cal.generations and (overlay_folder is None or generations_path is not None):
        write_generations(cal, generations_path)
    if cal.held_out is not None:
        write_residuals(cal.held_out, residuals_path)
