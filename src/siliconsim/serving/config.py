"""Serving options: replicas, batching limits, scheduler, router, disaggregation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconsim.errors import InputError
from siliconsim.serving.router import ROUTERS
from siliconsim.serving.scheduler import SCHEDULERS

DEFAULT_MAX_BATCH = 256  # vLLM's default max_num_seqs (v0)
DEFAULT_TOKEN_BUDGET = 8192  # vLLM's max_num_batched_tokens for online serving on large GPUs


@dataclass(frozen=True)
class ServeConfig:
    """How a deployment serves. ``chunk_tokens=None`` chunks prompts by the token budget;
    ``0`` schedules whole prompts only. ``disaggregate=(P, D)`` splits replicas into P prefill and
    D decode replicas (``replicas`` is then ignored). ``dispatch_window_s > 0`` puts a harness-side
    batcher in front of the router (see ``engine``): arrivals wait until ``dispatch_max_requests``
    are pending or the window has passed since the last dispatch, then go to one replica together."""

    replicas: int = 1
    max_batch: int | None = None  # default: min(DEFAULT_MAX_BATCH, the step model's max_batch)
    token_budget: int = DEFAULT_TOKEN_BUDGET
    chunk_tokens: int | None = None
    scheduler: str = "chunked"
    router: str = "least-loaded"
    disaggregate: tuple[int, int] | None = None
    kv_watermark: float = 0.01
    dispatch_window_s: float = 0.0
    dispatch_max_requests: int = 96

    def check(self) -> None:
        """Raise InputError naming the first bad option."""
        if self.scheduler not in SCHEDULERS:
            raise InputError(f"--scheduler {self.scheduler}: expected one of {', '.join(SCHEDULERS)}")
        if self.router not in ROUTERS:
            raise InputError(f"--router {self.router}: expected one of {', '.join(ROUTERS)}")
        for name, v in (("--replicas", self.replicas), ("--token-budget", self.token_budget),
                        ("--max-batch", self.max_batch if self.max_batch is not None else 1)):
            if int(v) != v or v < 1:
                raise InputError(f"{name} {v}: expected a whole number >= 1")
        if self.chunk_tokens is not None and self.chunk_tokens < 0:
            raise InputError(f"--chunk {self.chunk_tokens}: expected a whole number >= 0 (0: no chunking)")
        if self.disaggregate is not None and (len(self.disaggregate) != 2 or min(self.disaggregate) < 1):
            raise InputError(f"--disaggregate {self.disaggregate}: expected P:D with P >= 1 and D >= 1")
        if not (math.isfinite(self.dispatch_window_s) and self.dispatch_window_s >= 0):
            raise InputError(f"--dispatch-window-ms {self.dispatch_window_s * 1e3:g}: expected a time >= 0")
        if int(self.dispatch_max_requests) != self.dispatch_max_requests or self.dispatch_max_requests < 1:
            raise InputError(f"--dispatch-max {self.dispatch_max_requests}: expected a whole number >= 1")
        if not 0.0 <= self.kv_watermark < 1.0:
            raise InputError(f"kv_watermark {self.kv_watermark}: expected a fraction in [0, 1)")

    def effective_max_batch(self, model_max_batch: int) -> int:
        cap = max(int(model_max_batch), 1)
        return min(self.max_batch, cap) if self.max_batch is not None else min(DEFAULT_MAX_BATCH, cap)

    def chunk(self) -> int:
        return self.token_budget if self.chunk_tokens is None else self.chunk_tokens

    @property
    def pools(self) -> tuple[int, int]:
        """(prefill-or-mixed replicas, decode replicas)."""
        return self.disaggregate if self.disaggregate else (self.replicas, 0)
