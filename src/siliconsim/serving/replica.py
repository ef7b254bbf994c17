"""One model replica: its queues, its KV ledger and what its current step processes.

A replica holds requests in three places: ``waiting`` (FIFO, no KV yet; preempted requests
go back to its front), ``prefilling`` (admitted, KV reserved, prompt partly computed) and the
decode set (a heap ordered by the decode step at which each request finishes). Schedulers
(``scheduler.py``) fill ``step_chunks`` and ``step_decode``; the engine times the step and calls
``end_step`` when it completes.
"""

from __future__ import annotations

import heapq
from collections import deque

from siliconsim.serving.kv_cache import KVLedger
from siliconsim.serving.requests import DECODE, DONE, PREFILL, WAITING, Req


class Replica:
    __slots__ = ("idx", "role", "kv", "max_batch", "waiting", "prefilling", "decode_heap", "joined",
                 "last_decode_end_s", "busy", "kicked", "outstanding", "step_chunks", "step_decode",
                 "admit_seq", "admitted", "itl_values", "itl_counts")

    def __init__(self, idx: int, role: str, kv_capacity_tokens: float, max_batch: int, watermark: float):
        self.idx = idx
        self.role = role  # "mixed" | "prefill" | "decode"
        self.kv = KVLedger(kv_capacity_tokens, watermark)
        self.max_batch = max_batch
        self.waiting: deque[Req] = deque()
        self.prefilling: list[Req] = []
        self.decode_heap: list[tuple[int, int, int, Req]] = []  # (finish_step, admit_seq, gen, req)
        self.joined: list[Req] = []  # started decoding since the last decode step
        self.last_decode_end_s = 0.0
        self.busy = False
        self.kicked = False
        self.outstanding = 0  # requests routed here and not finished or handed off
        self.step_chunks: list[tuple[Req, int]] = []
        self.step_decode = 0
        self.admit_seq = 0
        self.admitted: list[Req] = []  # admission order, newest last (preemption victims); lazily pruned
        self.itl_values: list[float] = []
        self.itl_counts: list[int] = []

    # ---- state ---------------------------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self.prefilling) + self.kv.decoding

    def has_work(self) -> bool:
        return bool(self.waiting or self.prefilling or self.kv.decoding)

    # ---- admission -----------------------------------------------------------------------
    def admit_prefill(self, req: Req, now: float) -> None:
        """Reserve KV for the request's (re)prefill context and start computing its prompt."""
        self.kv.prefill_tokens += req.ctx0
        req.state = PREFILL
        if req.sched_s is None:
            req.sched_s = now
        self._track(req)
        self.prefilling.append(req)

    def join_decode(self, req: Req) -> None:
        """Start decoding: KV holds ``ctx0`` tokens, ``emitted`` tokens are out."""
        req.state = DECODE
        req.base = self.kv.join(req.ctx0)
        req.finish_step = self.kv.steps + req.output - req.emitted
        heapq.heappush(self.decode_heap, (req.finish_step, req.admit_seq, req.gen, req))
        self.joined.append(req)

    def admit_transferred(self, req: Req, now: float) -> None:
        """A request whose KV arrived from a prefill replica joins the decode set directly."""
        if req.sched_s is None:
            req.sched_s = now
        self._track(req)
        self.join_decode(req)

    def _track(self, req: Req) -> None:
        self.admit_seq += 1
        req.admit_seq = self.admit_seq
        self.admitted.append(req)

    # ---- preemption (recompute) ----------------------------------------------------------
    def preempt_newest(self) -> Req | None:
        """Evict the most recently admitted running request back to the front of ``waiting``.

        Its KV is dropped; it will prefill its prompt plus the tokens emitted so far again
        (vLLM's recompute preemption).
        """
        while self.admitted:
            req = self.admitted.pop()
            if req.state == PREFILL:
                self.prefilling.remove(req)
                self.kv.prefill_tokens -= req.ctx0
            elif req.state == DECODE:
                self.kv.leave(req.base)
                req.emitted = req.output - (req.finish_step - self.kv.steps)
                if req in self.joined:
                    self.joined.remove(req)
            else:
                continue
            req.gen += 1
            req.preemptions += 1
            req.transferred = False  # its KV is gone: recompute here
            req.state = WAITING
            req.ctx0 = req.prompt + req.emitted
            req.done = req.cached if req.emitted == 0 else 0
            self.waiting.appendleft(req)
            return req
        return None

    def preempt_to_fit(self) -> None:
        """Preempt until the next decode step's KV growth fits."""
        kv = self.kv
        while kv.next_step_tokens() > kv.capacity_tokens and self.preempt_newest() is not None:
            pass

    # ---- end of a step -------------------------------------------------------------------
    def end_decode(self, now: float, finished: list[Req]) -> None:
        """Book one decode step: ITL samples, then pop the requests that emitted their last token."""
        self.kv.steps += 1
        self.book_itl(now)
        self.pop_finished(now, finished)

    def book_itl(self, now: float) -> None:
        """The ITL samples of a decode step ending at ``now``: one gap per sequence that decoded
        in the step before too, and the gap since its first token for each that just joined."""
        fresh = len(self.joined)
        if self.step_decode > fresh:
            self.itl_values.append(now - self.last_decode_end_s)
            self.itl_counts.append(self.step_decode - fresh)
        for req in self.joined:
            self.itl_values.append(now - req.last_token_s)
            self.itl_counts.append(1)
        self.joined.clear()
        self.last_decode_end_s = now

    def pop_finished(self, now: float, finished: list[Req]) -> None:
        """Append to ``finished`` the requests whose last token the decode step ending at ``now``
        (decode step ``kv.steps``) emitted, and free their KV."""
        kv = self.kv
        heap = self.decode_heap
        while heap and heap[0][0] <= kv.steps:
            _, _, gen, req = heapq.heappop(heap)
            if gen != req.gen or req.state != DECODE:
                continue
            kv.leave(req.base)
            req.emitted = req.output
            req.state = DONE
            req.finish_s = now
            req.last_token_s = now
            finished.append(req)

    def end_prefill_chunk(self, req: Req, chunk: int, now: float) -> bool:
        """Book a prompt chunk; True when the (re)prefill completed and emitted a token."""
        req.done += chunk
        if req.done < req.ctx0:
            return False
        self.prefilling.remove(req)
        self.kv.prefill_tokens -= req.ctx0
        if req.first_token_s is None:
            req.first_token_s = now
        else:  # resumed after preemption: the gap since its last token is one ITL sample
            self.itl_values.append(now - req.last_token_s)
            self.itl_counts.append(1)
        req.emitted += 1
        req.last_token_s = now
        return True
