"""KV-cache accounting of one replica in O(1) per step.

Tokens are counted, not blocks (vLLM's 16-token pages waste at most 15 tokens per sequence,
under 1% at the contexts simulated here). Admission reserves a request's whole (re)prefill
context at once, like vLLM's v0 block manager; decoding grows each sequence by one token per
decode step. With ``steps`` decode steps done, the decoding sequences hold
``base_sum + decoding * steps`` tokens (each one's ``base`` is its context minus the step count
when it joined), so no per-sequence work is needed per step.
"""

from __future__ import annotations


class KVLedger:
    __slots__ = ("capacity_tokens", "admit_limit_tokens", "prefill_tokens", "base_sum", "decoding", "steps")

    def __init__(self, capacity_tokens: float, watermark: float = 0.01):
        self.capacity_tokens = float(capacity_tokens)
        # new prompts are admitted only below the watermark, so decode growth rarely preempts
        self.admit_limit_tokens = self.capacity_tokens * (1.0 - watermark)
        self.prefill_tokens = 0  # reserved by admitted, not yet decoding requests
        self.base_sum = 0
        self.decoding = 0
        self.steps = 0  # decode steps done by this replica

    def used_tokens(self) -> int:
        """Tokens held now."""
        return self.prefill_tokens + self.base_sum + self.decoding * self.steps

    def next_step_tokens(self) -> int:
        """Tokens held during the next decode step (each decoding sequence writes one more)."""
        return self.prefill_tokens + self.base_sum + self.decoding * (self.steps + 1)

    def can_admit(self, tokens: int, alone: bool) -> bool:
        """Whether ``tokens`` more fit below the watermark (or at all, if nothing else runs)."""
        limit = self.capacity_tokens if alone else self.admit_limit_tokens
        return self.next_step_tokens() + tokens <= limit

    def join(self, ctx_tokens: int) -> int:
        """A sequence holding ``ctx_tokens`` starts decoding; returns its base."""
        base = ctx_tokens - self.steps
        self.base_sum += base
        self.decoding += 1
        return base

    def leave(self, base: int) -> None:
        self.base_sum -= base
        self.decoding -= 1
