"""`siliconsim compare --train`: one training job on every kind of system, each at the smallest
cluster meeting a deadline (or at a chip or power budget): days, MFU, the share of the step spent
on synchronisation and data movement, energy, and cost (capex amortised and rented)."""

from __future__ import annotations

import argparse

from siliconsim.accounting.rental import rental_rate
from siliconsim.cli.args import hardware_list, positive_float, positive_int
from siliconsim.cli.costs import cost_assumptions
from siliconsim.errors import InputError
from siliconsim.models.catalog import load_model
from siliconsim.planner.compare import compare_defaults
from siliconsim.planner.compare_train import DEFAULT_DEADLINE_DAYS, TRAIN_SYSTEMS, Target, TrainRow, compare_training
from siliconsim.report.render import fmt, json_document, print_rich, table, to_csv, write_text
from siliconsim.report.training import account, sync_share

DEFAULT_SEQ_LEN = 4096
DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training comparison (--train): the same training job on every system")
    g.add_argument("--train", action="store_true", help="compare training instead of inference (needs --tokens)")
    g.add_argument("--tokens", type=positive_float, metavar="T", help="token budget to train on (e.g. 15e12)")
    g.add_argument("--seq-len", type=positive_int, default=DEFAULT_SEQ_LEN, metavar="S",
                   help=f"sequence length (default {DEFAULT_SEQ_LEN})")
    g.add_argument("--global-batch", type=positive_int, metavar="B",
                   help=f"sequences per optimizer step (default {DEFAULT_BATCH_TOKENS:,} tokens' worth)")
    t = g.add_mutually_exclusive_group()
    t.add_argument("--deadline-days", type=positive_float, metavar="D",
                   help=f"smallest cluster that trains within D days (the default, D = {DEFAULT_DEADLINE_DAYS:g})")
    t.add_argument("--chips-budget", type=positive_int, metavar="N", help="every system at N chips (CS-3: systems)")
    t.add_argument("--power-budget-mw", type=positive_float, metavar="P",
                   help="the largest cluster drawing at most P MW (chips and hosts, before PUE)")
    g.add_argument("--usd-per-chip-hour", type=positive_float, metavar="USD",
                   help="rental price for every system (default: each system's rate in accounting/data/prices.csv)")
    g.add_argument("--rental-tier", metavar="TIER", help="price tier of prices.csv to rent at (default: longest-term listed)")


def _target(args: argparse.Namespace) -> Target:
    if args.chips_budget:
        return Target(chips=args.chips_budget)
    if args.power_budget_mw:
        return Target(power_w=args.power_budget_mw * 1e6)
    return Target(deadline_s=(args.deadline_days or DEFAULT_DEADLINE_DAYS) * 86400.0)


def _record(r: TrainRow, args: argparse.Namespace) -> dict:
    e = r.estimate
    rec: dict = {"hardware": r.hardware_id, "meets_target": r.meets, "reason": r.reason, "sizes_tried": r.sizes_tried}
    if e is None:
        return rec
    rate = rental_rate(r.hardware_id, args.rental_tier)
    usd_h = args.usd_per_chip_hour or (rate.usd_per_chip_hour if rate else None)
    acct = account(e, cost_assumptions(args), usd_h)
    node = e.job.chip.system.chips_per_node
    rec |= {"chips": e.job.chips, "nodes": -(-e.job.chips // node), "layout": e.layout.describe(),
            "days": e.time_to_train_s / 86400.0, "tokens_per_s": e.tokens_per_s, "mfu": e.mfu,
            "sync_share": sync_share(e), "step_time_s": e.step_time_s, "breakdown": e.breakdown.as_dict(),
            "energy_mwh": acct.energy_j / 3.6e9 if acct else None, "power_w": acct.power_w if acct else None,
            "cost_capex_usd": acct.cost_usd if acct else None, "cost_rented_usd": acct.cost_rented_usd if acct else None,
            "usd_per_chip_hour": usd_h,
            "rental_source": ("--usd-per-chip-hour" if args.usd_per_chip_hour else
                              f"prices.csv {rate.row_id} ({rate.tier})" if rate else None)}
    return rec


def _cells(rec: dict, note: int | None) -> list[str]:
    if "chips" not in rec:
        return [rec["hardware"], f"[yellow]not feasible [{note}][/]"] + ["–"] * 7
    mark = f" [yellow][{note}][/]" if note else ""
    rented = f"${fmt(rec['cost_rented_usd'] / 1e6)}M" if rec["cost_rented_usd"] is not None else "–"
    sysword = "systems" if rec["layout"].startswith("weight streaming") else f"chips ({rec['nodes']:,} nodes)"
    return [rec["hardware"], f"{rec['chips']:,} {sysword}{mark}", rec["layout"], fmt(rec["days"]), f"{rec['mfu']:.1%}",
            f"{rec['sync_share']:.1%}", fmt(rec["energy_mwh"]), f"${fmt(rec['cost_capex_usd'] / 1e6)}M", rented]


def run(args: argparse.Namespace) -> int:
    if not args.tokens:
        raise InputError("compare --train needs --tokens T (the token budget, e.g. 15e12)")
    rental_rate("", args.rental_tier)  # an unknown tier fails before any timing
    d = compare_defaults()
    if args.hardware == list(d.systems):
        args.hardware = list(TRAIN_SYSTEMS)
    systems = hardware_list(args)
    model = load_model(args.model)
    gb = args.global_batch or max(1, round(DEFAULT_BATCH_TOKENS / args.seq_len))
    target = _target(args)
    a = cost_assumptions(args)
    rows = compare_training(model, systems, tokens=args.tokens, seq_len=args.seq_len, global_batch=gb, target=target,
                            power_of=lambda e: account(e, a, None).power_w)  # type: ignore[union-attr]
    recs = [_record(r, args) for r in rows]
    title = (f"train {model.id} on {args.tokens:.3g} tokens · {args.seq_len} × {gb} sequences per step · "
             f"{target.describe()}")
    if args.format == "json":
        write_text(json_document({"title": title, "rows": recs}), args.output)
    elif args.format == "csv":
        write_text(to_csv([{k: v for k, v in r.items() if k != "breakdown"} for r in recs]), args.output)
    else:
        _print(recs, title, args.output)
    if args.plot:
        from siliconsim.report.plots import training_breakdown

        ok = [r for r in recs if "chips" in r]
        training_breakdown([f"{r['hardware']} ({r['chips']:,}×)" for r in ok], [r["breakdown"] for r in ok], title,
                           args.plot)
    return 0


def _print(recs: list[dict], title: str, out: str | None) -> None:
    notes: list[str] = []
    body = []
    for r in recs:
        note = None
        if r["reason"]:
            notes.append(f"[{len(notes) + 1}] {r['hardware']}: {r['reason']}")
            note = len(notes)
        body.append(_cells(r, note))
    cols = ["system", "cluster", "layout", "days", "MFU", "sync & data movement", "MWh", "$ capex+power", "$ rented"]
    caption = ("days: token budget / steady-state tokens/s (no restarts or checkpoints). MFU of the bf16 dense peak "
               "(CS-3: derived from the PE array, not the 125 PF headline). sync & data movement: exposed share of the "
               "step (GPU/TPU: TP/DP/CP/EP communication and pipeline bubble; CS-3: weight streaming, gradient "
               "reduction and step bubble). MWh at the wall before PUE. $ capex+power: purchase amortised over the "
               "lifetime at the assumed utilisation plus electricity at PUE; $ rented: chip-hours at the listed rate.")
    if notes:
        caption += "\n" + "\n".join(notes)
    print_rich(table(title, cols, body, caption=caption, justify_right=(3, 4, 5, 6, 7, 8)), path=out)
