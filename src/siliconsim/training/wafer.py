"""Weight-streaming training on Cerebras wafer-scale clusters (CS-2, CS-3).

Facts: ``../reference/training-modeling.md`` §4 and ``wafer-scale-modeling.md`` §3 (Cerebras docs
"execution modes", glossary "MemoryX" and "SwarmX").

- **Data parallel only.** Each of N systems runs every layer for its share of the global batch,
  ``ceil(B / N)`` sequences, with activations in wafer SRAM. The SRAM left after the streaming
  buffers caps the sequences of one micro-batch (``checkpoint_layers`` in ``data/wafer.toml``:
  the hidden state is kept every few layers and the rest recomputed in the backward pass, whose
  weights stream in again); a larger share runs as several micro-batches.
- **Weights stream** from MemoryX through SwarmX over the system I/O layer by layer (a layer too
  big for ``stream_buffer_fraction`` of the SRAM in operator-sized chunks, one expert at a time
  if need be); the next piece's transfer overlaps this piece's compute, so only
  ``max(0, transfer - compute)`` is exposed (``weight_stream_s``). Each layer's request pays the
  SwarmX tree latency ``depth x level`` with ``depth = ceil(log_fanout N)``; bytes move at the
  slowest of system I/O, SwarmX and MemoryX per system.
- **Gradients stream out** in the backward pass (the other direction of the full-duplex I/O) and
  SwarmX sums them on the way: per-system traffic is one weight copy in per pass and one gradient
  out per micro-batch, independent of N. What the next piece's compute does not hide, and the
  last piece's drain, is ``grad_reduce_s``.
- **MemoryX runs the optimizer** as gradients arrive; only the update of the first unit (whose
  gradient arrives last and whose weights the next step needs first) is exposed
  (``optimizer_s``), followed by the first fetch of each micro-batch (``step_bubble_s``).
- **Compute** runs at the PE mesh's FMAC rate (``perf/wafer.Mesh``: programmable PEs x FMAC per
  cycle the per-PE SRAM bandwidth allows x 2 x clock, as the inference family's prefill) times
  one fraction per (wafer generation, Cerebras release line), fitted on the suite's CS-2 logs;
  the vendor's 125 PF headline is never used. Elementwise work runs at the PEs' SRAM bandwidth.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from siliconsim.errors import CatalogError, InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip
from siliconsim.hardware.stores import MemoryX, SwarmX, load_memoryx, load_swarmx
from siliconsim.models.spec import ModelSpec, bytes_per_element
from siliconsim.perf.constants import family_constants
from siliconsim.perf.ops import Op, head_ops, layer_ops
from siliconsim.perf.wafer import Mesh
from siliconsim.training.estimate import TrainEstimate
from siliconsim.training.job import Layout, TrainingJob
from siliconsim.training.memory import TrainingMemory
from siliconsim.training.params import DATA
from siliconsim.training.search import Pins, SearchResult
from siliconsim.training.step import StepBreakdown

STREAMING_KEYS = ("weight_bytes", "gradient_bytes", "activation_bytes", "checkpoint_layers", "sram_reserved_fraction",
                  "stream_buffer_fraction")
WAFER_PARTS = ("weight_stream_s", "grad_reduce_s", "step_bubble_s")
WAFER_DTYPES = ("bf16", "fp16")  # the WSE's matmul types (CB16/fp16 mixed precision)


@dataclass(frozen=True)
class SoftwareLine:
    chip: str
    line: str
    match: tuple[str, ...]
    fraction: float  # of the mesh FMAC rate a training step achieves
    basis: str


@dataclass(frozen=True)
class WaferData:
    memoryx: dict[str, str]  # chip id -> memoryx store id
    swarmx: dict[str, str]
    streaming: dict[str, float]
    lines: tuple[SoftwareLine, ...]

    def lines_of(self, chip_id: str) -> list[SoftwareLine]:
        return [s for s in self.lines if s.chip == chip_id]


@functools.cache
def wafer_data() -> WaferData:
    path = DATA / "wafer.toml"
    doc = read_toml(path)
    systems = doc.get("systems", {})
    stream = doc.get("streaming", {})
    missing = [k for k in STREAMING_KEYS if k not in stream]
    if missing:
        raise CatalogError(f"{path.name}: [streaming] lacks {', '.join(missing)}")
    values = {k: sourced(stream[k], "dimensionless", f"{path.name}: streaming.{k}").value for k in STREAMING_KEYS}
    lines = []
    for chip, table in doc.get("software_lines", {}).items():
        for line, t in table.items():
            s = sourced(t.get("value"), "dimensionless", f"{path.name}: software_lines.{chip}.{line}.value")
            lines.append(SoftwareLine(chip, line, tuple(t.get("match", [])), s.value, s.basis))
    return WaferData({c: t["memoryx"] for c, t in systems.items()}, {c: t["swarmx"] for c, t in systems.items()},
                     values, tuple(lines))


def software_line(chip: Chip, framework_text: str) -> SoftwareLine:
    """The release line a suite row's or user's framework text names (``R1.9.2`` -> ``R1``);
    the newest line of the chip when the text names none."""
    lines = wafer_data().lines_of(chip.id)
    if not lines:
        raise CatalogError(f"training/data/wafer.toml: no software line for {chip.id}")
    for s in lines:
        if any(m in framework_text for m in s.match):
            return s
    return lines[-1]


def stores_of(chip: Chip) -> tuple[MemoryX, SwarmX]:
    d = wafer_data()
    if chip.id not in d.memoryx:
        raise InputError(f"weight-streaming training on {chip.id}: no MemoryX/SwarmX in training/data/wafer.toml "
                         f"(known: {', '.join(sorted(d.memoryx))})")
    return load_memoryx(d.memoryx[chip.id]), load_swarmx(d.swarmx[chip.id])


@dataclass(frozen=True)
class StreamingLayout(Layout):
    """Data parallel over ``dp`` systems; ``microbatch`` sequences per system per micro-batch."""

    accumulation: int = 1  # micro-batches per step on each system
    memoryx_bytes: float = 0.0
    line: str = ""

    def describe(self) -> str:
        acc = f" x {self.accumulation} micro-batches" if self.accumulation > 1 else ""
        memx = (f"{self.memoryx_bytes / 1e15:.3g} PB" if self.memoryx_bytes >= 1e15
                else f"{self.memoryx_bytes / 1e12:.3g} TB")
        return f"weight streaming DP{self.dp}, {self.microbatch} seq/system{acc}, MemoryX {memx}, SW {self.line}"

    def as_dict(self) -> dict[str, object]:
        return super().as_dict() | {"mode": "weight_streaming", "accumulation": self.accumulation,
                                    "memoryx_bytes": self.memoryx_bytes, "software_line": self.line}


@dataclass(frozen=True)
class WaferStepBreakdown(StepBreakdown):
    """The standard keys plus the wafer's own exposed parts (all seconds per step)."""

    weight_stream_s: float = 0.0
    grad_reduce_s: float = 0.0
    step_bubble_s: float = 0.0


@dataclass(frozen=True)
class Unit:
    """One streamed unit (the embedding, one operator of a layer, one expert, the LM head) for
    one token."""

    params: float
    flop_fwd: float  # matmul and attention FLOP per token, forward
    sram_elements: float  # elementwise activation elements per token, forward
    opens_layer: bool = False  # its request pays the SwarmX tree latency; the rest of the layer streams behind it


def _op_units(op: Op, span: float) -> list[Unit]:
    """A layer operator as streamed units: a routed-expert block is one unit per expert, each
    taking ``k / n`` of the tokens; attention counts every key in the span (no causal tile
    skipping assumed on the mesh)."""
    if op.kind == "experts":
        return [Unit(op.params / op.n_experts, op.flop_per_token / op.n_experts, op.act_elements / op.n_experts)] * op.n_experts
    if op.kind == "attention":
        return [Unit(0.0, op.flop_per_pair * span, 0.0)]
    if op.kind == "matmul":
        return [Unit(op.params, op.flop_per_token, 0.0)]
    return [Unit(op.params, 0.0, op.act_elements)]


@functools.cache
def units(model: ModelSpec, seq_len: int) -> tuple[Unit, ...]:
    """Units in forward order, from the operator list of ``perf/ops``. The wafer consumes a
    layer operator by operator, so the stream's granularity (and the double buffer's size) is
    one operator's weights: a whole MoE layer need not fit in SRAM at once."""
    head = head_ops(model)
    emb = model.vocab_size * model.d_model if not model.tied_embeddings else 0.0
    out = [Unit(emb, 0.0, sum(op.act_elements for op in head if op.name == "embedding"), True)]
    for g in model.groups:
        span = min(seq_len, g.window) if g.window else seq_len
        layer = [u for op in layer_ops(model, g) for u in _op_units(op, span)]
        out += ([replace(layer[0], opens_layer=True)] + layer[1:]) * g.count
    tail = [u for op in head if op.name != "embedding" for u in _op_units(op, seq_len)]
    return tuple(out + [replace(tail[0], opens_layer=True)] + tail[1:])


def _merge(us: list[Unit], opens: bool) -> Unit:
    return Unit(sum(u.params for u in us), sum(u.flop_fwd for u in us), sum(u.sram_elements for u in us), opens)


def stream_units(chip: Chip, model: ModelSpec, seq_len: int) -> tuple[Unit, ...]:
    """What streams as one piece: a whole decoder layer (the embedding, the head) when its
    double-buffered weights and a gradient buffer fit ``stream_buffer_fraction`` of the usable
    SRAM, else the layer cut at operator boundaries (one expert at a time if need be) into as
    few consecutive chunks as fit."""
    s = wafer_data().streaming
    per_param = 2.0 * s["weight_bytes"] + s["gradient_bytes"]
    return _chunks(model, seq_len, _usable_sram_bytes(chip) * s["stream_buffer_fraction"] / per_param)


@functools.cache
def _chunks(model: ModelSpec, seq_len: int, cap: float) -> tuple[Unit, ...]:
    out: list[Unit] = []
    chunk: list[Unit] = []
    opens = False
    for u in units(model, seq_len) + (Unit(0.0, 0.0, 0.0, True),):  # a sentinel closes the last layer
        if chunk and (u.opens_layer or sum(c.params for c in chunk) + u.params > cap):
            out.append(_merge(chunk, opens))
            chunk, opens = [], False
        opens = opens or u.opens_layer
        chunk.append(u)
    return tuple(out)


def _usable_sram_bytes(chip: Chip) -> float:
    mesh, k = Mesh.of(chip), family_constants("wafer")
    return mesh.pes * (mesh.sram_per_pe_bytes - k["pe_reserved_bytes"]) * (1.0 - wafer_data().streaming["sram_reserved_fraction"])


def mesh_flop_per_s(chip: Chip, dtype: str) -> float:
    """The PE mesh's matmul rate: programmable PEs x FMAC per cycle (SIMD lanes, capped by what
    the per-PE SRAM bandwidth feeds: operand + read/write accumulator bytes) x 2 x clock."""
    mesh, k = Mesh.of(chip), family_constants("wafer")
    fmac = min(mesh.lanes, mesh.sram_bytes_per_cycle / (bytes_per_element(dtype) + 2.0 * k["accumulator_bytes"]))
    return mesh.pes * fmac * 2.0 * mesh.clock_hz


def _sram_bytes_per_s(chip: Chip) -> float:
    mesh = Mesh.of(chip)
    return mesh.pes * mesh.sram_bytes_per_cycle * mesh.clock_hz


@dataclass(frozen=True)
class Streams:
    """Per-system stream rates and the tree latency at N systems."""

    bandwidth_bytes_per_s: float
    latency_s: float


def streams(chip: Chip, systems: int) -> Streams:
    memx, swx = stores_of(chip)
    mesh = Mesh.of(chip)
    bw = min(mesh.io_bytes_per_s, swx.bandwidth_per_system_bytes_per_s, memx.bandwidth_per_system_bytes_per_s)
    return Streams(bw * swx.efficiency, swx.latency_s(systems))


def sram_budget(job: TrainingJob, us: tuple[Unit, ...]) -> tuple[float, float, float]:
    """(usable SRAM bytes, streaming buffer bytes, activation checkpoint bytes per token)."""
    s = wafer_data().streaming
    largest = max(u.params for u in us)
    buffers = largest * (2.0 * s["weight_bytes"] + s["gradient_bytes"])  # double-buffered weights + one gradient
    layers = sum(g.count for g in job.model.groups)
    per_token = math.ceil(layers / s["checkpoint_layers"]) * job.model.d_model * s["activation_bytes"]
    return _usable_sram_bytes(job.chip), buffers, per_token


def _memory(job: TrainingJob, us: tuple[Unit, ...], mb: int) -> TrainingMemory:
    usable, _, per_token = sram_budget(job, us)
    s = wafer_data().streaming
    largest = max(u.params for u in us)
    return TrainingMemory(2.0 * largest * s["weight_bytes"], largest * s["gradient_bytes"], 0.0,
                          mb * job.seq_len * per_token, usable)


def _infeasible(job: TrainingJob, lay: Layout, mem: TrainingMemory, reason: str) -> SearchResult:
    est = TrainEstimate(job, lay, "cerebras", mem, None, reason)
    return SearchResult(None, (), (est,), 1)


def _microbatch(job: TrainingJob, us: tuple[Unit, ...], per_system: int, pinned: int | None) -> tuple[int, str]:
    """(sequences per micro-batch, reason when none fits)."""
    usable, buffers, per_token = sram_budget(job, us)
    room = usable - buffers
    fit = int(max(room, 0.0) // (per_token * job.seq_len))
    if pinned is not None and pinned > fit:
        return 0, (f"micro-batch {pinned} x {job.seq_len} tokens needs {pinned * job.seq_len * per_token / 1e9:.1f} GB "
                   f"of activation checkpoints > {max(room, 0) / 1e9:.1f} GB of wafer SRAM left after "
                   f"{buffers / 1e9:.1f} GB of streaming buffers (at most {fit} sequences fit)")
    if fit < 1:
        return 0, (f"one sequence of {job.seq_len} tokens needs {job.seq_len * per_token / 1e9:.1f} GB of activation "
                   f"checkpoints > {max(room, 0) / 1e9:.1f} GB of wafer SRAM left after "
                   f"{buffers / 1e9:.1f} GB of streaming buffers")
    mb = pinned or min(per_system, fit)
    m = math.ceil(per_system / mb)
    return math.ceil(per_system / m), ""


def _memoryx_check(job: TrainingJob, memx: MemoryX, capacity_bytes: float | None) -> tuple[float, str]:
    params = job.model.total_params
    need = params * memx.bytes_per_param
    if capacity_bytes is not None:
        if need > capacity_bytes:
            return capacity_bytes, (f"weights + optimizer state need {need / 1e12:.3g} TB ({params / 1e9:.4g} B params x "
                                    f"{memx.bytes_per_param:.0f} B) > MemoryX {capacity_bytes / 1e12:.3g} TB")
        return capacity_bytes, ""
    cap = memx.smallest_holding(need)
    if cap is None:
        top = memx.capacity_options_bytes[-1]
        return top, (f"weights + optimizer state need {need / 1e12:.3g} TB ({params / 1e9:.4g} B params x "
                     f"{memx.bytes_per_param:.0f} B) > the largest MemoryX option, {top / 1e12:.3g} TB ({memx.id})")
    return cap, ""


def step(job: TrainingJob, lay: StreamingLayout, fraction: float) -> WaferStepBreakdown:
    """One optimizer step on each system (see module docstring)."""
    us = stream_units(job.chip, job.model, job.seq_len)
    st = streams(job.chip, lay.dp)
    s = wafer_data().streaming
    rate = mesh_flop_per_s(job.chip, job.dtype) * fraction
    sram = _sram_bytes_per_s(job.chip)
    tokens = lay.microbatch * job.seq_len
    fwd = [u.flop_fwd * tokens / rate for u in us]
    bwd = [3.0 * f for f in fwd]  # recompute the forward from the checkpoint, then 2x forward (dX and dW)
    mem_fwd = [u.sram_elements * tokens * s["activation_bytes"] / sram for u in us]
    w_in = [st.latency_s * u.opens_layer + u.params * s["weight_bytes"] / st.bandwidth_bytes_per_s for u in us]
    g_out = [st.latency_s * u.opens_layer + u.params * s["gradient_bytes"] / st.bandwidth_bytes_per_s for u in us]
    n = len(us)
    exposed_w = exposed_g = 0.0
    for i in range(n):  # forward: unit i computes while unit i+1 streams in
        busy = fwd[i] + mem_fwd[i]
        exposed_w += max(0.0, (w_in[i + 1] if i + 1 < n else 0.0) - busy)
    for i in reversed(range(n)):  # backward: unit i computes while i-1 streams in and i+1's gradient streams out
        busy = bwd[i] + 2.5 * mem_fwd[i]
        incoming = max(busy, w_in[i - 1] if i > 0 else 0.0)
        exposed_w += incoming - busy
        exposed_g += max(0.0, (g_out[i + 1] if i + 1 < n else 0.0) - incoming)
    m = lay.accumulation
    memx, _ = stores_of(job.chip)
    first = next(u for u in us if u.params)
    optimizer = first.params * memx.bytes_per_param / memx.update_bandwidth_bytes_per_s
    return WaferStepBreakdown(
        compute_s=m * (sum(fwd) + sum(bwd)), memory_s=m * 3.5 * sum(mem_fwd), tp_comm_s=0.0, dp_comm_s=0.0,
        cp_comm_s=0.0, ep_comm_s=0.0, pp_bubble_s=0.0, optimizer_s=optimizer, overhead_s=0.0,
        weight_stream_s=m * exposed_w, grad_reduce_s=m * exposed_g + g_out[0], step_bubble_s=m * w_in[0])


def plan_wafer_training(job: TrainingJob, pins: Pins | None = None, *, memoryx_bytes: float | None = None,
                        fraction: float | None = None) -> SearchResult:
    """Weight-streaming training of ``job`` on ``job.chips`` systems. Only ``microbatch`` may be
    pinned (data parallel over every system is the only layout); ``memoryx_bytes`` picks the
    MemoryX capacity (default: the smallest option that holds the model); ``fraction`` replaces
    the release line's fitted mesh fraction (calibration)."""
    pins = pins or Pins()
    allowed = {"microbatch": None, "dp": job.chips, "recompute": "full"}  # the only values these may take
    others = [f"{k}={v}" for k, v in pins.__dict__.items()
              if v is not None and (k not in allowed or (allowed[k] is not None and v != allowed[k]))]
    if others:
        raise InputError(f"weight-streaming training on {job.chip.id} is data parallel over all {job.chips} systems "
                         f"with layer checkpoints; only --microbatch can be pinned (got {', '.join(others)})")
    if job.lora_rank:
        raise InputError(f"LoRA fine-tuning on {job.chip.id} (weight streaming) is not modelled")
    if job.dtype not in WAFER_DTYPES:
        raise InputError(f"weight-streaming training on {job.chip.id} runs in 16-bit ({', '.join(WAFER_DTYPES)}), "
                         f"not {job.dtype}")
    memx, swx = stores_of(job.chip)
    line = software_line(job.chip, job.framework)
    us = stream_units(job.chip, job.model, job.seq_len)
    per_system = math.ceil(job.global_batch / job.chips)
    cap, why = _memoryx_check(job, memx, memoryx_bytes)
    lay = StreamingLayout(dp=job.chips, microbatch=max(1, min(per_system, pins.microbatch or per_system)),
                          recompute="full", zero=0, memoryx_bytes=cap, line=line.line)
    if job.chips > swx.max_systems:
        why = why or (f"{job.chips} systems exceed the SwarmX cluster limit of {swx.max_systems} {job.chip.id} "
                      f"({swx.id})")
    if job.global_batch < job.chips:
        why = why or f"global batch {job.global_batch} < {job.chips} systems: every system needs a sequence"
    mb, too_big = _microbatch(job, us, per_system, pins.microbatch)
    why = why or too_big
    if why:
        return _infeasible(job, lay, _memory(job, us, lay.microbatch), why)
    lay = replace(lay, microbatch=mb, accumulation=math.ceil(per_system / mb))
    breakdown = step(job, lay, line.fraction if fraction is None else fraction)
    est = TrainEstimate(job, lay, "cerebras", _memory(job, us, mb), breakdown)
    return SearchResult(est, (est,), (), 1)


def traffic_per_system_bytes(est: TrainEstimate) -> float:
    """Bytes one system moves over its I/O per step: every unit's weights in for the forward and
    again for the backward pass, and its gradient out, per micro-batch (SwarmX sums the
    gradients, so nothing here depends on the number of systems)."""
    s = wafer_data().streaming
    params = sum(u.params for u in units(est.job.model, est.job.seq_len))
    acc = est.layout.accumulation if isinstance(est.layout, StreamingLayout) else 1
    return acc * params * (2.0 * s["weight_bytes"] + s["gradient_bytes"])
