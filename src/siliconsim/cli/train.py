"""`siliconsim train`: step time, MFU, memory fit and time/energy/cost to train a model on a cluster."""

from __future__ import annotations

import argparse
import re

from siliconsim.cli.args import HARDWARE_HELP, add_format, add_what_if, hardware_arg, nonneg_float, positive_float, positive_int
from siliconsim.cli.costs import add_cost_options, cost_assumptions
from siliconsim.errors import InputError
from siliconsim.models.catalog import load_model
from siliconsim.report.render import fmt, fmt_short, json_document, print_rich, table, to_csv, write_text
from siliconsim.report.training import BREAKDOWN_LABELS, account, training_record
from siliconsim.training import Pins, TrainingJob, plan_training
from siliconsim.training.estimate import TrainEstimate
from siliconsim.training.job import RECOMPUTE

TRAIN_DTYPES = ("bf16", "fp16", "fp8", "fp4")
DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024
LORA_SUFFIX = re.compile(r"\+lora$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="step time, MFU, memory fit and time/energy/cost to train on a cluster",
                       description="Predict a training step on a GPU/TPU/Gaudi cluster (or a CS-2/CS-3 cluster, "
                                   "weight streaming): step time, tokens/s, MFU and HFU, memory per chip, the step's "
                                   "breakdown, and the time, energy and cost of a token budget. With nothing pinned it "
                                   "searches TP x PP x DP x CP x EP, micro-batch, recomputation and ZeRO stage for the "
                                   "fastest feasible layout.")
    p.add_argument("--model", "-m", required=True, metavar="ID|PATH",
                   help="model id or path to a HF config.json; 'ID+lora' fine-tunes ID with LoRA (rank 16 unless --lora)")
    p.add_argument("--hardware", "-H", required=True, metavar="ID|PATH", help=HARDWARE_HELP)
    add_what_if(p)
    p.add_argument("--chips", type=positive_int, required=True, metavar="N", help="accelerators in the job")
    p.add_argument("--seq-len", type=positive_int, default=4096, metavar="S", help="sequence length in tokens (default 4096)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--global-batch", type=positive_int, metavar="B", help="sequences per optimizer step")
    b.add_argument("--global-batch-tokens", type=positive_int, metavar="T",
                   help=f"tokens per optimizer step, rounded to whole sequences (default {DEFAULT_BATCH_TOKENS:,})")
    p.add_argument("--tokens", type=nonneg_float, default=0.0, metavar="TOTAL",
                   help="token budget: report time, energy and cost to train it (e.g. 15e12)")
    p.add_argument("--dtype", choices=TRAIN_DTYPES, default="bf16", help="matmul precision (default bf16)")
    p.add_argument("--framework", metavar="ID", help="megatron-2022, megatron-core, maxtext, torchtitan "
                                                     "(default: maxtext on TPUs, megatron-core elsewhere)")
    p.add_argument("--slice-chips", type=positive_int, metavar="N",
                   help="TPU Multislice: chips per ICI slice (default: the whole scale-up domain)")
    lay = p.add_argument_group("pin the layout (anything not given is searched)")
    for name, what in (("tp", "tensor parallel"), ("pp", "pipeline stages"), ("dp", "data parallel"),
                       ("cp", "context parallel"), ("ep", "expert parallel"), ("vp", "virtual stages per device"),
                       ("microbatch", "sequences per micro-batch")):
        lay.add_argument(f"--{name}", type=positive_int, metavar="N", help=f"{what}")
    lay.add_argument("--zero", type=int, choices=(0, 1, 2, 3), help="ZeRO stage (0 = plain DDP, 3 = FSDP)")
    lay.add_argument("--fsdp", action="store_true", help="fully sharded data parallel (same as --zero 3)")
    lay.add_argument("--recompute", choices=RECOMPUTE, help="activation recomputation")
    lay.add_argument("--no-sequence-parallel", action="store_true", help="turn off Megatron sequence parallelism")
    p.add_argument("--lora", type=positive_int, metavar="RANK", help="LoRA fine-tuning with adapters of this rank")
    p.add_argument("--usd-per-chip-hour", type=positive_float, metavar="USD",
                   help="rental price per chip-hour: also report the rented cost")
    p.add_argument("--memoryx-tb", type=positive_float, metavar="TB",
                   help="CS-2/CS-3: MemoryX capacity in TB (default: the smallest catalog option holding the model)")
    p.add_argument("--top", type=positive_int, default=5, metavar="K", help="layouts to show (default 5)")
    add_cost_options(p)
    add_format(p)
    p.add_argument("--plot", metavar="FILE.png", help="also draw the step breakdown of the layouts shown")


def _job(args: argparse.Namespace) -> TrainingJob:
    ref = args.model
    lora = args.lora or 0
    if LORA_SUFFIX.search(ref):
        ref, lora = LORA_SUFFIX.sub("", ref), lora or 16
    model = load_model(ref)
    chip = hardware_arg(args)
    if args.global_batch:
        gb = args.global_batch
    else:
        tokens = args.global_batch_tokens or DEFAULT_BATCH_TOKENS
        gb = max(1, round(tokens / args.seq_len))
    return TrainingJob(model=model, chip=chip, chips=args.chips, seq_len=args.seq_len, global_batch=gb,
                       dtype=args.dtype, lora_rank=lora, framework=args.framework or "",
                       slice_chips=args.slice_chips or 0, tokens=args.tokens)


def _pins(args: argparse.Namespace) -> Pins:
    if args.fsdp and args.zero not in (None, 3):
        raise InputError(f"--fsdp means ZeRO stage 3, but --zero {args.zero} was given")
    return Pins(tp=args.tp, pp=args.pp, dp=args.dp, cp=args.cp, ep=args.ep, vp=args.vp, microbatch=args.microbatch,
                zero=3 if args.fsdp else args.zero, recompute=args.recompute,
                sequence_parallel=False if args.no_sequence_parallel else None)


def _duration(s: float | None) -> str:
    if s is None:
        return "–"
    for unit, div in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= div:
            return f"{fmt(s / div)} {unit}"
    return f"{fmt(s)} s"


def _summary_rows(rec: dict) -> list[tuple[str, str]]:
    mem = rec["memory_per_chip_bytes"]
    gb = lambda k: fmt(mem[k] / 1e9)  # noqa: E731
    rows = [
        ("layout", f"{rec['layout']['describe']} ({rec['framework']})"),
        ("memory per chip", f"weights {gb('weights_bytes')} + gradients {gb('gradients_bytes')} + optimizer "
                            f"{gb('optimizer_bytes')} + activations {gb('activations_bytes')} = {gb('total_bytes')} GB "
                            f"of {gb('usable_bytes')} GB usable"),
    ]
    if not rec["feasible"]:
        return rows + [("infeasible", rec["reason"])]
    b = rec["breakdown"]
    shares = ", ".join(f"{BREAKDOWN_LABELS[k]} {b[k] / rec['step_time_s']:.0%}" for k in b if b[k] / rec["step_time_s"] >= 0.005)
    rows += [
        ("step time", f"{_ranged(rec, 'step_time_s')} s for {fmt(rec['tokens_per_step'])} tokens"),
        ("tokens/s", f"{_ranged(rec, 'tokens_per_s')} ({fmt(rec['tokens_per_s_per_chip'])} per chip)"),
        ("MFU / HFU", f"{rec['mfu']:.1%} / {rec['hfu']:.1%} of the bf16 dense peak"),
        ("step breakdown", shares),
        ("sync & data movement", f"{rec['sync_share']:.1%} of the step (exposed communication, bubbles and "
                                 "weight/gradient streaming)"),
    ]
    if rec.get("power_w") is not None:
        covers = rec["accounting_covers"]
        if rec["time_to_train_s"] is not None:
            rows.append(("time to train", f"{_duration(rec['time_to_train_s'])} for {fmt(rec['tokens'])} tokens "
                                          "(steady state; no restarts or checkpoints)"))
        rows += [("power", f"{fmt(rec['power_w'] / 1e3)} kW (chips and hosts, before PUE)"),
                 ("energy", f"{fmt(rec['energy_j'] / 3.6e9)} MWh for {covers}"),
                 ("cost (capex + power)", f"${fmt(rec['cost_usd'])} for {covers}")]
        if rec["cost_rented_usd"] is not None:
            rows.append(("cost (rented)", f"${fmt(rec['cost_rented_usd'])} for {covers}"))
    return rows


def _ranged(rec: dict, key: str) -> str:
    bar = rec.get("error_bars", {}).get(key)
    text = fmt(rec[key])
    return f"{text} ({fmt_short(bar['low'])}–{fmt_short(bar['high'])})" if bar else text


def _alternatives(ranked: tuple[TrainEstimate, ...]) -> list[list[str]]:
    return [[e.layout.describe(), fmt(e.step_time_s), f"{e.mfu:.1%}", fmt(e.memory.used_bytes / 1e9)] for e in ranked]


def run(args: argparse.Namespace) -> int:
    job = _job(args)
    memx = args.memoryx_tb * 1e12 if args.memoryx_tb else None
    if memx is not None and job.chip.family != "wafer":
        raise InputError(f"--memoryx-tb applies to weight-streaming training on CS-2/CS-3, not {job.chip.id}")
    result = plan_training(job, _pins(args), framework_ref=args.framework, keep=args.top, memoryx_bytes=memx)
    a = cost_assumptions(args)
    shown = result.ranked or result.infeasible[:1]
    recs = [training_record(e, account(e, a, args.usd_per_chip_hour)) for e in shown]
    if args.format == "json":
        write_text(json_document({"best": recs[0] if result.best else None,
                                  "alternatives": recs[1:] if result.best else [],
                                  "infeasible": [training_record(e, None) for e in result.infeasible],
                                  "layouts_tried": result.tried}), args.output)
    elif args.format == "csv":
        write_text(to_csv(recs), args.output)
    else:
        _print_tables(job, result, recs, args.output)
    if args.plot and result.ranked:
        from siliconsim.report.plots import training_breakdown

        training_breakdown([e.layout.describe() for e in result.ranked], [e.breakdown.as_dict() for e in result.ranked],
                           f"{job.model.id} on {job.chips}× {job.chip.id}", args.plot)
    return 0


def _print_tables(job: TrainingJob, result, recs: list[dict], out: str | None) -> None:
    lora = f" · LoRA r{job.lora_rank}" if job.lora_rank else ""
    title = (f"train {job.model.id}{lora} on {job.chips}× {job.chip.id} · {job.seq_len} × {job.global_batch} sequences "
             f"per step · {job.dtype}")
    caption = (f"{result.tried} layouts tried" + ("" if result.best else "; none fits") +
               "; ranges: 10th-90th percentile of the training suite's leave-one-group-out error")
    parts = [table(title, ["quantity", "value"], _summary_rows(recs[0]), caption=caption)]
    if len(result.ranked) > 1:
        parts.append(table("next best layouts", ["layout", "step s", "MFU", "GB/chip"], _alternatives(result.ranked[1:]),
                           justify_right=(1, 2, 3)))
    print_rich(*parts, path=out)
