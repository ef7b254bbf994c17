"""`siliconsim simulate`: discrete-event serving simulation of one deployment."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from siliconsim.cli.args import add_format, add_model_hardware, hardware_arg, nonneg_float, positive_float, positive_int, seed
from siliconsim.errors import InfeasibleError, InputError
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import context_warning
from siliconsim.report.render import fmt, json_document, print_rich, print_warnings, table, to_csv, write_text
from siliconsim.report.results import slo_text
from siliconsim.serving.config import DEFAULT_TOKEN_BUDGET, ServeConfig
from siliconsim.serving.deploy import serve_system
from siliconsim.serving.router import ROUTERS
from siliconsim.serving.scenario import WorkloadSpec, build_requests, run_study, workload_record
from siliconsim.serving.scheduler import SCHEDULERS

PROGRESS_AFTER_S = 1.0  # show a progress bar only once a run has taken this long (and stderr is a TTY)


def _pools(text: str) -> tuple[int, int]:
    p, sep, d = text.partition(":")
    try:
        pools = (int(p), int(d))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P:D (prefill:decode replicas), got {text!r}") from None
    if not sep or min(pools) < 1:
        raise argparse.ArgumentTypeError(f"expected P:D with P >= 1 and D >= 1, got {text!r}")
    return pools


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate serving a request stream (continuous batching, KV cache, SLOs)",
                       description="Discrete-event simulation of a serving deployment; metrics named as vLLM's "
                                   "benchmark_serving names them.")
    add_model_hardware(p)
    p.add_argument("--replicas", type=positive_int, default=1, metavar="N", help="model replicas (default 1)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workload", metavar="PRESET", help="preset: code-completion, chat, agentic-coding")
    src.add_argument("--trace", metavar="FILE", help="trace to replay: azure-code, or an Azure/plain CSV or JSONL file")
    p.add_argument("--rate", type=positive_float, metavar="R",
                   help="requests/s (sessions/s for agentic-coding); rescales a trace's inter-arrival times")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--duration", type=positive_float, metavar="S", help="only requests arriving in the first S s")
    size.add_argument("--requests", type=positive_int, metavar="N", help="number of requests (preset default 1000)")
    p.add_argument("--seed", type=seed, default=0, help="random seed for generated workloads (default 0)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS), default="chunked", help="batch scheduler (default chunked)")
    p.add_argument("--router", choices=list(ROUTERS), default="least-loaded", help="replica routing (default least-loaded)")
    p.add_argument("--max-batch", type=positive_int, metavar="N", help="max sequences per replica (default min(256, plan))")
    p.add_argument("--token-budget", type=positive_int, default=DEFAULT_TOKEN_BUDGET, metavar="N",
                   help=f"max tokens per step (default {DEFAULT_TOKEN_BUDGET})")
    p.add_argument("--dispatch-window-ms", type=nonneg_float, default=0.0, metavar="MS",
                   help="harness batcher: hold arrivals up to MS ms, then send them to one replica (default 0: off)")
    p.add_argument("--dispatch-max", type=positive_int, default=96, metavar="N",
                   help="harness batcher: dispatch at once when N requests are pending (default 96)")
    p.add_argument("--chunk", type=int, metavar="N", help="prefill chunk size; 0 disables chunking (default: token budget)")
    p.add_argument("--disaggregate", type=_pools, metavar="P:D", help="P prefill and D decode replicas (replaces --replicas)")
    p.add_argument("--context-tokens", type=positive_int, metavar="N",
                   help="context the plan sizes memory for (default: longest request)")
    p.add_argument("--slo-ttft-ms", type=nonneg_float, metavar="MS", help="TTFT SLO for goodput (default: the preset's)")
    p.add_argument("--slo-tpot-ms", type=nonneg_float, metavar="MS", help="TPOT SLO for goodput (default: the preset's)")
    p.add_argument("--series-points", type=positive_int, default=100, metavar="N", help="time-series bins in JSON (default 100)")
    p.add_argument("--timing", action="store_true",
                   help="add the simulator's wall time and events/s to JSON/CSV (they vary run to run; the table "
                        "always shows them). Without it the same seed gives byte-identical output")
    add_format(p)


def run(args: argparse.Namespace) -> int:
    if args.chunk is not None and args.chunk < 0:
        raise InputError(f"--chunk {args.chunk}: expected a whole number >= 0 (0 disables chunking)")
    spec = WorkloadSpec(args.workload, args.trace, args.rate, args.duration, args.requests, args.seed)
    rs, preset = build_requests(spec)
    model, chip = load_model(args.model), hardware_arg(args)
    context = args.context_tokens or int((rs.input_tokens + rs.output_tokens).max())
    system = serve_system(model, chip, chips=args.chips, dtype=args.dtype, kv_dtype=args.kv_dtype,
                          context_tokens=context)
    if not system.feasible:
        raise InfeasibleError(f"{model.id} on {chip.id} at {context} tokens of context: {system.reason}")
    config = ServeConfig(replicas=args.replicas, max_batch=args.max_batch, token_budget=args.token_budget,
                         chunk_tokens=args.chunk, scheduler=args.scheduler, router=args.router,
                         disaggregate=args.disaggregate, dispatch_window_s=args.dispatch_window_ms * 1e-3,
                         dispatch_max_requests=args.dispatch_max)
    slo_ttft = _slo(args.slo_ttft_ms, preset.slo_ttft_s if preset else None)
    slo_tpot = _slo(args.slo_tpot_ms, preset.slo_tpot_s if preset else None)
    with _Progress() as progress:
        record, _, timing = run_study(system, rs, config, slo_ttft_s=slo_ttft, slo_tpot_s=slo_tpot,
                                      series_points=args.series_points, progress=progress)
    record = {**record, "workload": workload_record(rs, spec), "what_if": list(chip.what_if)}
    if args.timing or args.format == "table":
        record["simulator"].update(timing)
    warning = context_warning(model, int((rs.input_tokens + rs.output_tokens).max()))
    _render(record, args.format, args.output, [warning] if warning else [])
    return 0


def _slo(ms: float | None, default_s: float | None) -> float | None:
    return ms / 1e3 if ms is not None else default_s


class _Progress:
    """A rich progress bar on stderr, started only once a run has lasted PROGRESS_AFTER_S and
    only when stderr is a terminal."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if not self._tty:
            return
        if self._bar is None:
            if time.perf_counter() - self._t0 < PROGRESS_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("simulating", total=total)
            self._bar.start()
        self._bar.update(self._task, completed=done)


def _render(rec: dict[str, Any], fmt_name: str, out: str | None, warnings: list[str]) -> None:
    print_warnings(warnings)
    if fmt_name == "json":
        write_text(json_document(rec, warnings), out)
    elif fmt_name == "csv":
        flat = {k: v for k, v in rec.items() if k not in ("timeseries", "metrics")}
        write_text(to_csv([{**flat, **rec["metrics"]}]), out)
    else:
        print_rich(table(_title(rec), ["metric", "mean", "p50", "p90", "p99"], _latency_rows(rec["metrics"]),
                         justify_right=(1, 2, 3, 4)),
                   table("throughput, SLOs, occupancy and simulator", ["quantity", "value"], _summary_rows(rec),
                         justify_right=(1,)), path=out)


def _title(rec: dict[str, Any]) -> str:
    w = rec["workload"]
    return (f"{rec['model']} on {rec['replicas']}× [{rec['deployment']}] · {w['source']} · {w['requests']} requests"
            f" · {rec['config']['scheduler']}")


def _latency_rows(m: dict[str, Any]) -> list[list[str]]:
    names = (("TTFT", "ttft"), ("TPOT", "tpot"), ("ITL", "itl"), ("E2E latency", "e2el"), ("queueing delay", "queue"))
    return [[f"{label} (ms)"] + [fmt(m[f"{s}_{key}_ms"]) for s in ("mean", "p50", "p90", "p99")] for label, key in names]


def _summary_rows(rec: dict[str, Any]) -> list[list[str]]:
    m, sim = rec["metrics"], rec["simulator"]
    slo = slo_text(m["slo_ttft_ms"], m["slo_tpot_ms"])
    given = m["slo_ttft_ms"] is not None or m["slo_tpot_ms"] is not None
    meet = f"{fmt(100 * m['slo_attainment'])}% meet " if given else ""
    rows = [
        ["completed / rejected", f"{m['completed']} / {m['rejected']}"
                                 + (f" ({', '.join(f'{k}: {v}' for k, v in m['rejection_reasons'].items())})"
                                    if m["rejected"] else "")],
        ["request throughput", f"{fmt(m['request_throughput'])} req/s"],
        ["output throughput", f"{fmt(m['output_throughput'])} tok/s"],
        ["goodput", f"{fmt(m['request_goodput'])} req/s ({meet}{slo})"],
        ["batch size", f"mean {fmt(m['mean_batch'])}, p50 {fmt(m['p50_batch'])}, p99 {fmt(m['p99_batch'])}, "
                       f"max {m['max_batch']}"],
        ["KV occupancy", f"mean {fmt(100 * m['mean_kv_occupancy'])}%, max {fmt(100 * m['max_kv_occupancy'])}% "
                         f"of {fmt(rec['kv_capacity_tokens'])} tokens per replica"],
        ["preemptions", str(m["preemptions"])],
        ["simulated", f"{fmt(sim['simulated_s'])} s, {sim['events']:,} events, {sim['steps']:,} steps"],
    ]
    if "wall_s" in sim:
        rows.append(["simulator speed", f"{fmt(sim['wall_s'])} s wall, {fmt(sim['events_per_s'])} events/s, "
                                        f"{fmt(sim['simulated_per_wall'])}× real time"])
    return rows
