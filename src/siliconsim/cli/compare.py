"""`siliconsim compare`: the main job. One coding model across systems on real-time code
completion; one row per system at its smallest feasible size, fastest request first."""

from __future__ import annotations

import argparse
import sys

from siliconsim.accounting.pricing import sanity_warning
from siliconsim.cli.args import (DTYPES, HARDWARE_HELP, add_format, add_power_limit, add_what_if, hardware_list, positive_float,
                                 positive_int, seed)
from siliconsim.cli.costs import add_cost_options, add_slo_option, cost_assumptions, pricing
from siliconsim.inference import Scenario
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import context_warning
from siliconsim.planner.compare import Row, compare, compare_defaults
from siliconsim.report.render import (console_width, fit_columns, fmt, json_document, print_rich, print_warnings, table,
                                      to_csv, write_text)
from siliconsim.report.results import breakdown_shares, error_bars, estimate_record, slo_text, with_range


def add_parser(sub: argparse._SubParsersAction) -> None:
    from siliconsim.cli import compare_train

    d = compare_defaults()
    p = sub.add_parser("compare", help="compare systems for one model on a real-time code-completion request",
                       description=f"Default: {d.model} on {', '.join(d.systems)}; batch {d.scenario.batch}, "
                                   f"{d.scenario.input_tokens} prompt / {d.scenario.output_tokens} output tokens "
                                   "(Azure code-trace means).")
    p.add_argument("--model", "-m", default=d.model, metavar="ID|PATH", help=f"model (default {d.model})")
    p.add_argument("--hardware", "-H", nargs="+", default=list(d.systems), metavar="ID|PATH",
                   help=f"systems to compare: {HARDWARE_HELP}")
    add_what_if(p)
    p.add_argument("--dtype", choices=DTYPES, help="weight precision for every system (default: the model's native)")
    add_power_limit(p)
    p.add_argument("--batch", type=positive_int, default=int(d.scenario.batch), metavar="N",
                   help=f"concurrent sequences per replica for the timed request (default {int(d.scenario.batch)})")
    p.add_argument("--input-tokens", type=positive_int, default=int(d.scenario.input_tokens), metavar="N",
                   help=f"prompt length (default {int(d.scenario.input_tokens)}, the Azure code trace's mean)")
    p.add_argument("--output-tokens", type=positive_int, default=int(d.scenario.output_tokens), metavar="N",
                   help=f"generated length (default {int(d.scenario.output_tokens)}, the Azure code trace's mean)")
    g = p.add_argument_group("serving mode (discrete-event simulation of the code-completion workload)")
    g.add_argument("--serve", action="store_true", help="simulate serving instead of timing one request")
    g.add_argument("--rate", type=positive_float, default=2.566, metavar="R",
                   help="requests/s (default 2.566, the Azure code trace's mean rate)")
    g.add_argument("--requests", type=positive_int, default=1000, metavar="N", help="requests to simulate (default 1000)")
    g.add_argument("--workload", default="code-completion", metavar="PRESET", help="workload preset (default code-completion)")
    g.add_argument("--seed", type=seed, default=0, help="random seed of the workload (default 0)")
    add_cost_options(p)
    add_format(p)
    p.add_argument("--plot", metavar="FILE.png", help="also draw the per-token time breakdown of each system")
    add_slo_option(p)
    compare_train.add_arguments(p)


def _table_row(r: Row, note: int | None) -> list[str]:
    e = r.estimate
    if not e.feasible:
        return [r.hardware_id, f"[yellow]not feasible [{note}][/]"] + ["–"] * 10
    a, ld = r.accounting, r.loaded
    dep = e.deployment
    plan = f"{e.chips}× {dep.par.describe()} {dep.weights_label}" if dep else "–"
    bars = error_bars(e, {"ttft_s": e.ttft_s, "tpot_s": e.tpot_s, "output_tok_s_per_user": e.output_tok_s_per_user,
                          "aggregate_output_tok_s": e.aggregate_output_tok_s})
    return [r.hardware_id, plan, fmt(r.request_latency_s * 1e3), fmt(e.ttft_s * 1e3), fmt(e.tpot_s * 1e3),
            with_range(e.output_tok_s_per_user, bars.get("output_tok_s_per_user")), breakdown_shares(e.breakdown()),
            fmt(ld.scenario.batch) if ld else "–", fmt(ld.aggregate_output_tok_s) if ld else "–",
            fmt(a.power_w / 1e3) if a else "–", fmt(a.usd_per_mtok_input) if a else "–",
            fmt(a.usd_per_mtok_output) if a else "–"]


# On a narrow terminal, columns leave the table in this order (least needed first).
NARROW_DROP_ORDER = ("decode step goes to", "users", "kW", "request ms", "plan", "tok/s", "TTFT ms")


def render(rows: list[Row], title: str, fmt_name: str, out: str | None, slo: str, warnings: list[str]) -> None:
    records = [_record(r) for r in rows]
    if fmt_name == "json":
        write_text(json_document(records, warnings), out)
        return
    if fmt_name == "csv":
        write_text(to_csv(records), out)
        return
    notes: list[str] = []
    body = []
    for r in rows:
        note = None
        if not r.estimate.feasible:
            notes.append(f"[{len(notes) + 1}] {r.hardware_id}: {r.estimate.plan.reason}")
            note = len(notes)
        body.append(_table_row(r, note))
    cols = ["system", "plan", "request ms", "TTFT ms", "TPOT ms", "tok/s/user", "decode step goes to",
            "users", "tok/s", "kW", "$/Mtok in", "$/Mtok out"]
    caption = ("request = TTFT + (output−1)×TPOT for one user. Decode step split: compute, memory, network "
               "(collectives, mesh, chip-to-chip), overhead. users, tok/s, kW and $/Mtok: the loaded operating point, "
               f"the batch with the most output tok/s whose closed-form p99 TTFT and TPOT meet the {slo} SLO (--slo); "
               "kW at the wall; input and output tokens each pay for the chip time they use. tok/s/user range: "
               "10th-90th percentile of the leave-one-group-out validation error for the family ('extrap.': chip or "
               "model not in the suite).")
    caption += "".join(f"\n{r.hardware_id}: {r.note}; {r.accounting.pricing}" for r in rows if r.accounting is not None)
    notes += [f"what-if {r.hardware_id}: {'; '.join(r.what_if)}" for r in rows if r.what_if]
    if notes:
        caption += "\n" + "\n".join(notes)
    caption += "".join(f"\n[red]warning[/]: {w}" for w in warnings)
    right = (2, 3, 4, 5, 7, 8, 9, 10, 11)
    width = console_width(to_file=out is not None)
    keep, widths = fit_columns(cols, body, right, width, NARROW_DROP_ORDER)
    if len(keep) < len(cols):
        caption += (f"\nNot shown, to fit {width} columns: {', '.join(c for i, c in enumerate(cols) if i not in keep)}"
                    " (widen the terminal, set COLUMNS, or use --format csv).")
    print_rich(table(title, [cols[i] for i in keep], [[r[i] for i in keep] for r in body], caption=caption,
                     justify_right=[n for n, i in enumerate(keep) if i in right], widths=widths),
               path=out)


def _record(r: Row) -> dict:
    """Per-system JSON/CSV record: the scenario's numbers, with cost fields at the loaded point."""
    rec = estimate_record(r.estimate, r.accounting)
    rec["what_if"] = list(r.what_if)
    rec["request_latency_s"] = r.request_latency_s if r.estimate.feasible else None
    ld = r.loaded
    rec["loaded"] = {"batch": ld.scenario.batch, "tpot_s": ld.tpot_s, "ttft_s": ld.ttft_s,
                     "aggregate_output_tok_s": ld.aggregate_output_tok_s, "chips": ld.chips,
                     "note": r.note} if ld is not None else None
    return rec


def _run_serve(args: argparse.Namespace) -> int:
    from siliconsim.accounting.power import power_limited
    from siliconsim.hardware.custom import resolve_chip
    from siliconsim.serving.compare import serve_row

    model = load_model(args.model)
    rows = [serve_row(model, power_limited(resolve_chip(hw), args.chip_power_limit_w), args.rate, args.workload,
                      args.seed, requests=args.requests, dtype=args.dtype)
            for hw in hardware_list(args)]
    rows.sort(key=lambda r: (not r["feasible"], -(r["request_goodput"] or 0.0), r["p99_ttft_ms"] or 0.0))
    if args.format == "json":
        write_text(json_document(rows), args.output)
        return 0
    if args.format == "csv":
        write_text(to_csv(rows), args.output)
        return 0
    body, notes = [], []
    for r in rows:
        if not r["feasible"]:
            notes.append(f"[{len(notes) + 1}] {r['hardware']}: {r['reason']}")
            body.append([r["hardware"], f"[yellow]not feasible [{len(notes)}][/]"] + ["–"] * 6)
            continue
        body.append([r["hardware"], r["deployment"], fmt(r["p99_ttft_ms"]), fmt(r["p99_tpot_ms"]),
                     fmt(r["request_goodput"]), f"{r['slo_attainment']:.0%}", fmt(r["output_throughput"]),
                     fmt(r["mean_batch"])])
    slo = next((r for r in rows if r["feasible"]), None)
    caption = (f"{args.requests} requests at {args.rate} req/s, seed {args.seed}; goodput = requests/s meeting "
               + (slo_text(slo["slo_ttft_ms"], slo["slo_tpot_ms"]) if slo else "the SLOs"))
    if notes:
        caption += "\n" + "\n".join(notes)
    cols = ["system", "deployment", "p99 TTFT ms", "p99 TPOT ms", "goodput req/s", "meet SLO", "out tok/s", "mean batch"]
    title = f"{model.id} · serving {args.workload} · smallest feasible replica per system"
    print_rich(table(title, cols, body, caption=caption, justify_right=(2, 3, 4, 5, 6, 7)), path=args.output)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.train:
        from siliconsim.cli import compare_train

        return compare_train.run(args)
    if args.serve:
        return _run_serve(args)
    model = load_model(args.model)
    scenario = Scenario(args.batch, args.input_tokens, args.output_tokens)
    assumptions = cost_assumptions(args)
    if args.format == "table" and sys.stderr.isatty() and len(args.hardware) > 20:
        from rich.progress import track

        ids = list(track(hardware_list(args), description="estimating", transient=True))
    else:
        ids = hardware_list(args)
    rows = compare(model, ids, scenario, dtype=args.dtype, assumptions=assumptions, slo=args.slo,
                   pricing=pricing(args), power_limit_w=args.chip_power_limit_w)
    warnings = [w for r in rows if r.accounting is not None
                for w in [sanity_warning(model.id, r.hardware_id, r.accounting.usd_per_mtok_output)] if w]
    warnings += [w for w in [context_warning(model, scenario.context_tokens)] if w]
    print_warnings(warnings)
    title = (f"{model.id} · real-time code completion · batch {scenario.batch}, {scenario.input_tokens} in / "
             f"{scenario.output_tokens} out")
    render(rows, title, args.format, args.output, args.slo, warnings)
    if args.plot:
        from siliconsim.report.plots import breakdown_bars

        ok = [r for r in rows if r.estimate.feasible]
        labels = [f"{r.hardware_id} ({r.estimate.chips}×)" for r in ok]
        breakdown_bars(labels, [r.estimate.breakdown() for r in ok], title, args.plot)
    return 0
