"""`siliconsim curve`: output tokens/s per chip against tokens/s per user over a concurrency sweep."""

from __future__ import annotations

import argparse
from typing import Any


from siliconsim.cli.args import add_format, add_what_if, hardware_list, positive_int
from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Scenario, estimate
from siliconsim.serving.closed_loop import closed_loop_point
from siliconsim.models.catalog import load_model
from siliconsim.report.render import fmt, fmt_short, json_document, print_rich, table, to_csv, write_text
from siliconsim.validation.errorbars import interval

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DTYPES = ("bf16", "fp16", "fp8", "fp4", "int8", "int4")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="throughput per chip against interactivity over a concurrency sweep",
                       description="For each system: N requests in flight on one replica (closed loop), each a prefill "
                                   "of --input-tokens then --output-tokens decode steps; prints and draws output "
                                   "tokens/s per chip against output tokens/s per user (1/TPOT), the axes of the "
                                   "InferenceX benchmark, with the validation error band.")
    p.add_argument("--model", "-m", required=True, metavar="ID|PATH", help="model id or path to a HF config.json")
    p.add_argument("--hardware", "-H", required=True, nargs="+", metavar="ID|FILE",
                   help="one or more hardware ids or chip TOML files")
    add_what_if(p)
    p.add_argument("--chips", type=positive_int, metavar="N", help="chips per replica (default: smallest feasible)")
    p.add_argument("--dtype", choices=DTYPES, help="weight precision (default: the model's native type)")
    p.add_argument("--input-tokens", type=positive_int, default=1024, metavar="N", help="prompt length (default 1024)")
    p.add_argument("--output-tokens", type=positive_int, default=1024, metavar="N",
                   help="generated length (default 1024)")
    p.add_argument("--concurrency", type=_concurrency, default=DEFAULT_CONCURRENCY, metavar="N,N,...",
                   help="requests in flight, comma-separated (default 1,2,4,...,256)")
    add_format(p)
    p.add_argument("--plot", metavar="FILE.png", help="also draw the curves")


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not vals or min(vals) < 1 or max(vals) > 100_000:
        raise argparse.ArgumentTypeError(f"expected concurrencies between 1 and 100000, got {text!r}")
    return tuple(sorted(set(vals)))


def curve_records(model_ref: str, hardware: list[Chip], concurrency: tuple[int, ...], input_tokens: int,
                  output_tokens: int, chips: int | None = None, dtype: str | None = None) -> list[dict[str, Any]]:
    """One record per system and concurrency (SI-named keys); infeasible systems carry a reason."""
    model = load_model(model_ref)
    out: list[dict[str, Any]] = []
    for chip in hardware:
        hw = chip.id
        est = estimate(model, chip, Scenario(1, input_tokens, output_tokens), chips=chips, dtype=dtype)
        dep = est.deployment
        if dep is None:
            out.append({"hardware": hw, "feasible": False, "reason": est.plan.reason})
            continue
        bars = {k: interval(chip.id, chip.family, model.id, m) for k, m in
                (("output_tok_s_per_user", "output_tok_s_per_user"), ("output_tok_s_per_chip", "aggregate_output_tok_s"))}
        for n in concurrency:
            pt = closed_loop_point(dep, n, input_tokens, output_tokens)
            values = {"output_tok_s_per_user": 1.0 / pt.tpot_s, "output_tok_s_per_chip": pt.output_tok_s / dep.par.chips}
            rec: dict[str, Any] = {"hardware": hw, "model": model.id, "chips": dep.par.chips, "layout": dep.describe(),
                                   "concurrency": n, "in_service": pt.in_service, "feasible": pt.feasible,
                                   "reason": "" if pt.feasible else "the KV cache holds no request",
                                   "ttft_s": pt.ttft_s, "tpot_s": pt.tpot_s}
            for key, iv in bars.items():
                low, high = iv.bounds(values[key])
                rec[key] = values[key]
                rec[f"{key}_range"] = {"low": low, "high": high, "basis": iv.basis}
            out.append(rec)
    return out


def _rows(recs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in recs:
        if "concurrency" not in r:
            rows.append([r["hardware"], "–", "–", "–", "–", f"infeasible: {r['reason']}"])
            continue
        rng = lambda k: f"{fmt(r[k])} ({fmt_short(r[k + '_range']['low'])}–{fmt_short(r[k + '_range']['high'])})"  # noqa: E731
        rows.append([r["hardware"], str(r["concurrency"]), rng("output_tok_s_per_user"), rng("output_tok_s_per_chip"),
                     fmt(r["ttft_s"] * 1e3), fmt(r["tpot_s"] * 1e3)] if r["feasible"] else
                    [r["hardware"], str(r["concurrency"]), "–", "–", "–", r["reason"]])
    return rows


def run(args: argparse.Namespace) -> int:
    recs = curve_records(args.model, hardware_list(args), args.concurrency, args.input_tokens, args.output_tokens,
                         args.chips, args.dtype)
    if not any(r.get("feasible") for r in recs):
        raise InputError("no system can serve the model at any of the concurrencies: "
                         + "; ".join(f"{r['hardware']}: {r['reason']}" for r in recs if r.get("reason")))
    if args.format == "json":
        write_text(json_document({"input_tokens": args.input_tokens, "output_tokens": args.output_tokens,
                                  "results": recs}), args.output)
    elif args.format == "csv":
        write_text(to_csv(recs), args.output)
    else:
        title = f"{recs[0].get('model', args.model)} · {args.input_tokens} in / {args.output_tokens} out · closed-loop concurrency"
        cap = ("closed form of serving/closed_loop.py (the one `validate` scores on the InferenceX sweeps): tok/s/user "
               "= 1/TPOT; tok/s per chip = the replica's output tok/s / its chips; TTFT includes waiting for a slot "
               "beyond the engine's batch or KV capacity; ranges: 10th-90th percentile of the leave-one-group-out "
               "validation error (`siliconsim validate`)")
        print_rich(table(title, ["system", "N", "tok/s per user", "tok/s per chip", "TTFT ms", "TPOT ms"], _rows(recs),
                         caption=cap, justify_right=(1, 2, 3, 4, 5)), path=args.output)
    if args.plot:
        from siliconsim.report.plots import interactivity_curves

        interactivity_curves(recs, f"{args.model} · {args.input_tokens} in / {args.output_tokens} out", args.plot)
    return 0
