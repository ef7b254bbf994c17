"""Choose a parallel layout for one replica and check that it fits.

With no chip count given, the planner walks the family's candidate layouts from the fewest
chips up and takes the first chip count on which anything fits; among layouts of that size it
keeps the one with the lowest decode step time at the requested batch and context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import BYTES_PER_ELEMENT, ModelSpec
from siliconsim.perf.families import get_family
from siliconsim.perf.step import Parallel, StepCost, Work
from siliconsim.perf.memory import MemoryFit


@dataclass(frozen=True)
class Verdict:
    feasible: bool
    reason: str = ""


@dataclass(frozen=True)
class Deployment:
    """A model mapped onto chips: the thing whose steps we time."""

    model: ModelSpec
    chip: Chip
    family: Any
    par: Parallel
    dtype: str
    kv_dtype: str
    memory: MemoryFit
    context_tokens: float
    replicas: int = 1

    @property
    def chips(self) -> int:
        return self.par.chips * self.replicas

    def step(self, work: Work) -> StepCost:
        """Time of one step of one replica."""
        return self.family.step(self.model, self.chip, self.par, self.dtype, self.kv_dtype, work)

    @property
    def kv_bytes_per_token(self) -> float:
        """KV bytes one token adds on each chip of the replica (at the planned context)."""
        return self.family.kv_bytes_per_token_per_chip(self.model, self.par, self.kv_dtype, self.context_tokens)

    @property
    def kv_capacity_tokens(self) -> float:
        """KV-cache tokens one replica can hold."""
        per = self.kv_bytes_per_token
        return self.memory.free_for_kv_bytes / per if per > 0 else float("inf")

    @property
    def max_batch(self) -> int:
        return int(self.family.max_batch(self.chip))

    @property
    def microbatches_in_flight(self) -> int:
        """Batches of a step that a replica keeps in flight at once: ``pp`` where a step is one
        micro-batch's traversal of the pipeline stages (HBM), 1 where the family's step already cuts
        its batch into micro-batches over the stages (wafer regions, dataflow layer pipelines)."""
        return 1 if self.family.pipelines_batch else self.par.pp

    @property
    def weights_label(self) -> str:
        """Weight precision as served: ``bf16+mxfp4`` when a checkpoint keeps quantized experts."""
        return self.model.weights_label(self.dtype)

    def describe(self) -> str:
        rep = f"{self.replicas}× " if self.replicas > 1 else ""
        return f"{rep}{self.par.chips}× {self.chip.id} ({self.par.describe()}, {self.weights_label}, KV {self.kv_dtype})"


@dataclass(frozen=True)
class Plan:
    verdict: Verdict
    deployment: Deployment | None = None

    @property
    def feasible(self) -> bool:
        return self.verdict.feasible

    @property
    def reason(self) -> str:
        return self.verdict.reason


def default_kv_dtype(dtype: str) -> str:
    """KV cache precision engines use with a given weight precision (8-bit below 16-bit weights)."""
    return "fp8" if BYTES_PER_ELEMENT.get(dtype, 2.0) < 2.0 else dtype


def _check_inputs(context_tokens: float, batch: float, chips: int | None) -> None:
    for name, v in (("context_tokens", context_tokens), ("batch", batch)):
        if not v > 0:
            raise InputError(f"{name}: expected a number > 0, got {v!r}")
    if chips is not None and (chips < 1 or int(chips) != chips):
        raise InputError(f"chips: expected a whole number >= 1, got {chips!r}")


def plan_deployment(model: ModelSpec, chip: Chip, *, chips: int | None = None, dtype: str | None = None,
                    kv_dtype: str | None = None, context_tokens: float = 4096, batch: float = 1,
                    replicas: int = 1) -> Plan:
    """Plan one replica of ``model`` on ``chip``; ``chips`` fixes the replica size."""
    _check_inputs(context_tokens, batch, chips)
    dtype = dtype or model.native_dtype
    kv_dtype = kv_dtype or default_kv_dtype(dtype)
    family = get_family(chip.family)
    if family is None:
        return Plan(Verdict(False, f"the '{chip.family}' execution family is not built yet"))
    candidates = family.candidates(model, chip, chips)
    if not candidates:
        want = f"{chips} chips" if chips else "any size"
        return Plan(Verdict(False, f"no parallel layout of {model.id} on {want} of {chip.id}"))
    last_reason = ""
    by_size: dict[int, list[Deployment]] = {}
    for par in sorted(candidates, key=lambda p: p.chips):  # stable: the family's order within a size
        if by_size and par.chips > min(by_size):
            break  # only the smallest size that fits is kept: larger ones need no fit check
        dep = fit_layout(model, chip, par, dtype, kv_dtype, context_tokens, batch, replicas)
        if isinstance(dep, str):
            last_reason = dep
            continue
        by_size.setdefault(par.chips, []).append(dep)
    if not by_size:
        return Plan(Verdict(False, last_reason))
    options = by_size[min(by_size)]
    work = Work(decode_batch=batch, decode_context=context_tokens)
    best = options[0] if len(options) == 1 else min(options, key=lambda d: float(d.step(work).latency_s))
    return Plan(Verdict(True), best)


# How a serving engine's memory fraction is meant (``engine_memory``):
#   "total": weights + KV pool = fraction x the chip's memory; activations and CUDA graphs live in the
#            rest (SGLang --mem-fraction-static);
#   "free":  KV pool = fraction x the memory left after weights and activations (TensorRT-LLM
#            kv_cache_config.free_gpu_memory_fraction, measured after the model is loaded).
MEMORY_FRACTION_OF = ("total", "free")


def engine_memory(fit: MemoryFit, fraction: float, of: str) -> MemoryFit:
    """``fit`` with the usable memory an engine's own memory fraction leaves (see MEMORY_FRACTION_OF)
    in place of the family's fixed usable fraction."""
    if of not in MEMORY_FRACTION_OF or not 0.0 < fraction <= 1.0:
        raise InputError(f"memory fraction {fraction:g} of {of!r}: expected (0, 1] of {' or '.join(MEMORY_FRACTION_OF)}")
    cap, w, a = fit.capacity_bytes, fit.weights_bytes, fit.activation_bytes
    usable = fraction * cap + a if of == "total" else w + a + fraction * max(cap - w - a, 0.0)
    return replace(fit, usable_bytes=usable)


def fit_layout(model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str, context_tokens: float,
               batch: float = 1, replicas: int = 1, *, memory_fraction: float | None = None,
               memory_fraction_of: str = "total") -> Deployment | str:
    """``model`` on one given layout: the Deployment, or why it does not fit. ``memory_fraction``
    replaces the family's usable-memory fraction by an engine's own (see ``engine_memory``)."""
    family = get_family(chip.family)
    fit = family.fit(model, chip, par, dtype, kv_dtype, batch, context_tokens)
    if memory_fraction is not None:
        fit = engine_memory(fit, memory_fraction, memory_fraction_of)
    if not fit.fits:
        return fit.reason(f"{chip.id}, {par.describe()}")
    return Deployment(model, chip, family, par, dtype, kv_dtype, fit, context_tokens, replicas)
