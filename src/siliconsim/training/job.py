"""What a training run is (:class:`TrainingJob`) and how it is laid out on chips (:class:`Layout`).

A layout splits ``chips = tp x pp x cp x dp`` (Megatron-Core's ordering: TP innermost, then CP,
then DP, PP outermost across the slowest links); expert parallelism is carved out of the
``dp x cp`` ranks of each MoE layer (Megatron-Core "expert model parallel", DeepSeek-V3 §3.2), so
``ep`` must divide ``dp x cp``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import ModelSpec

RECOMPUTE = ("none", "selective", "full")
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    vp: int = 1  # virtual pipeline stages per device (interleaved 1F1B)
    microbatch: int = 1  # sequences per micro-batch per data-parallel rank
    zero: int = 0  # 0 = plain data parallel, 1/2/3 = ZeRO stage (3 = FSDP full shard)
    recompute: str = "none"
    sequence_parallel: bool = True  # only meaningful with tp > 1

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def describe(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}" + (f"x{self.vp}v" if self.vp > 1 else ""), f"DP{self.dp}"]
        if self.cp > 1:
            parts.append(f"CP{self.cp}")
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        zero = {0: "DDP", 1: "ZeRO-1", 2: "ZeRO-2", 3: "FSDP"}[self.zero]
        sp = "+SP" if self.tp > 1 and self.sequence_parallel else ""
        return f"{' '.join(parts)}{sp} mb{self.microbatch} {zero} recompute={self.recompute}"

    def as_dict(self) -> dict[str, object]:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "cp": self.cp, "ep": self.ep, "vp": self.vp,
                "microbatch": self.microbatch, "zero": self.zero, "recompute": self.recompute,
                "sequence_parallel": self.sequence_parallel and self.tp > 1}


@dataclass(frozen=True)
class TrainingJob:
    """One training run: a model on ``chips`` chips with a global batch of sequences."""

    model: ModelSpec
    chip: Chip
    chips: int
    seq_len: int
    global_batch: int  # sequences per optimizer step
    dtype: str = "bf16"  # matmul precision (fp8/fp4 keep bf16 master weights and activations)
    lora_rank: int = 0  # > 0: LoRA fine-tuning, base weights frozen
    framework: str = ""  # framework id or suite text; "" = the chip's usual one (see training.default_framework)
    slice_chips: int = 0  # TPU Multislice: chips per ICI slice (0 = the system's scale-up domain)
    tokens: float = 0.0  # token budget for time to train (0 = not asked)

    def __post_init__(self) -> None:
        for name in ("chips", "seq_len", "global_batch"):
            v = getattr(self, name)
            if v < 1:
                raise InputError(f"{name}: expected a whole number >= 1, got {v}")
        if self.lora_rank < 0:
            raise InputError(f"lora_rank: expected >= 0, got {self.lora_rank}")
        if self.tokens < 0:
            raise InputError(f"tokens: expected >= 0, got {self.tokens}")

    @property
    def tokens_per_step(self) -> float:
        return float(self.global_batch * self.seq_len)

    @property
    def domain_chips(self) -> int:
        """Chips that share the fast scale-up fabric (one NVLink domain, one TPU slice)."""
        domain = self.chip.system.scale_up_domain
        return min(domain, self.slice_chips) if self.slice_chips else domain

    def with_(self, **kw: object) -> "TrainingJob":
        return replace(self, **kw)


def check_layout(job: TrainingJob, lay: Layout) -> None:
    """Raise :class:`InputError` naming the values when ``lay`` cannot run ``job`` at all."""
    if lay.chips != job.chips:
        raise InputError(f"layout TP{lay.tp} x PP{lay.pp} x DP{lay.dp} x CP{lay.cp} = {lay.chips} chips, "
                         f"but the job has {job.chips}")
    seqs_per_rank, rem = divmod(job.global_batch, lay.dp)
    if rem:
        raise InputError(f"global batch {job.global_batch} is not divisible by DP {lay.dp}")
    if seqs_per_rank % lay.microbatch:
        raise InputError(f"global batch {job.global_batch} / DP {lay.dp} = {seqs_per_rank} sequences per rank "
                         f"is not divisible by micro-batch {lay.microbatch}")
    m = job.model
    if m.n_heads % lay.tp:
        raise InputError(f"TP {lay.tp} does not divide the {m.n_heads} attention heads of {m.id}")
    if lay.pp * lay.vp > m.n_layers:
        raise InputError(f"PP {lay.pp} x VP {lay.vp} stages exceed the {m.n_layers} layers of {m.id}")
    if job.seq_len % (2 * lay.cp) and lay.cp > 1:
        raise InputError(f"CP {lay.cp} needs a sequence length divisible by {2 * lay.cp}, got {job.seq_len}")
    if lay.ep > 1 and not m.is_moe:
        raise InputError(f"EP {lay.ep} applies only to MoE models; {m.id} is dense")
    if lay.ep > 1 and (lay.dp * lay.cp) % lay.ep:
        raise InputError(f"EP {lay.ep} must divide DP x CP = {lay.dp * lay.cp}")
    if lay.ep > 1 and min(g.n_experts for g in m.groups if g.moe) % lay.ep:
        raise InputError(f"EP {lay.ep} does not divide the expert count of {m.id}")
    if lay.vp > 1 and lay.pp == 1:
        raise InputError(f"virtual pipeline stages (VP {lay.vp}) need PP > 1")
    if lay.recompute not in RECOMPUTE:
        raise InputError(f"recompute: {lay.recompute!r} is not one of {', '.join(RECOMPUTE)}")
    if lay.zero not in ZERO_STAGES:
        raise InputError(f"zero: {lay.zero} is not one of 0, 1, 2, 3")


def microbatches(job: TrainingJob, lay: Layout) -> int:
    """Micro-batches per optimizer step on each pipeline (gradient-accumulation steps)."""
    return job.global_batch // lay.dp // lay.microbatch
