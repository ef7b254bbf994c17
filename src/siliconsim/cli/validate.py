"""`siliconsim validate`: predict every row of a validation suite and report the error."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

from siliconsim.cli.args import add_format
from siliconsim.errors import InputError
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text
from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import DATA, DEFAULT_SUITE, LAYOUT_COLUMNS, SUITES, check_catalog_ids, load_cases
from siliconsim.validation.summary import row_record, summarize, summarize_concurrency
from siliconsim.validation.training_runner import run_training_suite, summarize_training, training_row_record
from siliconsim.validation.training_suite import DEFAULT_TRAINING_SUITE, is_training_suite, load_training_cases


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="compare predictions with the published-measurement suite",
                       description="Predict every row of the validation suite; report signed error per row and "
                                   "median/mean absolute error by vendor, metric, scenario and trust class.")
    p.add_argument("--cases", metavar="FILE", action="append",
                   help=f"suite CSV, inference (dev.csv schema), power (dev.csv schema plus chip_power_limit_w), "
                        f"serving sweeps (dev.csv schema plus {', '.join(LAYOUT_COLUMNS)}) or training "
                        f"(training-dev.csv schema), recognised by its columns, or a shipped suite by name "
                        f"({', '.join(SUITES)}); repeat for several (default: every shipped suite: {DEFAULT_SUITE.name}, "
                        f"{SUITES['power']}, {SUITES['concurrency']} and {DEFAULT_TRAINING_SUITE.name})")
    p.add_argument("--models", metavar="DIR", help="resolve model ids from DIR/ID.json before the catalog")
    add_format(p)


def _progress() -> tuple[Callable[[int, int], None] | None, Any]:
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("validating", total=None)
    bar.start()
    return (lambda done, total: bar.update(task, completed=done, total=total)), bar


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1f}%"


def _group_table(title: str, groups: dict[str, dict[str, Any]]) -> Any:
    rows = [(k, g["n"], _pct(g["median_ape_pct"]), _pct(g["mean_ape_pct"]), _pct(g["median_error_pct"]))
            for k, g in groups.items()]
    return table(title, ["group", "rows", "median |err|", "mean |err|", "median err"], rows, justify_right=(1, 2, 3, 4))


def _render_table_parts(records: list[dict[str, Any]], summary: dict[str, Any]) -> list[Any]:
    rows = [(r["id"], r["hardware"], r["model"], r["scenario"], r["metric"], fmt(r["predicted"]), fmt(r["measured"]),
             _pct(r["error_pct"]) if r["status"] == "predicted" else r["status"], r["layout"] or r["reason"])
            for r in records]
    parts: list[Any] = [table("validation rows", ["id", "hardware", "model", "scenario", "metric", "predicted",
                                                   "measured", "error", "layout / reason"], rows, justify_right=(5, 6, 7))]
    for key in ("by_vendor", "by_metric", "by_scenario", "by_trust", "by_speculative"):
        parts.append(_group_table(key.replace("_", " "), summary[key]))
    set_aside = [(x["id"], x["likely_cause"], x["reason"]) for x in summary["exceeds_bound"]]
    parts.append(table(f"rows past a datasheet bound ({len(set_aside)}; not in the headline)",
                       ["id", "likely cause", "bound"], set_aside))
    parts.append(table(f"rows not predicted ({len(summary['not_predicted'])})", ["id", "reason"],
                       [(x["id"], x["reason"]) for x in summary["not_predicted"]]))
    parts.append(f"[bold]headline[/]: median |error| {_pct(summary['median_ape_pct'])}, mean |error| "
                 f"{_pct(summary['mean_ape_pct'])} over {summary['headline_rows']} rows; coverage "
                 f"{summary['coverage_pct']:.1f}% ({summary['predicted']}/{summary['rows']}); chip count chosen "
                 f"(single stream: the vendor's unit of whole nodes; else the smallest system that holds the model) for {len(summary['chips_chosen'])} rows")
    parts.extend(f"assumed: {a}" for a in summary["assumptions"])
    return parts


def _suites(args: argparse.Namespace) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """(inference, training, power, serving-sweep suites) to run, each recognised by its header.
    Power suites are inference suites with a ``chip_power_limit_w`` column, sweep suites ones with
    the layout columns (``LAYOUT_COLUMNS``); both are scored on their own, so the inference
    headline stays the dev suite's."""
    if not args.cases:
        return [DEFAULT_SUITE], [DEFAULT_TRAINING_SUITE], [DATA / SUITES["power"]], [DATA / SUITES["concurrency"]]
    inference, training, power, sweeps = [], [], [], []
    for f in args.cases:
        path = DATA / SUITES[f] if f in SUITES else Path(f)
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 CSV file") from None
        kind = (training if is_training_suite(header) else power if "chip_power_limit_w" in header
                else sweeps if any(c in header for c in LAYOUT_COLUMNS) else inference)
        kind.append(path)
    return inference, training, power, sweeps


def _inference(paths: list[Path], summary: Callable[..., dict[str, Any]] = summarize
               ) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    if not paths:
        return None
    cases = []
    for p in paths:
        suite = load_cases(p)
        check_catalog_ids(suite, p)  # unknown ids are an error here, not rows at 0% coverage
        cases += suite
    progress, bar = _progress()
    try:
        results = run_suite(cases, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    return [row_record(r) for r in results], summary(results)


def _training(paths: list[Path], models: Path | None) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    if not paths:
        return None
    cases = [c for p in paths for c in load_training_cases(p)]
    results = run_training_suite(cases, models_dir=models)
    return [training_row_record(r) for r in results], summarize_training(results)


def _render_training(records: list[dict[str, Any]], summary: dict[str, Any]) -> list[Any]:
    rows = [(r["id"], r["hardware"], r["chips"], r["model"], r["metric"], fmt(r["predicted"]), fmt(r["measured"]),
             _pct(r["error_pct"]) if r["status"] == "predicted" else r["status"], r["layout"] or r["reason"])
            for r in records]
    parts: list[Any] = [table("training validation rows", ["id", "hardware", "chips", "model", "metric", "predicted",
                                                            "measured", "error", "layout / reason"], rows,
                              justify_right=(2, 5, 6, 7))]
    for key in ("by_vendor", "by_metric", "by_framework"):
        parts.append(_group_table("training " + key.replace("_", " "), summary[key]))
    parts.append(f"[bold]training headline[/]: median |error| {_pct(summary['median_ape_pct'])}, mean |error| "
                 f"{_pct(summary['mean_ape_pct'])} over {summary['predicted']} rows; coverage "
                 f"{summary['coverage_pct']:.1f}% ({summary['predicted']}/{summary['rows']})")
    parts.extend(f"training, not predicted: {x['id']}: {x['reason']}" for x in summary["not_predicted"])
    return parts


def _render_sweeps(records: list[dict[str, Any]], summary: dict[str, Any]) -> list[Any]:
    parts: list[Any] = ["[bold]serving-sweep suite[/] (closed-loop concurrency runs, closed form of "
                        "serving.closed_loop; scored on its own)"]
    parts += _render_table_parts(records, summary)
    for key in ("by_hardware_engine", "by_hardware_engine_metric"):
        parts.append(_group_table("serving sweeps " + key.replace("_", " "), summary[key]))
    parts.append(f"serving sweeps: {summary['published_layout_rows']} predicted rows on their published layout "
                 f"(tp, ep, dp_attention), {summary['planner_layout_rows']} on the planner's")
    return parts


def run(args: argparse.Namespace) -> int:
    inference_paths, training_paths, power_paths, sweep_paths = _suites(args)
    models = Path(args.models) if args.models else None
    if models is not None and not models.is_dir():
        raise InputError(f"--models {args.models}: not a directory of ID.json configs")
    out: dict[str, Any] = {}
    inference = _inference(inference_paths)
    if inference is not None:
        out |= {"rows": inference[0], "summary": inference[1]}
    power = _inference(power_paths)
    if power is not None:
        out["power"] = {"rows": power[0], "summary": power[1]}
    sweeps = _inference(sweep_paths, summarize_concurrency)
    if sweeps is not None:
        out["concurrency"] = {"rows": sweeps[0], "summary": sweeps[1]}
    training = _training(training_paths, models)
    if training is not None:
        out["training"] = {"rows": training[0], "summary": training[1]}
    if args.format == "json":
        write_text(json_document(out), args.output)
    elif args.format == "csv":
        write_text(to_csv([r for part in (inference, power, sweeps, training) if part for r in part[0]]), args.output)
    else:
        parts: list[Any] = []
        if inference is not None:
            parts.append(_render_table_parts(*inference))
        if power is not None:
            parts.append(["[bold]power suite[/] (MLPerf wall power; scored on its own)"] + _render_table_parts(*power))
        if sweeps is not None:
            parts.append(_render_sweeps(*sweeps))
        if training is not None:
            parts.extend(_render_training(*training))
        print_rich(*[x for p in parts for x in (p if isinstance(p, list) else [p])], path=args.output)
    return 0
