"""Load a training suite (``training-dev.csv`` schema, see ``data/README.md``) and read each row's
published layout.

The ``parallelism`` column is free text as published; :func:`published_pins` reads what it
states (``TP=8 PP=8 DP=1``, ``MBS=2``, ``microbatch 4``, ``3 virtual stages``, ``FSDP=on``,
``FSDP=32``, ``ZeRO-1``, ``full activation recompute``, ``selective``, ``no sequence
parallel``, TPU ``2x v5p-128`` slices) and leaves the rest to the layout search. A row that states
a layout is taken to name every dimension it uses: TP, PP, CP and EP it does not mention are 1
("FSDP within slice" is pure FSDP); a row that states none ("as submitted") is searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from siliconsim.training.search import Pins
from siliconsim.validation.suite import DATA, TRUST, _Row, read_suite

DEFAULT_TRAINING_SUITE = DATA / "training-dev.csv"
TRAINING_COLUMNS = ("id", "vendor", "hardware", "chips", "model", "model_config_source", "precision",
                    "global_batch_seqs", "seq_len", "parallelism", "framework", "metric", "value", "unit",
                    "date", "source_url", "notes")
# metric -> the unit it is published in (the suite's unit cell starts with one of these)
TRAINING_METRICS = {"tokens_per_s": ("tokens/s", "tok/s"), "step_time_s": ("s",), "mfu_pct": ("%",),
                    "hfu_pct": ("%",), "model_tflops_per_chip": ("TFLOP/s",), "time_to_train_min": ("min",)}


@dataclass(frozen=True)
class TrainingCase:
    id: str
    vendor: str
    hardware: str
    chips: int
    model: str
    precision: str
    global_batch: int | None
    seq_len: int | None
    parallelism: str
    framework: str
    metric: str
    value: float
    unit: str
    source_url: str
    notes: str

    @property
    def trust(self) -> str:
        return self.notes[1:self.notes.index("]")]

    @property
    def group(self) -> tuple[str, str]:
        """The (hardware, model) group used for leave-one-group-out error."""
        return self.hardware, self.model

    @property
    def dtype(self) -> str:
        """Matmul precision: fp8 for FP8/MXFP8 recipes, fp4 for NVFP4, else bf16 (fp16 runs at
        the same rate)."""
        p = self.precision.lower()
        if "fp4" in p:
            return "fp4"
        if "fp8" in p:
            return "fp8"
        return "fp16" if p.startswith("fp16") else "bf16"


def is_training_suite(fieldnames: list[str] | None) -> bool:
    """A suite is a training suite when its header has the training schema's own columns."""
    return bool(fieldnames) and {"parallelism", "global_batch_seqs", "framework"} <= set(fieldnames or ())


def _case(row: _Row) -> TrainingCase:
    metric = row.text("metric", tuple(TRAINING_METRICS))
    unit = row.text("unit")
    if unit.split()[0].split("/iteration")[0] not in TRAINING_METRICS[metric]:
        raise row.fail("unit", f"{' or '.join(TRAINING_METRICS[metric])} for metric {metric}")
    notes = row.cells["notes"].strip()
    tag = notes[1:notes.find("]")] if notes.startswith("[") and "]" in notes else ""
    if tag not in TRUST + ("paper", "log"):
        raise row.fail("notes", "a trust tag such as [paper], [mlperf] or [log] at the start")
    gb, seq = row.number("global_batch_seqs", whole=True), row.number("seq_len", whole=True)
    return TrainingCase(
        id=row.text("id"), vendor=row.text("vendor"), hardware=row.text("hardware"),
        chips=int(row.number("chips", required=True, whole=True)),  # type: ignore[arg-type]
        model=row.text("model"), precision=row.text("precision"), global_batch=int(gb) if gb else None,
        seq_len=int(seq) if seq else None, parallelism=row.cells["parallelism"].strip(),
        framework=row.text("framework"), metric=metric, value=row.number("value", required=True),  # type: ignore[arg-type]
        unit=unit, source_url=row.cells["source_url"].strip(), notes=notes)


def load_training_cases(path: str | Path | None = None) -> list[TrainingCase]:
    """Every row of the training suite at ``path`` (default: the packaged ``training-dev.csv``)."""
    return read_suite(Path(path) if path else DEFAULT_TRAINING_SUITE, TRAINING_COLUMNS, _case)


_SIZE = re.compile(r"\b(TP|PP|DP|CP|VP|EP|MBS|GA)\s*=\s*(\d+)")
_SLICES = re.compile(r"\b(\d+)\s*x\s*v\d+[a-z]*-\d+", re.IGNORECASE)


def published_pins(case: TrainingCase) -> tuple[Pins, int]:
    """The layout dimensions the row states, and the TPU slice size in chips (0 = not stated)."""
    text = case.parallelism
    low = text.lower()
    sizes = {k: int(v) for k, v in _SIZE.findall(text)}
    mb = sizes.get("MBS") or _int(re.search(r"microbatch (\d+)", low))
    vp = sizes.get("VP") or _int(re.search(r"(\d+) virtual stages", low)) or (1 if "non-interleaved" in low else None)
    dp = sizes.get("DP") or _int(re.search(r"\bfsdp\s*=\s*(\d+)", low))
    zero = None
    if re.search(r"fsdp\s*=\s*(on|\d+)|fsdp \(zero-3|fsdp within slice|zero-3|full shard|fsdp \+", low):
        zero = 3
    elif "zero-1" in low or "fsdp=off" in low:  # Megatron's distributed optimizer is ZeRO-1
        zero = 1
    recompute = "full" if re.search(r"full (activation )?(recompute|ac)\b", low) else \
        "selective" if "selective" in low else None
    sp = False if "no sequence parallel" in low else (True if "sequence parallel" in low else None)
    slices = _int(_SLICES.search(text))
    slice_chips = case.chips // slices if slices else 0
    dims = {d: sizes.get(d) for d in ("TP", "PP", "CP", "EP")}
    if sizes or zero is not None:  # a stated layout names every dimension it uses: the others are 1
        for d in dims:
            if dims[d] is None and (not re.search(rf"\b{d}\b", text) or re.search(rf"\bno {d}\b", text)):
                dims[d] = 1
    return Pins(tp=dims["TP"], pp=dims["PP"], dp=dp, cp=dims["CP"], ep=dims["EP"], vp=vp,
                microbatch=mb, zero=zero, recompute=recompute, sequence_parallel=sp), slice_chips


def _int(m: re.Match | None) -> int | None:
    return int(m.group(1)) if m else None
