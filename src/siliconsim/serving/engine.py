"""The discrete-event loop: arrivals, steps, KV transfers.

Heap entries are ``(time_s, priority, seq, payload)``. At equal times events run in priority
order, then in the order they were scheduled (``seq``):

0. ``STEP_END``: a replica's step completes (tokens are emitted, KV is freed);
1. ``TRANSFER_DONE``: a prefilled request's KV reached its decode replica;
2. ``ARRIVAL``: a request reaches the router (or, with a dispatch window, the batcher);
3. ``DISPATCH``: the batcher sends what it holds to one replica;
4. ``KICK``: an idle replica that received work starts a step. Kicks run last so that every
   request arriving at the same instant joins the same step.

With ``ServeConfig.dispatch_window_s > 0`` a harness-side batcher (AMD's MLPerf harness) sits in
front of the router: it holds arrivals until ``dispatch_max_requests`` are pending or the window
has passed since its last dispatch, then sends them all (up to that many) to one replica.

Handlers return their follow-up events as ``(time_s, priority, payload)`` tuples; the loop
numbers and pushes them, except a lone follow-up that sorts before the heap's head on
``(time_s, priority)``: it would be popped next, so it runs at once (same order, no heap traffic;
a busy replica's chain of steps mostly runs this way). A busy replica starts its next step as soon as one ends.

The end of a decode-only step of a replica where nothing waits or prefills, and the decode-only
steps after it that end before any other event, run in one handler call (``_decode_run``), in the
same float operations as one event each; the events are still counted one per step end. With an
event log every step end is an event of the loop (the tests compare both ways bit for bit).
"""

from __future__ import annotations

import gc
import heapq
from itertools import repeat
from math import log2
from collections.abc import Callable

import numpy as np

from siliconsim.serving.config import ServeConfig
from siliconsim.serving.replica import Replica
from siliconsim.serving.requests import DONE, REJECTED, TRANSFER, Req
from siliconsim.serving.result import SimResult, build_result
from siliconsim.serving.router import ROUTERS
from siliconsim.serving.scheduler import SCHEDULERS, ChunkedScheduler, PrefillFirstScheduler
from siliconsim.serving.step_model import (_GRID_FLOATS, GRID_EXACT_BELOW, GRID_MAX_OCTAVE, GRID_STEPS_PER_OCTAVE,
                                              StepModel)
from siliconsim.workloads.requests import RequestSet

STEP_END, TRANSFER_DONE, ARRIVAL, DISPATCH, KICK = 0, 1, 2, 3, 4
_NONE: tuple = ()
Event = tuple  # (time_s, priority, payload)
_INF = float("inf")
_NEVER = 1 << 62  # a step count no run reaches
_LAST_K = GRID_MAX_OCTAVE * GRID_STEPS_PER_OCTAVE - 1  # grid_bracket's largest octave index


class Engine:
    def __init__(self, model: StepModel, requests: RequestSet, config: ServeConfig,
                 progress: Callable[[int, int], None] | None = None, event_log: list | None = None):
        config.check()
        self.model = model
        self.config = config
        self.requests = requests
        self.progress = progress
        self.event_log = event_log
        self.now = 0.0
        max_batch = config.effective_max_batch(model.max_batch)
        n_first, n_decode = config.pools
        role = "prefill" if n_decode else "mixed"
        cap = float(model.kv_capacity_tokens)
        self.replicas = [Replica(i, role if i < n_first else "decode", cap, max_batch, config.kv_watermark)
                         for i in range(n_first + n_decode)]
        self.entry_pool = self.replicas[:n_first]
        self.decode_pool = self.replicas[n_first:]
        self.router = ROUTERS[config.router]()
        self.decode_router = ROUTERS[config.router]()
        self.scheduler = SCHEDULERS[config.scheduler](config.token_budget, config.chunk())
        self.reqs = [Req(i, float(a), int(p), int(o), int(c)) for i, (a, p, o, c) in enumerate(
            zip(requests.arrival_s.tolist(), requests.input_tokens.tolist(), requests.output_tokens.tolist(),
                requests.cached_tokens.tolist()))]
        self.next_turn = np.full(len(requests), -1, np.int64)
        children = np.flatnonzero(requests.parent >= 0)
        self.next_turn[requests.parent[children]] = children
        self.steps: list[tuple[float, float, int, int, int]] = []  # (t0, dt, seqs, kv, replica) per step
        self.events = 0
        self.settled = 0
        self.pending: list[Req] = []  # held by the batcher (dispatch window)
        self.last_dispatch_s = -float("inf")
        self.dispatch_gen = 0  # bumped on every dispatch: a stale DISPATCH event is skipped
        self.dispatch_due = False
        # decode-only steps that no other event interleaves run in one handler call (_decode_run);
        # with an event log every step is an event of the loop
        self.coalesce = event_log is None and isinstance(self.scheduler, (ChunkedScheduler, PrefillFirstScheduler))
        self.decode_row = getattr(model, "decode_row", None)
        self.heap: list = []

    # ---- loop ----------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Run every event, then collect the result. The cyclic garbage collector is paused
        meanwhile: the loop makes no reference cycles, but its hundreds of thousands of step
        records and events would make every collection walk them all again."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if paused:
                gc.enable()

    def _run(self) -> SimResult:
        heap = [(r.arrival_s, ARRIVAL, r.i, r) for r, p in zip(self.reqs, self.requests.parent.tolist()) if p < 0]
        heapq.heapify(heap)
        self.heap = heap
        seq = len(self.reqs)
        log, progress, total = self.event_log, self.progress, len(self.reqs)
        handlers = (self._on_step_end, self._on_transfer, self._on_arrival, self._on_dispatch, self._on_kick)
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            t, prio, s, payload = pop(heap)
            while True:
                self.now = t
                if log is not None:
                    log.append((t, prio, s))
                follow = handlers[prio](payload)
                self.events += 1
                if progress is not None and not self.events & 4095:
                    progress(self.settled, total)
                if len(follow) == 1:  # a lone follow-up that sorts before the heap's head is the next
                    ft, fp, fpay = follow[0]  # event (its seq is the largest): run it without the heap
                    if not heap or (ft, fp) < (heap[0][0], heap[0][1]):
                        t, prio, s, payload = ft, fp, seq, fpay
                        seq += 1
                        continue
                for ft, fp, fpay in follow:
                    push(heap, (ft, fp, seq, fpay))
                    seq += 1
                break
        if progress is not None:
            progress(self.settled, total)
        return build_result(self)

    # ---- handlers ------------------------------------------------------------------------
    def _on_arrival(self, req: Req) -> tuple[Event, ...]:
        req.arrival_s = self.now
        reason = self._reject_reason(req)
        if reason:
            self._reject(req, reason)
            return _NONE
        if self.config.dispatch_window_s > 0:
            return self._hold(req)
        return self._route([req])

    def _route(self, reqs: list[Req]) -> tuple[Event, ...]:
        """Hand ``reqs`` together to the replica the router picks, and wake it."""
        rep = self.router.pick(self.entry_pool)
        for req in reqs:
            rep.outstanding += 1
            req.replica = rep.idx
            rep.waiting.append(req)
        return self._kick(rep)

    def _hold(self, req: Req) -> tuple[Event, ...]:
        """The batcher keeps ``req`` until the window passes or enough requests are pending."""
        self.pending.append(req)
        if len(self.pending) >= self.config.dispatch_max_requests:
            return self._dispatch()
        if self.dispatch_due:
            return _NONE
        self.dispatch_due = True
        return ((max(self.now, self.last_dispatch_s + self.config.dispatch_window_s), DISPATCH, self.dispatch_gen),)

    def _on_dispatch(self, gen: int) -> tuple[Event, ...]:
        return self._dispatch() if gen == self.dispatch_gen and self.pending else _NONE

    def _dispatch(self) -> tuple[Event, ...]:
        """Send the pending requests (at most ``dispatch_max_requests``) to one replica."""
        cap = self.config.dispatch_max_requests
        batch, self.pending = self.pending[:cap], self.pending[cap:]
        self.last_dispatch_s = self.now
        self.dispatch_gen += 1
        self.dispatch_due = False
        follow = list(self._route(batch))
        if self.pending:
            self.dispatch_due = True
            wait = 0.0 if len(self.pending) >= cap else self.config.dispatch_window_s
            follow.append((self.now + wait, DISPATCH, self.dispatch_gen))
        return tuple(follow)

    def _on_kick(self, rep: Replica) -> tuple[Event, ...]:
        rep.kicked = False
        if rep.busy:
            return _NONE
        return self._start_step(rep)

    def _on_transfer(self, req: Req) -> tuple[Event, ...]:
        rep = self.replicas[req.replica]
        req.transferred = True
        rep.waiting.append(req)
        return self._kick(rep)

    def _on_step_end(self, rep: Replica) -> tuple[Event, ...] | list[Event]:
        if self.coalesce and not rep.step_chunks and not rep.waiting and not rep.prefilling:
            return self._decode_run(rep)
        now = self.now
        finished: list[Req] = []
        if rep.step_decode:
            rep.end_decode(now, finished)
        follow: list[Event] = []
        for req, chunk in rep.step_chunks:
            if not rep.end_prefill_chunk(req, chunk, now):
                continue
            if req.emitted >= req.output:
                req.state = DONE
                req.finish_s = now
                finished.append(req)
            elif rep.role == "prefill":
                follow.append(self._hand_off(rep, req))
            else:
                rep.join_decode(req)
        for req in finished:
            rep.outstanding -= 1
            follow.extend(self._settle(req))
        follow.extend(self._start_step(rep))
        return follow

    def _decode_run(self, rep: Replica) -> tuple[Event, ...] | list[Event]:
        """End ``rep``'s decode-only step (nothing waits or prefills), and run its following
        decode-only steps whose ends are the loop's next events, in this one call.

        Each step end is what ``_on_step_end`` does (``Replica.end_decode``, settling the requests
        that finished) and each next step what ``_start_step`` does, in the same float operations;
        the chain stops at a step that ends after the heap's head (which none of these steps
        changes: they schedule nothing else), and leaves to ``_start_step`` the step after a
        finish that releases a follow-up turn, one that would preempt, and an idle replica. Events
        are counted, and progress reported, as the loop counts and reports them.
        """
        kv, dheap, heap = rep.kv, rep.decode_heap, self.heap
        now = self.now
        kv.steps += 1
        rep.book_itl(now)  # the first step may have had sequences join
        start = steps = counted = kv.steps  # counted: steps whose ITL counts are appended
        head_t, head_p = (heap[0][0], heap[0][1]) if heap else (_INF, 0)
        itl_values, itl_counts, steps_append = rep.itl_values, rep.itl_counts, self.steps.append
        idx, room, step_time_s, grid, log2_ = rep.idx, kv.capacity_tokens, self.model.step_time_s, _GRID_FLOATS, log2
        follow: list[Event] = []
        # the step counts at which more than a decode step happens: a request finishes, progress is
        # reported (the loop reports after every 4,096th event, and counts this run's first itself),
        # the next step would overflow the KV cache and preempt (held + n * (steps + 1) > room)
        next_finish = dheap[0][0] if dheap else _NEVER
        report = start + ((-(self.events + 1)) % 4096 or 4096) if self.progress is not None else _NEVER
        overflow = look = steps
        changed = True  # the decode set changed: n, held, quotient and row are to be read again
        n = held = 0
        quotient = 0.0
        row = None
        # grid_bracket(dctx) of the last context above GRID_EXACT_BELOW: its interval, and the part
        # of it (a relative 1e-9 in from each end) where int(log2(dctx) * 4) is that interval's for
        # sure (log2 errs by ulps, 1e-15 here): no log2 for the next contexts inside it
        di, lo, span, inside_lo, inside_hi = 0, 0.0, 1.0, _INF, -_INF
        while True:
            if steps >= look:
                if steps >= next_finish:  # the step that ended at `now` emitted last tokens
                    self.now = now
                    kv.steps = steps
                    finished: list[Req] = []
                    rep.pop_finished(now, finished)
                    for req in finished:
                        rep.outstanding -= 1
                        follow.extend(self._settle(req))
                    next_finish = dheap[0][0] if dheap else _NEVER
                    changed = True
                if steps == report:  # after the step end's settlements, as the loop reports
                    self.progress(self.settled, len(self.reqs))
                    report += 4096
                if changed:
                    itl_counts.extend(repeat(n, steps - counted))  # one ITL count per step ended since
                    counted = steps
                    n = kv.decoding
                    if follow or not n:
                        break
                    held = kv.prefill_tokens + kv.base_sum
                    quotient = kv.base_sum / n
                    row = self.decode_row(n) if self.decode_row is not None else None
                    # held + n * (s + 1) > room  <=>  s >= (floor(room) - held) // n  (integers)
                    overflow = (int(room) - held) // n if room < _INF else _NEVER
                    changed = False
                if steps >= overflow:
                    break
                look = min(next_finish, report, overflow)
            dctx = quotient + steps + 1
            if row is None:
                dt = step_time_s(0, 0.0, n, dctx)
            elif inside_lo < dctx < inside_hi:  # what grid_bracket gives, without its log2
                dw = (dctx - lo) / span
                dt = (1.0 - dw) * row[di] + dw * row[di + 1]
            elif dctx < GRID_EXACT_BELOW:  # grid_bracket(dctx), inlined: this loop is the hot path
                k = int(round(dctx))
                dt = row[k] + 0.0 * row[k]  # (1 - w) * row[di] + w * row[dj] at w = 0, dj = di
            else:
                k = int(log2_(dctx) * GRID_STEPS_PER_OCTAVE)
                di = GRID_EXACT_BELOW + (k if k < _LAST_K else _LAST_K) - 6 * GRID_STEPS_PER_OCTAVE
                lo, hi = grid[di], grid[di + 1]
                span = hi - lo
                inside_lo, inside_hi = lo * (1 + 1e-9), hi * (1 - 1e-9)
                dw = (dctx - lo) / span
                dt = (1.0 - dw) * row[di] + dw * row[di + 1]
            steps_append((now, dt, n, held + n * (steps + 1), idx))
            end_s = now + dt
            if end_s >= head_t and (end_s > head_t or not head_p):  # another event comes first
                rep.step_decode = n
                itl_counts.extend(repeat(n, steps - counted))
                self._end_run(rep, steps, now, steps - start)
                return ((end_s, STEP_END, rep),)
            itl_values.append(end_s - now)  # the step ends: what Replica.end_decode books, nobody fresh
            now = end_s  # (its ITL count, n, is appended with the others of this n)
            steps += 1
        itl_counts.extend(repeat(n, steps - counted))
        self._end_run(rep, steps, now, steps - start)
        follow.extend(self._start_step(rep))
        return follow

    def _end_run(self, rep: Replica, steps: int, now: float, events: int) -> None:
        """Write back what ``_decode_run`` kept in local variables."""
        rep.kv.steps = steps
        rep.last_decode_end_s = self.now = now
        self.events += events

    # ---- helpers -------------------------------------------------------------------------
    def _kick(self, rep: Replica) -> tuple[Event, ...]:
        if rep.busy or rep.kicked:
            return _NONE
        rep.kicked = True
        return ((self.now, KICK, rep),)

    def _start_step(self, rep: Replica) -> tuple[Event, ...]:
        now = self.now
        if not self.scheduler.compose(rep, now):
            rep.busy = False
            return _NONE
        tokens = 0
        keys = 0.0
        for req, c in rep.step_chunks:
            tokens += c
            keys += c * (req.done + 0.5 * c)
        n = rep.step_decode
        kv = rep.kv
        dctx = (kv.base_sum / n + kv.steps + 1) if n else 0.0
        dt = self.model.step_time_s(tokens, keys / tokens if tokens else 0.0, n, dctx)
        # KV held: KVLedger.next_step_tokens if it decodes, else used_tokens (inlined: the hot path)
        self.steps.append((now, dt, n + len(rep.step_chunks),
                           kv.prefill_tokens + kv.base_sum + kv.decoding * (kv.steps + 1 if n else kv.steps), rep.idx))
        rep.busy = True
        return ((now + dt, STEP_END, rep),)

    def _hand_off(self, rep: Replica, req: Req) -> Event:
        """Prefill done on a prefill replica: send the KV to a decode replica."""
        rep.outstanding -= 1
        req.state = TRANSFER
        dest = self.decode_router.pick(self.decode_pool)
        dest.outstanding += 1
        req.replica = dest.idx
        return (self.now + self.model.kv_transfer_s(req.ctx0), TRANSFER_DONE, req)

    def _settle(self, req: Req) -> tuple[Event, ...]:
        """A request completed: count it and release its session's next turn."""
        self.settled += 1
        child = int(self.next_turn[req.i])
        if child < 0:
            return _NONE
        nxt = self.reqs[child]
        return ((self.now + nxt.arrival_s, ARRIVAL, nxt),)

    def _reject_reason(self, req: Req) -> str:
        cap = self.replicas[0].kv.capacity_tokens
        if req.max_kv_tokens > cap:
            return f"kv_capacity: needs {req.max_kv_tokens} KV tokens > {cap:.0f} per replica"
        return ""

    def _reject(self, req: Req, reason: str) -> None:
        """Reject a request, and every later turn of its session (they never get asked)."""
        first = reason
        while True:
            req.state = REJECTED
            req.reason = reason
            self.settled += 1
            child = int(self.next_turn[req.i])
            if child < 0:
                return
            req, reason = self.reqs[child], f"session: an earlier turn was rejected ({first})"


def simulate(model: StepModel, requests: RequestSet, config: ServeConfig | None = None, *,
             progress: Callable[[int, int], None] | None = None, event_log: list | None = None) -> SimResult:
    """Serve ``requests`` on replicas of ``model``; deterministic for given inputs."""
    return Engine(model, requests, config or ServeConfig(), progress, event_log).run()
