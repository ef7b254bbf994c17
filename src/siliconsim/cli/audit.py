"""`siliconsim audit`: vendor claims against the microarchitecture, and a model's resource use."""

from __future__ import annotations

import argparse
from typing import Any

from siliconsim.audit import compare_decode, decode_utilisation, headline_claims
from siliconsim.cli.args import DTYPES, HARDWARE_HELP, add_format, add_what_if, hardware_arg, positive_float, positive_int
from siliconsim.errors import InputError
from siliconsim.hardware.custom import resolve_chip
from siliconsim.models.catalog import load_model
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="check headline claims against the microarchitecture; resource use of a model",
                       description="Vendor figures beside derived ones; the fraction of each resource a decode "
                                   "stream uses; two systems' per-token time side by side.")
    p.add_argument("--hardware", "-H", required=True, metavar="ID|PATH", help=HARDWARE_HELP)
    add_what_if(p)
    p.add_argument("--model", "-m", metavar="ID", help="model whose batch-1 decode to audit")
    p.add_argument("--vs", metavar="ID", help="second hardware id: per-token time breakdown side by side")
    p.add_argument("--chips", type=positive_int, metavar="N", help="chips per replica (default: smallest feasible)")
    p.add_argument("--dtype", choices=DTYPES, help="weight precision (default: the model's native type)")
    p.add_argument("--tok-s", type=positive_float, metavar="X", help="a measured tok/s per user to audit as well")
    p.add_argument("--training", action="store_true",
                   help="audit a training step of --model instead: fraction of peak used and where the rest goes "
                        "(--chips default: one node; CS-2/CS-3: one system)")
    p.add_argument("--seq-len", type=positive_int, default=4096, metavar="S", help="--training: sequence length")
    p.add_argument("--global-batch", type=positive_int, metavar="B",
                   help="--training: sequences per step (default 4M tokens' worth)")
    add_format(p)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    chip = hardware_arg(args)
    out: dict[str, Any] = {"hardware": chip.id, "what_if": list(chip.what_if), "claims": headline_claims(chip)}
    if args.training:
        out["training"] = _training(args, chip)
    elif args.model:
        model = load_model(args.model)
        out["decode"] = decode_utilisation(model, chip, chips=args.chips, dtype=args.dtype, tok_s=args.tok_s)
        if args.vs:
            out["compare"] = compare_decode(model, [chip, resolve_chip(args.vs)], dtype=args.dtype)
    return out


def _training(args: argparse.Namespace, chip: Any) -> dict[str, Any]:
    from siliconsim.training import TrainingJob, plan_training
    from siliconsim.training.utilisation import utilisation

    if not args.model:
        raise InputError("audit --training needs --model")
    chips = args.chips or chip.system.chips_per_node
    gb = args.global_batch or max(chips, round(4 * 1024 * 1024 / args.seq_len))
    job = TrainingJob(model=load_model(args.model), chip=chip, chips=chips, seq_len=args.seq_len, global_batch=gb)
    res = plan_training(job, keep=1)
    return utilisation(res.best or res.infeasible[0])


def _training_table(rec: dict[str, Any]) -> Any:
    if not rec["feasible"]:
        return f"[bold red]infeasible[/]: {rec['reason']}"
    from siliconsim.report.training import BREAKDOWN_LABELS

    rows = [(BREAKDOWN_LABELS.get(r["part"], r["part"]), "" if r["seconds"] is None else fmt(r["seconds"]),
             f"{r['fraction_of_peak']:.1%}") for r in rec["rows"]]
    head = (f"; vendor headline {si(rec['headline_flop_per_s'], 'FLOP/s')}: model FLOPs are "
            f"{rec['mfu_of_headline']:.1%} of it" if rec["headline_flop_per_s"] else "")
    cap = (f"{rec['chips']}× {rec['hardware']}, {rec['layout']}: {si(rec['model_flop_per_s'], 'FLOP/s')} of model FLOPs "
           f"vs a bf16 dense peak of {si(rec['dense_peak_flop_per_s'], 'FLOP/s')} (MFU {rec['mfu']:.1%}, HFU "
           f"{rec['hfu']:.1%}){head}")
    if rec["mesh_flop_per_s"]:
        cap += (f"; the PE mesh's SRAM-fed FMAC rate is {si(rec['mesh_flop_per_s'], 'FLOP/s')}, "
                f"{rec['mesh_flop_per_s'] / rec['dense_peak_flop_per_s']:.0%} of the dense peak")
    return table(f"training step of {rec['model']}: where the dense peak goes", ["part", "s per step", "share of peak"],
                 rows, caption=cap, justify_right=(1, 2))


_PREFIX = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(v: float, unit: str = "") -> str:
    """Engineering notation with a decimal prefix: 2.1e16 B/s -> '21 PB/s'."""
    if v != v:
        return "–"
    for scale, p in _PREFIX:
        if abs(v) >= scale:
            return f"{v / scale:.3g} {p}{unit}"
    return f"{v:.3g} {unit}".strip()


def _csv_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"section": "claims", **r} for r in rec["claims"]]
    dec = rec.get("decode") or {}
    rows += [{"section": "decode", **r} for r in dec.get("rows", [])]
    rows += [{"section": "compare", **r} for r in rec.get("compare", [])]
    rows += [{"section": "training", **r} for r in (rec.get("training") or {}).get("rows", [])]
    return rows


def _claims_table(rec: dict[str, Any]) -> Any:
    rows = [(r["claim"], si(r["vendor"], r["unit"]), si(r["derived"], r["unit"]), fmt(r["vendor_over_derived"]),
             r["derivation"]) for r in rec["claims"]]
    return table(f"{rec['hardware']}: headline claims", ["claim", "vendor", "derived", "vendor/derived", "derived from"],
                 rows, justify_right=(1, 2, 3))


def _decode_table(dec: dict[str, Any]) -> Any:
    if not dec.get("feasible"):
        return f"[bold red]infeasible[/]: {dec.get('reason')}"
    measured = dec["measured_tok_s"] == dec["measured_tok_s"]
    cols = ["resource", "capacity", "per token", "used at predicted", "fraction"]
    cols += ["used at measured", "fraction"] if measured else []
    rows = []
    for r in dec["rows"]:
        u = r["unit"]
        row = [r["resource"], si(r["capacity"], u), si(r["per_token"], u.split("/")[0]), si(r["used_at_predicted"], u),
               f"{r['fraction_at_predicted']:.3%}"]
        if measured:
            row += [si(r["used_at_measured"], u), f"{r['fraction_at_measured']:.3%}"]
        rows.append(row)
    cap = (f"predicted {fmt(dec['predicted_tok_s'])} tok/s/user on {dec['deployment']}"
           + (f"; measured {fmt(dec['measured_tok_s'])}" if measured else "")
           + f"; physical bound {fmt(dec['physical_bound_tok_s'])} tok/s ({dec['physical_bound_reason']})")
    return table("batch-1 decode: resource use", cols, rows, caption=cap, justify_right=(1, 2, 3, 4, 5, 6))


def _compare_table(rows: list[dict[str, Any]]) -> Any:
    out = []
    for r in rows:
        if not r["feasible"]:
            out.append((r["hardware"], "infeasible", r["reason"], "", "", "", "", ""))
            continue
        b, s = r["breakdown_s"], r["shares"]
        cell = lambda k: f"{fmt(b[k + '_s'] * 1e6)} µs ({s[k]:.0%})"  # noqa: E731
        out.append((r["hardware"], r["deployment"], fmt(r["output_tok_s_per_user"]), cell("compute"), cell("memory"),
                    cell("network"), cell("overhead"), r["dominant"]))
    return table("per-token decode time, batch 1", ["system", "deployment", "tok/s/user", "compute", "memory",
                                                    "network", "overhead", "dominant"], out, justify_right=(2,))


def run(args: argparse.Namespace) -> int:
    rec = collect(args)
    if args.format == "json":
        write_text(json_document(rec), args.output)
    elif args.format == "csv":
        write_text(to_csv(_csv_rows(rec)), args.output)
    else:
        parts = [_claims_table(rec)]
        if "training" in rec:
            parts.append(_training_table(rec["training"]))
        if "decode" in rec:
            parts.append(_decode_table(rec["decode"]))
        if "compare" in rec:
            parts.append(_compare_table(rec["compare"]))
        print_rich(*parts, path=args.output)
    return 0
