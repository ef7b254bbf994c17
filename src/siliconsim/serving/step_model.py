"""What the serving engine needs from a cost model: the time of one step, and capacities.

``StepModel`` is the engine's only view of hardware, so tests drive it with a deterministic
``LinearStepModel`` and the engine never imports hardware code. ``DeploymentStepModel`` adapts a
``plans`` Deployment (the same ``dep.step`` that ``estimate`` uses) and memoizes step times on a
grid (see ``grid_bracket``) so the cost model stays out of the event loop's
hot path.

``prefill_context`` is the average number of earlier tokens each new prompt token attends to
(a chunk of ``c`` tokens starting at offset ``o`` attends to ``o + c / 2`` on average), and
``decode_context`` the average context of the decoding sequences, as in ``perf.step.Work``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

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


DECODE_BLOCK = 32  # decode-only rows filled together (see DeploymentStepModel._fill_missing)
GRID_STEPS_PER_OCTAVE = 4
GRID_EXACT_BELOW = 64
GRID_MAX_OCTAVE = 22  # 4M tokens
# token counts and contexts where the cost model is evaluated: 0..63 exactly, then 4 per octave
GRID = np.concatenate((np.arange(GRID_EXACT_BELOW, dtype=float),
                       2.0 ** (np.arange(6 * GRID_STEPS_PER_OCTAVE, GRID_MAX_OCTAVE * GRID_STEPS_PER_OCTAVE + 1)
                               / GRID_STEPS_PER_OCTAVE)))


_GRID_FLOATS = GRID.tolist()  # the same values as Python floats (scalar arithmetic on them is faster)
_ZERO = (0, 0, 0.0)


def grid_bracket(x: float) -> tuple[int, int, float]:
    """Indices of the GRID points around ``x`` and the weight of the upper one.

    Values below 64 are exact; above, points are 2**(1/4) apart (ratio 1.19) and step times are
    interpolated linearly between them (exact where the cost is affine in the value, as
    attention reads and prompt FLOP are).
    """
    if x < GRID_EXACT_BELOW:
        i = int(round(x))
        return i, i, 0.0
    k = min(int(math.log2(x) * GRID_STEPS_PER_OCTAVE), GRID_MAX_OCTAVE * GRID_STEPS_PER_OCTAVE - 1)
    i = GRID_EXACT_BELOW + k - 6 * GRID_STEPS_PER_OCTAVE
    lo, hi = _GRID_FLOATS[i], _GRID_FLOATS[i + 1]
    return i, i + 1, (x - lo) / (hi - lo)


class DeploymentStepModel:
    """Adapter: a ``plans`` Deployment as a StepModel (memoized ``dep.step(Work).latency_s``).

    The batch is exact; prompt tokens and both contexts are interpolated linearly between GRID
    points (``grid_bracket``). The cost model is called once per new (prompt tokens, prompt
    context, batch) grid point, vectorized over every decode context of the grid, so a long
    simulation makes tens to hundreds of calls instead of one per step.
    """

    def __init__(self, deployment: Any, kv_dtype: str | None = None):
        from siliconsim.perf.step import Work  # perf is below serving; imported here to keep start-up light

        self._dep = deployment
        self._work = Work
        self._rows: dict[tuple[int, int, float], list[float]] = {}  # (p index, pc index, batch) -> times over GRID
        self._memo: dict[tuple[float, float, float, float], float] = {}
        self._batches: set[float] = set()  # batch sizes whose decode-only rows are filled or being filled
        self.calls = 0
        self.kv_capacity_tokens = float(deployment.kv_capacity_tokens)
        self.max_batch = int(deployment.max_batch)
        self._kv_dtype = kv_dtype or getattr(deployment, "kv_dtype", None) or "fp8"
        self._link = _kv_link(deployment)

    def step_time_s(self, prefill_tokens: float, prefill_context: float, decode_batch: float,
                    decode_context: float) -> float:
        if not prefill_tokens:  # decode only: one row, cheaper to interpolate than to memoize
            row = self._rows.get((0, 0, float(decode_batch)))
            if row is None or not decode_batch:
                return self._interpolated(0, 0.0, decode_batch, decode_context)
            di, dj, dw = grid_bracket(decode_context)  # as in _interpolated, inlined: the hot path
            return (1.0 - dw) * row[di] + dw * row[dj]
        key = (prefill_tokens, prefill_context, decode_batch, decode_context)
        t = self._memo.get(key)
        if t is None:
            t = self._interpolated(*key)
            self._memo[key] = t
        return t

    def decode_row(self, decode_batch: int) -> list[float] | None:
        """Decode-only step times of ``decode_batch`` sequences over the GRID of decode contexts,
        if already filled: ``step_time_s(0, 0, b, c)`` interpolates it at ``grid_bracket(c)``."""
        return self._rows.get((0, 0, float(decode_batch))) if decode_batch else None

    def _interpolated(self, p: float, pc: float, b: float, dc: float) -> float:
        """Multilinear interpolation over the grid corners around (p, pc, dc)."""
        rows = self._rows
        di, dj, dw = grid_bracket(dc) if b else _ZERO
        if not p:  # decode only: one row, weight 1 (the general sum below gives the same bits)
            key = (0, 0, float(b))
            row = rows.get(key)
            if row is None:
                self._fill_missing([key], b)
                row = rows[key]
            return (1.0 - dw) * row[di] + dw * row[dj]
        pb, cb = grid_bracket(p), grid_bracket(pc)
        corners = [((pi, ci, float(b)), pw * cw) for pi, pw in ((pb[0], 1.0 - pb[2]), (pb[1], pb[2]))
                   for ci, cw in ((cb[0], 1.0 - cb[2]), (cb[1], cb[2])) if pw * cw]
        self._fill_missing([key for key, _ in corners if key not in rows], b)
        return sum(w * ((1.0 - dw) * rows[key][di] + dw * rows[key][dj]) for key, w in corners)

    def _fill_missing(self, missing: list[tuple[int, int, float]], b: float) -> None:
        """Fill ``missing`` rows, with the decode-only rows of the ``DECODE_BLOCK`` batch sizes
        around ``b`` in the same call if ``b`` is new: a run meets most batch sizes near one it
        met, and a family that remembers decode costs (``perf/wafer.py``) then times later prompt
        steps of those batches without searching its layouts again."""
        if missing and b not in self._batches:
            lo = int(b) // DECODE_BLOCK * DECODE_BLOCK
            batches = [float(x) for x in range(lo, min(lo + DECODE_BLOCK, self.max_batch + 1))]
            self._batches.update(batches)
            self._batches.add(b)
            missing = missing + [(0, 0, x) for x in batches if (0, 0, x) not in self._rows and (0, 0, x) not in missing]
        self._fill(missing)

    def _fill(self, keys: list[tuple[int, int, float]]) -> None:
        """Evaluate the cost model for ``keys`` over every decode context of the grid, in one call."""
        if not keys:
            return
        n = GRID.size
        p = np.repeat([GRID[k[0]] for k in keys], n)
        pc = np.repeat([GRID[k[1]] for k in keys], n)
        b = np.repeat([k[2] for k in keys], n)
        dc = np.tile(GRID, len(keys))
        times = np.broadcast_to(np.asarray(self._dep.step(self._work(p, pc, b, dc)).latency_s, float), (p.size,))
        self.calls += 1
        for j, key in enumerate(keys):
            self._rows[key] = times[j * n:(j + 1) * n].tolist()  # Python floats: same bits, faster scalar arithmetic

    def kv_transfer_s(self, tokens: float) -> float:
        bytes_ = float(self._dep.model.kv_bytes(tokens, self._kv_dtype))
        bandwidth, latency = self._link
        return latency + bytes_ / bandwidth

    @property
    def cost_model_calls(self) -> int:
        return self.calls


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
