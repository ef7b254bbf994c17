"""`siliconsim estimate`: one model on one system."""

from __future__ import annotations

import argparse

from siliconsim.cli.args import add_format, add_model_hardware, add_power_limit, fraction, hardware_arg, positive_int
from siliconsim.cli.costs import add_cost_options, add_slo_option, cost_assumptions, pricing
from siliconsim.inference import Scenario
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import context_warning
from siliconsim.planner.compare import Row, evaluate
from siliconsim.report.render import fmt, json_document, print_rich, print_warnings, table, to_csv, write_text
from siliconsim.report.results import breakdown_shares, estimate_record, with_range


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="latency, throughput, memory, power and cost of one model on one system",
                       description="Predict TTFT, TPOT, tokens/s, memory fit, power, J/token and $/Mtok.")
    add_model_hardware(p)
    p.add_argument("--batch", type=positive_int, default=1, help="concurrent sequences per replica (default 1)")
    p.add_argument("--input-tokens", type=positive_int, default=1024, metavar="N", help="prompt length (default 1024)")
    p.add_argument("--output-tokens", type=positive_int, default=128, metavar="N", help="generated length (default 128)")
    add_power_limit(p)
    g = p.add_argument_group("speculative decoding (off by default)")
    g.add_argument("--speculative", metavar="ngram|draft:ID", type=_speculation_kind,
                   help="n-gram/prompt-lookup drafting (no draft cost) or a draft model from the catalog")
    g.add_argument("--draft-len", type=positive_int, default=4, metavar="K", help="draft tokens per step (default 4)")
    g.add_argument("--acceptance", type=fraction, default=0.7, metavar="A",
                   help="per-token acceptance rate (default 0.7)")
    add_cost_options(p)
    add_slo_option(p)
    add_format(p)
    p.add_argument("--plot", metavar="FILE.png", help="also draw the latency-throughput curve over batch sizes")


def _speculation_kind(text: str) -> str:
    if text == "ngram" or (text.startswith("draft:") and len(text) > 6):
        return text
    raise argparse.ArgumentTypeError(f"expected 'ngram' or 'draft:<model id>', got {text!r}")


def _rows(rec: dict) -> list[tuple[str, str]]:
    ms = lambda s: f"{fmt(s * 1e3)} ms"  # noqa: E731
    mem = rec["memory_per_chip"] or {}
    b, bars = rec["breakdown"], rec.get("error_bars", {})
    return [
        ("plan", f"{rec['chips']}× {rec['hardware']} · {rec['parallel']} · weights {rec['weights']} · KV {rec['kv_dtype']}"),
        ("TTFT", with_range(rec["ttft_s"], bars.get("ttft_s"), " ms", 1e3)),
        ("TPOT", with_range(rec["tpot_s"], bars.get("tpot_s"), " ms", 1e3)),
        ("output tok/s per user", with_range(rec["output_tok_s_per_user"], bars.get("output_tok_s_per_user"))),
        ("aggregate output tok/s", with_range(rec["aggregate_output_tok_s"], bars.get("aggregate_output_tok_s"))),
        ("decode step breakdown", f"{breakdown_shares(b)}  (compute {ms(b['compute_s'])}, memory {ms(b['memory_s'])}, "
                                  f"network {ms(b['network_s'])}, overhead {ms(b['overhead_s'])})"),
        ("memory per chip", f"weights {fmt(mem.get('weights_bytes', 0) / 1e9)} GB + KV {fmt(mem.get('kv_cache_bytes', 0) / 1e9)} GB"
                            f" + activations {fmt(mem.get('activation_bytes', 0) / 1e9)} GB of {fmt(mem.get('capacity_bytes', 0) / 1e9)} GB"),
        ("KV capacity", f"{fmt(rec['kv_capacity_tokens'])} tokens per replica"),
        ("operating point", rec.get("priced_at", "")),
        ("power", f"{fmt(rec['power_w'] / 1e3)} kW at the wall"),
        ("energy", f"{fmt(rec['energy_j_per_token'])} J per output token"),
        ("cost", f"${fmt(rec['usd_per_mtok_input'])} per million input tokens, ${fmt(rec['usd_per_mtok_output'])} per "
                 f"million output tokens (blended ${fmt(rec['usd_per_mtok_blended'])})"),
        ("pricing", rec.get("pricing", "")),
    ] + _speculative_rows(rec.get("speculative")) + [("what-if", "; ".join(rec["what_if"]))] * bool(rec.get("what_if"))


def _speculative_rows(sp: dict | None) -> list[tuple[str, str]]:
    if not sp:
        return []
    draft = f"draft {sp['draft_model']}" if sp.get("draft_model") else "n-gram lookup"
    return [("speculative decoding", f"{draft}, k={sp['draft_len']}, acceptance {sp['acceptance']}: "
                                     f"{fmt(sp['tokens_per_step'])} tokens per step, {fmt(sp['speedup'])}× over plain "
                                     f"decode ({fmt(sp['plain_tpot_s'] * 1e3)} ms)")]


def render(row: Row, fmt_name: str, out: str | None, warnings: list[str] | None = None) -> None:
    rec = estimate_record(row.estimate, row.accounting)
    rec["what_if"] = list(row.what_if)
    print_warnings(warnings or [])
    if row.accounting is not None:
        rec.update(priced_at=row.note, priced_batch=(row.loaded or row.estimate).scenario.batch)
    if fmt_name == "json":
        write_text(json_document(rec, warnings or []), out)
    elif fmt_name == "csv":
        write_text(to_csv([rec]), out)
    elif not rec["feasible"]:
        print_rich(f"[bold red]infeasible[/]: {rec['model']} on {rec['hardware']}: {rec['reason']}", path=out)
    else:
        sc = row.estimate.scenario
        title = f"{rec['model']} on {rec['hardware']} · batch {sc.batch} · {sc.input_tokens} in / {sc.output_tokens} out"
        caption = ("ranges: 10th-90th percentile of the leave-one-group-out validation error for this execution "
                   "family and metric (`siliconsim validate`); 'extrapolated' when the chip or model is not in the suite")
        print_rich(table(title, ["quantity", "value"], _rows(rec), caption=caption), path=out)


def _speculation(args: argparse.Namespace):
    if not args.speculative:
        return None
    from siliconsim.speculative import Speculation

    if args.speculative == "ngram":
        return Speculation("ngram", args.draft_len, args.acceptance)
    return Speculation("draft", args.draft_len, args.acceptance, load_model(args.speculative[len("draft:"):]))


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    scenario = Scenario(args.batch, args.input_tokens, args.output_tokens)
    spec = _speculation(args)
    row = evaluate(model, hardware_arg(args), scenario, chips=args.chips, dtype=args.dtype, assumptions=cost_assumptions(args),
                   speculation=spec, slo=None if spec is not None else args.slo, pricing=pricing(args),
                   power_limit_w=args.chip_power_limit_w)
    warning = context_warning(model, scenario.context_tokens)
    render(row, args.format, args.output, [warning] if warning else [])
    if args.plot and row.estimate.deployment is not None:
        _plot_curve(row, args.plot)
    return 0


def _plot_curve(row: Row, path: str) -> None:
    import numpy as np

    from siliconsim.inference import sweep
    from siliconsim.report.plots import latency_throughput

    dep, sc = row.estimate.deployment, row.estimate.scenario
    cap = max(1.0, min(dep.max_batch, dep.kv_capacity_tokens / sc.context_tokens))
    batches = np.unique(np.round(np.geomspace(1, cap, 40)))
    out = sweep(dep, batches, sc.input_tokens, sc.output_tokens)
    title = f"{dep.model.id} on {dep.describe()} · {int(sc.input_tokens)} in / {int(sc.output_tokens)} out"
    latency_throughput(1.0 / out["tpot_s"], out["aggregate_output_tok_s"] * row.estimate.replicas, batches, title, path)
