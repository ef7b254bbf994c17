"""`siliconsim list hardware|models`: catalog ids with one-line descriptions."""

from __future__ import annotations

import argparse

from siliconsim.cli.args import add_format
from siliconsim.hardware.catalog import chip_ids, load_chip
from siliconsim.models.catalog import load_model, model_ids
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list catalog ids", description="List hardware or model ids with descriptions.")
    p.add_argument("what", choices=("hardware", "models"), help="which catalog to list")
    add_format(p)


def _hardware() -> list[dict]:
    out = []
    for i in chip_ids():
        c = load_chip(i)
        bf16 = c.dense_flop_per_s.get("bf16") or c.dense_flop_per_s.get("fp16") or 0.0
        out.append({"id": i, "family": c.family, "vendor": c.vendor, "description": c.description,
                    "memory_bytes": c.capacity_bytes, "bandwidth_bytes_per_s": c.bandwidth_bytes_per_s,
                    "dense_bf16_flop_per_s": bf16})
    return out


def _models() -> list[dict]:
    out = []
    for i in model_ids():
        m = load_model(i)
        kind = ("MLA " if m.is_mla else "") + ("MoE" if m.is_moe else "dense")
        out.append({"id": i, "architecture": m.architecture, "kind": kind, "total_params": m.total_params,
                    "active_params": m.active_params, "layers": m.n_layers, "native_dtype": m.native_dtype,
                    "served_weights": m.weights_label()})
    return out


def run(args: argparse.Namespace) -> int:
    rows = _hardware() if args.what == "hardware" else _models()
    if args.format == "json":
        write_text(json_document(rows), args.output)
    elif args.format == "csv":
        write_text(to_csv(rows), args.output)
    elif args.what == "hardware":
        print_rich(table("hardware", ["id", "family", "memory GB", "TB/s", "dense bf16 TFLOP/s", "description"],
                         [[r["id"], r["family"], fmt(r["memory_bytes"] / 1e9), fmt(r["bandwidth_bytes_per_s"] / 1e12),
                           fmt(r["dense_bf16_flop_per_s"] / 1e12), r["description"]] for r in rows],
                         justify_right=(2, 3, 4)), path=args.output)
    else:
        print_rich(table("models", ["id", "architecture", "kind", "total B", "active B", "layers", "weights"],
                         [[r["id"], r["architecture"], r["kind"], fmt(r["total_params"] / 1e9), fmt(r["active_params"] / 1e9),
                           r["layers"], r["served_weights"]] for r in rows], justify_right=(3, 4, 5),
                         caption="weights: the precision compare and estimate serve by default (the checkpoint's; "
                                 "'bf16+mxfp4': experts kept in their quantized format)"), path=args.output)
    return 0
