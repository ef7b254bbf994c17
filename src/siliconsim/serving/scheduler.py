"""Batch schedulers: which tokens one replica's next step processes.

A scheduler fills ``rep.step_decode`` (decoding sequences, one token each) and
``rep.step_chunks`` (prompt chunks ``(request, tokens)``) and returns False when there is nothing
to run. Pluggable as a Protocol plus a dict from name to constructor (``SCHEDULERS``).

- ``chunked`` (default; vLLM v1 / Sarathi-Serve): every step decodes all running sequences and
  fills the rest of the token budget with prompt chunks, oldest first; prompts are split into
  chunks of at most ``chunk_tokens``.
- ``prefill-first`` (vLLM v0 without chunked prefill): if a waiting prompt can be admitted, run a
  prefill-only step of whole prompts up to the token budget; otherwise a decode-only step.

Both admit FCFS (a waiting request that does not fit blocks those behind it), keep at most
``max_batch`` sequences running, and preempt the newest request when decode growth would
overflow the KV cache.
"""

from __future__ import annotations

from typing import Protocol

from siliconsim.serving.replica import Replica
from siliconsim.serving.requests import Req


class Scheduler(Protocol):
    def compose(self, rep: Replica, now: float) -> bool:
        ...


class ChunkedScheduler:
    def __init__(self, token_budget: int, chunk_tokens: int):
        self.token_budget = token_budget
        self.chunk_tokens = chunk_tokens  # 0: whole prompts only

    def compose(self, rep: Replica, now: float) -> bool:
        kv = rep.kv
        if kv.prefill_tokens + kv.base_sum + kv.decoding * (kv.steps + 1) > kv.capacity_tokens:
            rep.preempt_to_fit()  # (the test is KVLedger.next_step_tokens, inlined: it runs every step)
        if not rep.prefilling and not rep.waiting:  # decode only (what the loop below finds, sooner)
            rep.step_chunks = []
            rep.step_decode = kv.decoding
            return rep.step_decode > 0
        chunks: list[tuple[Req, int]] = []
        left = self.token_budget - rep.kv.decoding
        for req in rep.prefilling:
            if left <= 0:
                break
            c = self._chunk(req, left, not chunks and rep.kv.decoding == 0)
            if c:
                chunks.append((req, c))
                left -= c
        left = _admit(rep, now, left, chunks, self._chunk)
        rep.step_chunks = chunks
        rep.step_decode = rep.kv.decoding
        return bool(chunks) or rep.step_decode > 0

    def _chunk(self, req: Req, left: int, alone: bool) -> int:
        """Tokens of ``req``'s prompt to compute now (0: wait for a step with more room)."""
        remaining = req.ctx0 - req.done
        if self.chunk_tokens:
            return min(remaining, left, self.chunk_tokens)
        return remaining if remaining <= left or alone else 0


class PrefillFirstScheduler:
    def __init__(self, token_budget: int, chunk_tokens: int = 0):
        self.token_budget = token_budget

    def compose(self, rep: Replica, now: float) -> bool:
        chunks: list[tuple[Req, int]] = []
        if rep.waiting and not rep.waiting[0].transferred and rep.running < rep.max_batch \
                and rep.kv.can_admit(rep.waiting[0].ctx0, rep.running == 0):
            _admit(rep, now, self.token_budget, chunks, self._whole)
        if chunks:
            rep.step_chunks = chunks
            rep.step_decode = 0
            return True
        rep.preempt_to_fit()
        _admit(rep, now, self.token_budget, chunks, self._none)  # requests with transferred KV only
        rep.step_chunks = chunks
        rep.step_decode = rep.kv.decoding
        return rep.step_decode > 0

    @staticmethod
    def _whole(req: Req, left: int, alone: bool) -> int:
        remaining = req.ctx0 - req.done
        return remaining if remaining <= left or alone else 0

    @staticmethod
    def _none(req: Req, left: int, alone: bool) -> int:
        return 0


def _admit(rep: Replica, now: float, left: int, chunks: list[tuple[Req, int]], chunk_of) -> int:
    """Admit waiting requests FCFS while sequences, budget and KV allow; returns budget left."""
    waiting = rep.waiting
    kv = rep.kv
    while waiting and left > 0 and rep.running < rep.max_batch:
        req = waiting[0]
        alone = rep.running == 0
        if req.transferred:
            if not kv.can_admit(req.ctx0 + 1, alone):
                break
            waiting.popleft()
            rep.admit_transferred(req, now)
            left -= 1
            continue
        c = chunk_of(req, left, alone and not chunks)
        if c == 0 or not kv.can_admit(req.ctx0, alone):
            break
        waiting.popleft()
        rep.admit_prefill(req, now)
        chunks.append((req, c))
        left -= c
    return left


SCHEDULERS = {"chunked": ChunkedScheduler, "prefill-first": PrefillFirstScheduler}
