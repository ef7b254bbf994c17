"""What the serving engine needs from a cost model: the time of one step, and capacities.

``StepModel`` is the engine's only view of hardware, so tests drive it with a deterministic
``LinearStepModel`` and the engine never imports hardware code. ``DeploymentStepModel`` adapts a
``plans`` Deployment (the same ``dep.step`` that ``estimate`` uses) and memoizes step times on a
fine grid (see ``quantize``) so the cost model stays out of the event loop's hot path.

``prefill_context`` is the average number of earlier tokens each new prompt token attends to
(a chunk of ``c`` tokens starting at offset ``o`` attends to ``o + c / 2`` on average), and
``decode_context`` the average context of the decoding sequences, as in ``perf.step.Work``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

ASSUMED_KV_LINK_BYTES_PER_S = 50e9  # used only when a chip's system has no scale-out link
ASSUMED_KV_LINK_LATENCY_S = 10e-6


class StepModel(Protocol):
    """Time of one forward step of one replica, and what one replica can hold."""

    kv_capacity_tokens: float  # KV-cache tokens one replica can hold
    max_batch: int  # upper bound on concurrent sequences per replica

    def step_time_s(self, prefill_tokens: float, prefill_context: float, decode_batch: float,
                    decode_context: float) -> float:
        ...

    def kv_transfer_s(self, tokens: float) -> float:
        """Seconds to move the KV cache of ``tokens`` tokens to another replica (disaggregation)."""
        ...


@dataclass(frozen=True)
class LinearStepModel:
    """A deterministic analytic step time, for tests, benchmarks and what-if studies.

    ``t = overhead + max(weights, prefill) + decode_batch * per_seq + attention`` where
    prefill is ``prefill_tokens * per_prefill_token`` and attention is ``per_context_token``
    times the keys read (``prefill_tokens * prefill_context + decode_batch * decode_context``).
    Dividing by ``speed`` models a uniformly faster chip.
    """

    kv_capacity_tokens: float = 1e6
    max_batch: int = 256
    overhead_s: float = 2e-3
    weights_s: float = 3e-3
    per_seq_s: float = 2e-5
    per_prefill_token_s: float = 1.5e-5
    per_context_token_s: float = 2e-9
    speed: float = 1.0
    kv_bytes_per_token: float = 160e3
    link_bytes_per_s: float = 50e9

    def step_time_s(self, prefill_tokens: float, prefill_context: float, decode_batch: float,
                    decode_context: float) -> float:
        main = max(self.weights_s, prefill_tokens * self.per_prefill_token_s)
        keys = prefill_tokens * prefill_context + decode_batch * decode_context
        t = self.overhead_s + main + decode_batch * self.per_seq_s + keys * self.per_context_token_s
        return t / self.speed

    def kv_transfer_s(self, tokens: float) -> float:
        return ASSUMED_KV_LINK_LATENCY_S + tokens * self.kv_bytes_per_token / self.link_bytes_per_s


def quantize(x: float) -> float:
    """Round to 8 significant bits (relative error <= 0.2%); exact below 256.

    Step inputs are rounded before the memo lookup so a long simulation hits a few thousand
    distinct cost-model calls instead of one per step.
    """
    if x < 256.0:
        return float(round(x))
    m, e = math.frexp(x)
    return math.ldexp(round(m * 256.0) / 256.0, e)


class DeploymentStepModel:
    """Adapter: a ``plans`` Deployment as a StepModel (memoized ``dep.step(Work).latency_s``)."""

    def __init__(self, deployment: Any, kv_dtype: str | None = None):
        from siliconsim.perf.step import Work  # perf is below serving; imported here to keep start-up light

        self._dep = deployment
        self._work = Work
        self._cache: dict[tuple[float, float, float, float], float] = {}
        self.kv_capacity_tokens = float(deployment.kv_capacity_tokens)
        self.max_batch = int(deployment.max_batch)
        self._kv_dtype = kv_dtype or getattr(deployment, "kv_dtype", None) or "fp8"
        self._link = _kv_link(deployment)

    def step_time_s(self, prefill_tokens: float, prefill_context: float, decode_batch: float,
                    decode_context: float) -> float:
        key = (quantize(prefill_tokens), quantize(prefill_context), float(decode_batch), quantize(decode_context))
        t = self._cache.get(key)
        if t is None:
            t = float(self._dep.step(self._work(*key)).latency_s)
            self._cache[key] = t
        return t

    def kv_transfer_s(self, tokens: float) -> float:
        bytes_ = float(self._dep.model.kv_bytes(tokens, self._kv_dtype))
        bandwidth, latency = self._link
        return latency + bytes_ / bandwidth

    @property
    def cost_model_calls(self) -> int:
        return len(self._cache)


def _kv_link(dep: Any) -> tuple[float, float]:
    """(bytes/s, latency_s) for moving KV between replicas over the system's scale-out link (else
    its scale-up link, else an assumed 50 GB/s): every chip of the source replica sends its shard
    over its own port in parallel (the KV is sharded like the heads), at the link's efficiency.
    The transfer is not overlapped with the prefill (Splitwise overlaps it layer by layer), so
    this is an upper bound on the visible cost."""
    system = dep.chip.system
    link = system.scale_out or system.scale_up
    if link is None:
        return ASSUMED_KV_LINK_BYTES_PER_S, ASSUMED_KV_LINK_LATENCY_S
    return link.bandwidth_bytes_per_s * link.efficiency * max(int(dep.par.chips), 1), link.latency_s
