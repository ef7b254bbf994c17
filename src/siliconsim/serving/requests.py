"""The runtime state of one request inside the simulator (mutable, slotted for speed)."""

from __future__ import annotations

WAITING, PREFILL, DECODE, TRANSFER, DONE, REJECTED = range(6)


class Req:
    """One request. Times are simulated seconds; ``None`` until they happen.

    ``ctx0`` is the number of tokens whose KV the request holds when its (re)prefill ends:
    the prompt, plus every emitted token after a recompute preemption. ``emitted`` counts output
    tokens produced so far. While decoding, ``base`` is ``ctx0`` minus the replica's decode-step
    count at join time, so its KV tokens at decode step ``s`` are ``base + s``, and it finishes at
    decode step ``finish_step``.
    """

    __slots__ = ("i", "arrival_s", "prompt", "output", "cached", "ctx0", "emitted", "done", "state",
                 "first_token_s", "finish_s", "sched_s", "last_token_s", "base", "finish_step", "gen",
                 "replica", "preemptions", "reason", "transferred", "admit_seq")

    def __init__(self, i: int, arrival_s: float, prompt: int, output: int, cached: int):
        self.i = i
        self.arrival_s = arrival_s
        self.prompt = prompt
        self.output = output
        self.cached = cached
        self.ctx0 = prompt
        self.emitted = 0
        self.done = cached  # prompt tokens whose KV exists (prefix cache hit for follow-up turns)
        self.state = WAITING
        self.first_token_s: float | None = None
        self.finish_s: float | None = None
        self.sched_s: float | None = None
        self.last_token_s = 0.0
        self.base = 0
        self.finish_step = 0
        self.gen = 0  # bumped on preemption: stale heap entries are skipped
        self.replica = -1
        self.preemptions = 0
        self.reason = ""
        self.transferred = False  # arrived at a decode replica with its KV (disaggregation)
        self.admit_seq = 0

    @property
    def max_kv_tokens(self) -> int:
        """KV tokens held at the last decode step: prompt plus all but the last output token."""
        return self.prompt + self.output - 1
