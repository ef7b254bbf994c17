"""The step-time interface shared by every execution family, ``inference`` and ``serving``.

A *step* is one forward pass of one model replica. It processes ``prefill_tokens`` new prompt
tokens (chunks of prompts, each attending to ``prefill_context`` earlier tokens on average) and
``decode_batch`` sequences that each emit one token while attending to ``decode_context``
tokens on average. Every argument may be a float or a NumPy array (broadcast together), so a
sweep of many configurations is one call.

The result splits the step's critical path into compute, memory, network and overhead seconds;
their sum is ``latency_s``. ``interval_s`` is the time between successive steps when the
replica is kept full (for a pipeline of S stages that is the slowest stage, not the sum).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Parallel:
    """How one replica is split across chips."""

    tp: int = 1  # tensor parallel (inside the scale-up domain)
    pp: int = 1  # pipeline stages
    ep: int = 1  # expert parallel degree (experts sharded over ep chips of the replica)
    # Data-parallel attention (wide-EP serving, as in DeepSeek-V3 deployments): each of the tp
    # chips runs attention and dense layers for its own share of the sequences with replicated
    # weights; experts are sharded over ep chips and tokens travel by all-to-all.
    attn_dp: bool = False

    @property
    def chips(self) -> int:
        return self.tp * self.pp

    def describe(self) -> str:
        s = f"DP{self.tp}-attn" if self.attn_dp else f"TP{self.tp}"
        if self.pp > 1:
            s += f"×PP{self.pp}"
        if self.ep > 1:
            s += f" EP{self.ep}"
        return s


@dataclass(frozen=True)
class StepCost:
    """Seconds on the critical path of one step, split by cause (floats or arrays)."""

    compute_s: Any
    memory_s: Any
    network_s: Any
    overhead_s: Any
    interval_s: Any

    @property
    def latency_s(self) -> Any:
        return self.compute_s + self.memory_s + self.network_s + self.overhead_s

    def breakdown(self) -> dict[str, float]:
        return {"compute_s": float(np.mean(self.compute_s)), "memory_s": float(np.mean(self.memory_s)),
                "network_s": float(np.mean(self.network_s)), "overhead_s": float(np.mean(self.overhead_s))}

    def scaled(self, k: Any) -> "StepCost":
        return StepCost(*(getattr(self, f.name) * k for f in fields(self)))

    def plus(self, other: "StepCost") -> "StepCost":
        return StepCost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class Work:
    """What one step processes (see module docstring). Floats or NumPy arrays."""

    prefill_tokens: Any = 0.0
    prefill_context: Any = 0.0
    decode_batch: Any = 0.0
    decode_context: Any = 0.0


class Family(Protocol):
    """An execution family turns a step's work into time on one replica."""

    def step(self, model: Any, chip: Any, par: Parallel, dtype: str, kv_dtype: str, work: Work) -> StepCost:
        ...

    def memory_per_chip_bytes(self, model: Any, chip: Any, par: Parallel, dtype: str) -> float:
        """Weight bytes each chip of the replica holds."""
        ...


def decode_context(input_tokens: Any, output_tokens: Any, given: Any = None) -> Any:
    """Mean context of the sequences in a decode step: ``given`` (a workload's length-biased mean,
    :func:`length_biased_context`) or, for equal lengths, ``input + output / 2``."""
    return input_tokens + np.multiply(output_tokens, 0.5) if given is None else given


def length_biased_context(weighted_input_tokens: float, output_tokens: float, output_cv: float) -> float:
    """Mean context of the sequences decoding at once when output lengths vary (continuous batching
    refills the batch as sequences finish). A sequence of L output tokens decodes for L steps, so
    a step holds sequences in proportion to their length: their mean context is E[I L] / E[L]
    (``weighted_input_tokens``) plus E[L^2] / (2 E[L]) = ``output_tokens`` (1 + cv^2) / 2, which is
    output / 2 only for equal lengths (the inspection paradox; Kleinrock, Queueing Systems vol. 1,
    sec. 5.2)."""
    return weighted_input_tokens + output_tokens * (1.0 + output_cv ** 2) / 2.0


def held_tokens(input_tokens: Any, output_tokens: Any, given: Any = None) -> Any:
    """KV-cache tokens a sequence is counted to hold when sizing a batch: its whole context, or the
    length-biased mean decode context where that is longer (:func:`decode_context`)."""
    return np.maximum(np.add(input_tokens, output_tokens), decode_context(input_tokens, output_tokens, given))
