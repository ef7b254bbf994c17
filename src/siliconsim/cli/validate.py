"""`siliconsim validate`: predict every row of a validation suite and report the error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from siliconsim.cli.args import add_format
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text
from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import DEFAULT_SUITE, check_catalog_ids, load_cases
from siliconsim.validation.summary import row_record, summarize


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="compare predictions with the published-measurement suite",
                       description="Predict every row of the validation suite; report signed error per row and "
                                   "median/mean absolute error by vendor, metric, scenario and trust class.")
    p.add_argument("--cases", metavar="FILE", help=f"suite CSV in the dev.csv schema (default: packaged {DEFAULT_SUITE.name})")
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


def _render_table(records: list[dict[str, Any]], summary: dict[str, Any], out: str | None) -> None:
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
                 f"(smallest system that holds the model) for {len(summary['chips_chosen'])} rows")
    parts.extend(f"assumed: {a}" for a in summary["assumptions"])
    print_rich(*parts, path=out)


def run(args: argparse.Namespace) -> int:
    cases = load_cases(args.cases)
    check_catalog_ids(cases, args.cases)
    progress, bar = _progress()
    try:
        results = run_suite(cases, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    records = [row_record(r) for r in results]
    summary = summarize(results)
    if args.format == "json":
        write_text(json_document({"rows": records, "summary": summary}), args.output)
    elif args.format == "csv":
        write_text(to_csv(records), args.output)
    else:
        _render_table(records, summary, args.output)
    return 0
