"""Layout search: the fastest feasible layout of a training job, and the next best few.

Candidates cover TP (powers of two inside the scale-up domain, dividing the heads) x CP (at
least 4,096 tokens per rank) x PP (dividing the chips left and the layers, as Megatron requires) x VP (interleaving, when the layers
divide evenly) x DP (the rest, dividing the global batch) x EP (MoE: dividing DP x CP and the
expert count) x micro-batch x recomputation x ZeRO stage. Any dimension may be pinned. With
FlashAttention, selective recomputation stores and recomputes nothing more than none, so it is
not searched. A step's per-micro-batch timing does not depend on DP or ZeRO, so it is computed
once per (TP, CP, PP, VP, EP, micro-batch, recompute) and shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

from siliconsim.errors import InputError
from siliconsim.perf.hbm import powers_of_two
from siliconsim.training.estimate import TrainEstimate, estimate_training
from siliconsim.training.job import RECOMPUTE, Layout, TrainingJob, check_layout
from siliconsim.training.params import Efficiency, Framework

MICROBATCHES = (1, 2, 4, 8)
VIRTUAL_STAGES = (1, 2, 4)
MAX_CP = 32
MIN_CP_TOKENS = 4096  # tokens per context-parallel rank: smaller ring-attention blocks cannot hide their
# K/V exchange (Liu et al., Ring Attention 2023 §3: the block must exceed the compute/bandwidth ratio);
# Megatron-Core's long-context recipes start CP at 8k-token sequences


@dataclass(frozen=True)
class Pins:
    """Layout dimensions the user fixed (None = search)."""

    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    cp: int | None = None
    ep: int | None = None
    vp: int | None = None
    microbatch: int | None = None
    zero: int | None = None
    recompute: str | None = None
    sequence_parallel: bool | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int) and not isinstance(v, bool) and v < (0 if f.name == "zero" else 1):
                raise InputError(f"--{f.name.replace('_', '-')}: expected a whole number >= 1, got {v}")

    def full_layout(self) -> Layout | None:
        """The layout when every size is pinned, else None."""
        if None in (self.tp, self.pp, self.dp):
            return None
        return Layout(tp=self.tp, pp=self.pp, dp=self.dp, cp=self.cp or 1, ep=self.ep or 1, vp=self.vp or 1,
                      microbatch=self.microbatch or 1, zero=1 if self.zero is None else self.zero,
                      recompute=self.recompute or "none",
                      sequence_parallel=True if self.sequence_parallel is None else self.sequence_parallel)


def _choices(pinned: int | None, options: list[int]) -> list[int]:
    return [pinned] if pinned is not None else options


def candidates(job: TrainingJob, pins: Pins, fw: Framework) -> Iterator[Layout]:
    """Every layout the pins allow (sizes only checked for divisibility here)."""
    m, n = job.model, job.chips
    experts = min((g.n_experts for g in m.groups if g.moe), default=0)
    recompute = [pins.recompute] if pins.recompute else [r for r in RECOMPUTE
                                                          if not (fw.flash_attention and r == "selective")]
    zeros = _choices(pins.zero, [1, 2, 3])
    sp = True if pins.sequence_parallel is None else pins.sequence_parallel
    for tp in _choices(pins.tp, [t for t in powers_of_two(min(n, job.domain_chips)) if m.n_heads % t == 0]):
        cps = [c for c in powers_of_two(min(MAX_CP, n // tp)) if c == 1 or (job.seq_len % (2 * c) == 0
                                                                       and job.seq_len // c >= MIN_CP_TOKENS)]
        for cp in _choices(pins.cp, cps):
            rest = n // (tp * cp) if n % (tp * cp) == 0 else 0
            pps = [p for p in range(1, min(rest, m.n_layers) + 1) if rest and rest % p == 0 and m.n_layers % p == 0]
            for pp in _choices(pins.pp, pps):
                if not rest or rest % pp:
                    continue
                dp = rest // pp
                if pins.dp is not None and pins.dp != dp or job.global_batch % dp:
                    continue
                vps = [v for v in VIRTUAL_STAGES if v == 1 or (pp > 1 and m.n_layers % (pp * v) == 0)]
                eps = [e for e in powers_of_two(dp * cp) if e == 1 or (experts and experts % e == 0)] if experts else [1]
                per_rank = job.global_batch // dp
                for vp in _choices(pins.vp, vps):
                    for ep in _choices(pins.ep, eps):
                        for mb in _choices(pins.microbatch, [b for b in MICROBATCHES if per_rank % b == 0]):
                            for rc in recompute:
                                for zero in zeros:
                                    yield Layout(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vp=vp, microbatch=mb, zero=zero,
                                                 recompute=rc, sequence_parallel=sp)


@dataclass(frozen=True)
class SearchResult:
    best: TrainEstimate | None
    ranked: tuple[TrainEstimate, ...]  # feasible, fastest first
    infeasible: tuple[TrainEstimate, ...]  # a few, closest to fitting first
    tried: int


def search(job: TrainingJob, pins: Pins, eff: Efficiency, fw: Framework, keep: int = 5) -> SearchResult:
    """The fastest feasible layout. A fully pinned layout is checked (an impossible pin raises
    InputError naming the values) and estimated as it is."""
    full = pins.full_layout()
    if full is not None:
        est = estimate_training(job, full, eff, fw)
        return SearchResult(est if est.feasible else None, (est,) if est.feasible else (), () if est.feasible else (est,), 1)
    _check_pins(job, pins)
    ok: list[TrainEstimate] = []
    bad: list[TrainEstimate] = []
    tried = 0
    cache: dict = {}
    first_error: InputError | None = None
    for lay in candidates(job, pins, fw):
        try:
            check_layout(job, lay)
        except InputError as exc:
            first_error = first_error or exc
            continue
        tried += 1
        est = estimate_training(job, lay, eff, fw, cache)
        (ok if est.feasible else bad).append(est)
    if not tried:
        if first_error is not None and any(getattr(pins, f.name) is not None for f in fields(pins)):
            raise first_error  # names the pinned values that cannot apply
        raise InputError(f"no layout of {job.chips} chips fits the pins {describe_pins(pins)} with global batch "
                         f"{job.global_batch} and {job.model.n_heads} heads")
    ok.sort(key=lambda e: e.step_time_s)
    bad.sort(key=lambda e: e.memory.used_bytes)
    return SearchResult(ok[0] if ok else None, tuple(ok[:keep]), tuple(bad[:keep]), tried)


def _check_pins(job: TrainingJob, pins: Pins) -> None:
    """One-line errors for pins no layout of the job can honour."""
    sizes = {k: getattr(pins, k) for k in ("tp", "pp", "dp", "cp") if getattr(pins, k) is not None}
    prod = math.prod(sizes.values())
    if sizes and job.chips % prod:
        named = " x ".join(f"{k.upper()} {v}" for k, v in sizes.items())
        raise InputError(f"{named} = {prod} does not divide the job's {job.chips} chips")
    if pins.dp is not None and job.global_batch % pins.dp:
        raise InputError(f"global batch {job.global_batch} is not divisible by DP {pins.dp}")
    if pins.tp is not None and job.model.n_heads % pins.tp:
        raise InputError(f"TP {pins.tp} does not divide the {job.model.n_heads} attention heads of {job.model.id}")


def describe_pins(pins: Pins) -> str:
    got = [f"{f.name}={getattr(pins, f.name)}" for f in fields(pins) if getattr(pins, f.name) is not None]
    return ", ".join(got) or "(none)"


def pinned(pins: Pins, **kw: object) -> Pins:
    return replace(pins, **kw)
