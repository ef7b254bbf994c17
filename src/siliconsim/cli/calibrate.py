"""`siliconsim calibrate`: fit the hbm efficiencies on the validation suite and write them."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from siliconsim.calibration.params import KEYS
from siliconsim.calibration.run import Calibration, calibrate
from siliconsim.calibration.write import write_calibration
from siliconsim.cli.args import add_format
from siliconsim.hardware.catalog import clear_caches
from siliconsim.report.render import json_document, print_rich, table, write_text
from siliconsim.validation.errorbars import clear_cache
from siliconsim.validation.suite import check_catalog_ids, load_cases

CALIBRATION_SUITES = ("dev", "concurrency")  # shipped suites the hbm efficiencies are fitted on


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit efficiency parameters on the validation suite",
                       description="Fit compute/memory efficiency and overheads per chip group (regularised least "
                                   "squares on log error), report leave-one-group-out error, and write "
                                   "hardware/data/calibration/<chip>.toml and validation/data/residuals.toml.")
    p.add_argument("--cases", metavar="FILE", action="append",
                   help="suite CSV or shipped suite name, repeatable (default: the packaged dev.csv and the "
                        "InferenceX serving sweeps, inferencex-dev.csv)")
    p.add_argument("--no-logo", action="store_true",
                   help="skip the leave-one-group-out refits (one refit per (hardware, model) group; most of the "
                        "run time): the fit and in-sample error only; the leave-one-group-out figures in the "
                        "calibration files are left as they were")
    p.add_argument("--dry-run", action="store_true", help="report only; write no files")
    p.add_argument("--training", action="store_true",
                   help="fit the training model on the training suite instead (training/data/calibrated.toml, ~1 min)")
    add_format(p)


def _record(cal: Calibration) -> dict[str, Any]:
    params = {name: {"chips": list(f.group.chips), "rows": len(f.rows), "rms_log_error": f.rms_log_error,
                     "multipliers": {k: math.exp(v) for k, v in f.theta.items()}, "values": f.values()}
              for name, f in cal.fits.items()}
    gens = {gid: {"rows": list(f.rows), "rms_log_error": f.rms_log_error, "multipliers": dict(f.multipliers)}
            for gid, f in (cal.generations or {}).items()}
    keys = ("median_ape_pct", "mean_ape_pct", "coverage_pct", "by_vendor", "by_metric", "by_scenario")
    rec = {"free_parameters": cal.config.n_parameters + sum(len(g["multipliers"]) for g in gens.values()),
           "groups": params, "generations": gens,
           "summary": {k: {x: v[x] for x in keys} for k, v in cal.summaries().items()}}
    if any(r.case.closed_loop for r in cal.fitted):
        rec["summary_sweeps"] = {k: {x: v[x] for x in keys} for k, v in cal.summaries(sweeps=True).items()}
    return rec


def _render(rec: dict[str, Any], out: str | None) -> None:
    rows = []
    for name, g in rec["groups"].items():
        rows.append((name, ", ".join(g["chips"]), g["rows"], *(f"×{g['multipliers'][k]:.2f}" for k in KEYS),
                     f"{g['rms_log_error']:.3f}"))
    t1 = table(f"fitted multipliers on the chip priors ({rec['free_parameters']} free parameters in all)",
               ["group", "chips", "rows", *KEYS, "rms log err"], rows, justify_right=(2, 3, 4, 5, 6, 7))
    srows = []
    for phase, s in rec["summary"].items():
        vend = ", ".join(f"{k} {v['median_ape_pct']:.0f}%" for k, v in s["by_vendor"].items())
        srows.append((phase, f"{s['median_ape_pct']:.1f}%", f"{s['mean_ape_pct']:.1f}%", vend))
    for phase, s in rec.get("summary_sweeps", {}).items():
        per = ", ".join(f"{k} {v['median_ape_pct']:.0f}%" for k, v in s["by_metric"].items())
        srows.append((f"serving sweeps, {phase}", f"{s['median_ape_pct']:.1f}%", f"{s['mean_ape_pct']:.1f}%", per))
    t2 = table("median |error| (headline rows)", ["phase", "median", "mean", "by vendor"], srows)
    grows = [(gid, ", ".join(g["rows"]), ", ".join(f"{k} ×{v:.2f}" for k, v in g["multipliers"].items()),
              f"{g['rms_log_error']:.3f}") for gid, g in rec.get("generations", {}).items()]
    t3 = table("software generations: multipliers on the fitted chips (validation/data/generations.toml)",
               ["generation", "rows", "multipliers", "rms log err"], grows)
    print_rich(t1, *([t3] if grows else []), t2, path=out)


def _progress():
    """A one-line progress counter on a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    return lambda what, i, n: print(f"\r{what} {i}/{n}", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.training:
        return _run_training(args)
    cases = []
    for path in args.cases or list(CALIBRATION_SUITES):
        suite = load_cases(path)
        check_catalog_ids(suite, path)
        cases += suite
    progress = _progress()
    cal = calibrate(cases, logo=not args.no_logo, progress=progress)
    if progress:
        print(file=sys.stderr)
    rec = _record(cal)
    if not args.dry_run:
        write_calibration(cal)
        clear_caches()
        clear_cache()
    if args.format == "json":
        write_text(json_document(rec), args.output)
    else:
        _render(rec, args.output)
    return 0


def _run_training(args: argparse.Namespace) -> int:
    """Fit the training model (calibration/training.py) and write training/data/calibrated.toml."""
    import datetime as dt

    from siliconsim.calibration.training import by_vendor, calibrated_toml, fit_training, median_ape
    from siliconsim.training.params import DATA as TRAINING_DATA, clear_caches as clear_training
    from siliconsim.validation.training_suite import load_training_cases

    cases = load_training_cases(args.cases[-1] if args.cases else None)
    progress = _progress()
    fit = fit_training(cases, logo=not args.no_logo, progress=progress)
    if progress:
        print(file=sys.stderr)
    if not args.dry_run:
        write_text(calibrated_toml(fit, dt.date.today().isoformat()), str(TRAINING_DATA / "calibrated.toml"))
        clear_training()
    rec = {"free_parameters": len(fit.params), "rows": len(fit.rows), "multipliers": fit.multipliers(),
           "fitted_median_ape_pct": median_ape(fit.fitted),
           "logo_median_ape_pct": median_ape(fit.held_out) if fit.held_out is not None else None,
           "logo_by_vendor": by_vendor(fit.held_out) if fit.held_out is not None else None}
    if args.format == "json":
        write_text(json_document(rec), args.output)
    else:
        rows = [(k, f"x{v:.3f}") for k, v in rec["multipliers"].items()]
        logo = rec["logo_median_ape_pct"]
        cap = (f"{rec['rows']} rows; median |error| {rec['fitted_median_ape_pct']:.1f}% in-sample, "
               + (f"{logo:.1f}% leave-one-group-out" if logo is not None else "leave-one-group-out not computed"))
        print_rich(table(f"training calibration ({rec['free_parameters']} free parameters)", ["parameter", "multiplier"],
                         rows, caption=cap), path=args.output)
    return 0
