"""`siliconsim plan`: the cheapest system that serves a model at a demand within its SLOs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from siliconsim.cli.args import FORMATS, add_power_limit, add_what_if, positive_float, positive_int, seed
from siliconsim.cli.costs import add_cost_options, cost_assumptions, pricing
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import chip_ids
from siliconsim.models.catalog import load_model
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text

DEFAULT_WORKLOAD = "code-completion"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="the cheapest system that serves a model at a request rate within its SLOs",
                       description="Search hardware x layout x precision x batch x replicas x serving mode "
                                   "(aggregated/disaggregated) x speculation in closed form; confirm the finalists "
                                   "with the serving simulator.")
    p.add_argument("--model", "-m", required=True, metavar="ID|PATH", help="model id or path to a HF config.json")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--workload", metavar="PRESET", help=f"workload preset (default {DEFAULT_WORKLOAD})")
    w.add_argument("--trace", metavar="FILE", help="request trace (CSV or JSONL)")
    w.add_argument("--input-tokens", type=positive_int, metavar="N", help="fixed prompt length (with --output-tokens)")
    p.add_argument("--output-tokens", type=positive_int, metavar="N", help="fixed output length (with --input-tokens)")
    p.add_argument("--rate", type=positive_float, required=True, metavar="REQ_PER_S", help="demand in requests/s")
    p.add_argument("--ttft-p99-ms", type=positive_float, metavar="X", help="p99 TTFT limit (default: the preset's)")
    s = p.add_mutually_exclusive_group()
    s.add_argument("--tpot-p99-ms", type=positive_float, metavar="Y", help="p99 TPOT limit (default: the preset's)")
    s.add_argument("--min-tok-s-per-user", type=positive_float, metavar="U", help="p99 TPOT limit as 1000/U ms")
    p.add_argument("--hardware", "-H", nargs="+", metavar="ID|FILE",
                   help="hardware ids or chip TOML files, or 'all' (default: compare's list)")
    add_what_if(p)
    p.add_argument("--max-chips", type=positive_int, default=4096, metavar="N", help="chips in the whole fleet at most")
    p.add_argument("--objective", choices=("cost", "chips", "power"), default="cost",
                   help="what the best plan minimises: $/Mtok, chips or power (default cost)")
    add_power_limit(p)
    p.add_argument("--strategy", choices=("exhaustive", "near-smallest"), default="exhaustive",
                   help="every layout, or only layouts up to 8x the smallest replica that holds the model "
                        "(default exhaustive)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="run the sweep in local worker processes or on a Ray cluster (default local)")
    p.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default 1; ray: all CPUs)")
    p.add_argument("--ray-address", metavar="ADDR", help="join the Ray cluster at ADDR (with --executor ray)")
    c = p.add_mutually_exclusive_group()
    c.add_argument("--checkpoint", metavar="FILE", help="append every finished task to FILE")
    c.add_argument("--resume", metavar="FILE", help="continue the sweep checkpointed in FILE (same arguments)")
    p.add_argument("--no-simulate", action="store_true", help="skip confirming the finalists with the simulator")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the simulated requests (default 0)")
    add_cost_options(p)
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the Pareto fronts")


def _hardware(ids: list[str] | None, what_if: list[str], power_limit_w: float | None = None,
              assumptions: Any = None) -> tuple[str, ...]:
    """Catalog ids or chip TOML paths; with ``--set``, the what-if variant of the first one
    (written ``ref*``) follows it. Unknown ids, malformed chip files, bad ``--set`` keys and a power
    limit at or below a chip's idle draw fail here with a one-line error, not in a worker."""
    from siliconsim.accounting.power import power_limited
    from siliconsim.hardware.custom import resolve_chip
    from siliconsim.planner.compare import compare_defaults

    if not ids:
        out = list(compare_defaults().systems)
    elif ids == ["all"]:
        out = list(chip_ids())
    else:
        out = list(dict.fromkeys(ids))
    named = bool(ids) and ids != ["all"]  # user-named ids and files; catalog defaults need no check
    chips = [resolve_chip(hw) for hw in out] if named or power_limit_w is not None else []
    if what_if:
        chips.append(resolve_chip(out[0], what_if))
        out.insert(1, f"{out[0]}*")
    if power_limit_w is not None:
        for chip in chips:
            power_limited(chip, power_limit_w, assumptions)
    return tuple(out)


def _problem(args: argparse.Namespace) -> tuple[Any, Any]:
    from siliconsim.planner.plan import demand
    from siliconsim.planner.space import Problem
    from siliconsim.workloads import load_preset

    if (args.input_tokens is None) != (args.output_tokens is None):
        raise InputError("--input-tokens and --output-tokens go together")
    workload = args.workload or (DEFAULT_WORKLOAD if args.trace is None and args.input_tokens is None else None)
    preset = load_preset(workload or DEFAULT_WORKLOAD)
    d = demand(args.rate, workload=workload, trace=args.trace, input_tokens=args.input_tokens,
               output_tokens=args.output_tokens, seed=args.seed)
    tpot = (args.tpot_p99_ms * 1e-3 if args.tpot_p99_ms else 1.0 / args.min_tok_s_per_user
            if args.min_tok_s_per_user else preset.slo_tpot_s)
    ttft = args.ttft_p99_ms * 1e-3 if args.ttft_p99_ms else preset.slo_ttft_s
    load_model(args.model)
    hardware = _hardware(args.hardware, args.what_if, args.chip_power_limit_w, cost_assumptions(args))
    problem = Problem(args.model, hardware, d.input_tokens, d.output_tokens, args.rate, ttft, tpot,
                      max_chips=args.max_chips, pricing=pricing(args),
                      assumptions=cost_assumptions(args), chip_power_limit_w=args.chip_power_limit_w,
                      long_input_tokens=d.long_input_tokens, short_output_tokens=d.short_output_tokens,
                      decode_context_tokens=d.decode_context_tokens,
                      what_if=tuple(args.what_if))
    return problem, d


def run(args: argparse.Namespace) -> int:
    from siliconsim.planner.checkpoint import Checkpoint
    from siliconsim.planner.executors import make_executor
    from siliconsim.planner.plan import plan

    problem, d = _problem(args)
    executor = make_executor(args.executor, args.workers, args.ray_address)
    path = args.checkpoint or args.resume
    ckpt = Checkpoint(path, problem.describe(), resume=bool(args.resume)) if path else None
    with _progress(args) as progress:
        result = plan(problem, None if args.no_simulate else d.requests, objective=args.objective,
                      strategy=args.strategy, executor=executor, checkpoint=ckpt, progress=progress)
    for w in result.warnings:
        print(f"siliconsim: warning: {w}", file=sys.stderr)
    render(result, d.source, args.format, args.output)
    if args.plot:
        _plot(result, args.plot)
    if result.best is None:  # nothing feasible at all: an error, after the reasons are shown
        print("siliconsim: error: no configuration meets the SLO at this demand (reasons per hardware above)",
              file=sys.stderr)
        return 2
    return 0


class _progress:
    """A rich progress bar with ETA on stderr (only for people: a table on a terminal)."""

    def __init__(self, args: argparse.Namespace):
        self.on = args.format == "table" and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self):
        if not self.on:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("planning", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("plan", total=None)
        return lambda done, total: self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def _plot(result: Any, path: str) -> None:
    from siliconsim.report.plots import pareto_fronts

    fronts: dict[str, list[tuple[float, float]]] = {}
    for p in result.pareto:
        if p["front"] == "throughput":
            fronts.setdefault(p["hardware"], []).append((p["tok_s_per_user"], p["output_tok_s_per_chip"]))
    b = result.best
    pareto_fronts(fronts, (b["tok_s_per_user"], b["output_tok_s_per_chip"]) if b else None,
                  f"{load_model(result.problem.model).id} at {result.problem.rate_per_s:g} req/s", path)


CSV_FIELDS = ("hardware", "chips", "replicas", "prefill_replicas", "decode_replicas", "chips_per_replica", "layout",
              "dtype", "mode", "speculative", "batch", "p99_ttft_s", "p99_tpot_s", "tok_s_per_user",
              "output_tok_s_per_chip", "usd_per_mtok_input", "usd_per_mtok_output", "usd_per_mtok_blended",
              "usd_per_hour", "power_w", "energy_j_per_output_token")


def render(result: Any, source: str, fmt_name: str, out: str | None) -> None:
    rec = result.as_dict()
    if fmt_name == "json":
        write_text(json_document(rec), out)
        return
    if fmt_name == "csv":
        rows = [{"role": "best", **{k: result.best[k] for k in CSV_FIELDS}}] if result.best else []
        rows += [{"role": "alternative", **{k: p[k] for k in CSV_FIELDS}} for p in result.alternatives]
        rows += [{"role": f"pareto-{p['front']}", **{k: p[k] for k in CSV_FIELDS}} for p in result.pareto]
        rows += [{"role": "infeasible", "hardware": r["hardware"], "reason": r["reason"]} for r in result.infeasible]
        write_text(to_csv(rows), out)
        return
    print_rich(_table(result, source), path=out)


def _row(p: dict[str, Any], role: str) -> list[str]:
    pools = f"{p['prefill_replicas']}P+{p['decode_replicas']}D" if p["mode"] == "disaggregated" else f"{p['replicas']}"
    spec = " +MTP" if p["speculative"] != "none" else ""
    return [role, p["hardware"], f"{p['chips']} ({pools}× {p['layout']})", f"{p['dtype']}{spec}", p["mode"],
            fmt(p["batch"]), fmt(p["p99_ttft_s"] * 1e3), fmt(p["p99_tpot_s"] * 1e3), fmt(p["tok_s_per_user"]),
            fmt(p["usd_per_mtok_input"]), fmt(p["usd_per_mtok_output"]), fmt(p["usd_per_mtok_blended"]),
            fmt(p["power_w"] / 1e3)]


def _role(p: dict[str, Any]) -> str:
    sim = p.get("simulated") or {}
    if not sim.get("simulated"):
        return "next"
    return "next, sim ok" if sim["meets_slo"] else "[yellow]next, sim misses[/]"


def _table(result: Any, source: str) -> Any:
    pr = result.problem
    body = ([_row(result.best, "best")] if result.best else []) + [_row(p, _role(p)) for p in result.alternatives]
    for r in result.infeasible:
        body.append(["cannot", r["hardware"], f"[yellow]{r['reason']}[/]"] + [""] * 10)
    sim = (result.best or {}).get("simulated", {})
    lines = [f"{source}; {result.tasks} configurations x batches = {result.evaluated} points searched in closed form."]
    if sim.get("simulated"):
        lines.append(f"best: p99 TTFT/TPOT and fleet size from the serving simulator ({sim['requests']} requests, "
                     f"{'meets' if sim['meets_slo'] else 'MISSES'} the SLO; the closed form said "
                     f"{fmt(result.best['closed_form']['p99_ttft_s'] * 1e3)} / "
                     f"{fmt(result.best['closed_form']['p99_tpot_s'] * 1e3)} ms on "
                     f"{result.best['closed_form']['chips']} chips); 'sim ok'/'sim misses': other finalists the simulator ran "
                     "(a miss keeps its closed-form figures); plain 'next': closed form only.")
    elif result.best:
        lines.append(f"every figure from the closed form ({sim.get('note', 'not simulated')}).")
    lines.append(f"Pareto fronts: {len(result.pareto)} points (JSON/CSV); $/Mtok in and out each priced by the chip "
                 "time they use, blended at the workload's ratio; kW at the wall.")
    lines += ["assumptions:"] + [f"  {a}" for a in result.assumptions]
    lines += [f"[red]warning[/]: {w}" for w in result.warnings]
    title = (f"{load_model(pr.model).id} · {pr.rate_per_s:g} req/s · p99 TTFT ≤ {fmt(pr.ttft_p99_s * 1e3)} ms, "
             f"TPOT ≤ {fmt(pr.tpot_p99_s * 1e3)} ms · objective {result.objective}")
    cols = ["", "system", "chips (replicas× layout)", "weights", "mode", "batch", "p99 TTFT ms", "p99 TPOT ms",
            "tok/s/user", "$/Mtok in", "$/Mtok out", "$/Mtok blend", "kW"]
    return table(title, cols, body, caption="\n".join(lines), justify_right=tuple(range(5, 13)))
