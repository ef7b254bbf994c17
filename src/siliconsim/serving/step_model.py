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
PROMPT_CELL_CONTEXTS = 16  # decode contexts (GRID points) in one cell of prompt-step times
PROMPT_CELL_BATCHES = 16  # batch sizes whose prompt-step cells are filled together
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
    points (``grid_bracket``). Decode-only steps read rows over every decode context of the grid,
    filled for ``DECODE_BLOCK`` batch sizes at once; steps with prompt work read cells of
    ``PROMPT_CELL_CONTEXTS`` decode contexts, filled for the ``PROMPT_CELL_BATCHES`` batch sizes
    around the step's. A long simulation so makes a few hundred cost-model calls instead of one
    per step, each vectorized over everything it fills; the times do not depend on what is
    filled together (the cost model is elementwise).
    """

    def __init__(self, deployment: Any, kv_dtype: str | None = None):
        from siliconsim.perf.step import Work  # perf is below serving; imported here to keep start-up light

        self._dep = deployment
        self._work = Work
        self._rows: dict[float, list[float]] = {}  # batch -> decode-only step times over GRID
        # batch -> (p index, pc index, decode-context cell) as one int (_cell_key) -> times at that
        # cell's GRID contexts
        self._cells: dict[float, dict[int, list[float]]] = {}
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
            row = self._rows.get(float(decode_batch))
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
        return self._rows.get(float(decode_batch)) if decode_batch else None

    def _interpolated(self, p: float, pc: float, b: float, dc: float) -> float:
        """Multilinear interpolation over the grid corners around (p, pc, dc)."""
        di, dj, dw = grid_bracket(dc) if b else _ZERO
        b = float(b)
        if not p:  # decode only: one row, weight 1 (the general sum below gives the same bits)
            row = self._rows.get(b)
            if row is None:
                self._fill_missing([b], [], b)
                row = self._rows[b]
            return (1.0 - dw) * row[di] + dw * row[dj]
        pi, pj, pw = grid_bracket(p)
        ci, cj, cw = grid_bracket(pc)
        u, v = 1.0 - pw, 1.0 - cw
        corners = ((pi, ci, u * v), (pi, cj, u * cw), (pj, ci, pw * v), (pj, cj, pw * cw))  # weight 0: skipped
        (lo_cell, lo), (hi_cell, hi) = divmod(di, PROMPT_CELL_CONTEXTS), divmod(dj, PROMPT_CELL_CONTEXTS)
        keyed = [((x * _GRID_POINTS + y) * _CELLS_PER_ROW, w) for x, y, w in corners if w]  # _cell_key, inlined
        dw_lo = 1.0 - dw
        try:
            cells = self._cells[b]
            terms = [w * (dw_lo * cells[k + lo_cell][lo] + dw * cells[k + hi_cell][hi]) for k, w in keyed]
        except KeyError:  # cells to fill (then the same terms)
            cells = self._cells.get(b, {})
            self._fill_missing([], [(x, y, b, cell) for x, y, w in corners if w for cell in (lo_cell, hi_cell)
                                    if _cell_key(x, y) + cell not in cells], b)
            cells = self._cells[b]
            terms = [w * (dw_lo * cells[k + lo_cell][lo] + dw * cells[k + hi_cell][hi]) for k, w in keyed]
        return sum(terms)

    def _fill_missing(self, batches: list[float], cells: list[tuple[int, int, float, int]], b: float) -> None:
        """Fill the decode-only rows of ``batches`` and the prompt-step ``cells`` (with those of
        the ``PROMPT_CELL_BATCHES`` batch sizes around theirs) in one cost-model call, with the
        decode-only rows of the ``DECODE_BLOCK`` batch sizes around ``b`` if ``b`` is new: a run
        meets most batch sizes near one it met, and a family that remembers decode costs
        (``perf/wafer.py``) then times later prompt steps of those batches without searching its
        layouts again."""
        rows = dict.fromkeys(batches)
        if b not in self._batches:
            lo = int(b) // DECODE_BLOCK * DECODE_BLOCK
            block = [float(x) for x in range(lo, min(lo + DECODE_BLOCK, self.max_batch + 1))]
            self._batches.update(block)
            self._batches.add(b)
            rows.update((x, None) for x in block if x not in self._rows)
        new_cells = dict.fromkeys(cells)
        for x, y, batch, cell in cells:
            lo = int(batch) // PROMPT_CELL_BATCHES * PROMPT_CELL_BATCHES
            for z in map(float, range(lo, min(lo + PROMPT_CELL_BATCHES, self.max_batch + 1))):
                if _cell_key(x, y) + cell not in self._cells.get(z, ()):
                    new_cells[x, y, z, cell] = None
        self._fill(list(rows), list(new_cells))

    def _fill(self, batches: list[float], cells: list[tuple[int, int, float, int]]) -> None:
        """Evaluate the cost model for the decode-only rows of ``batches`` (every decode context
        of the grid) and for ``cells`` (a cell's decode contexts), in one call."""
        if not batches and not cells:
            return
        n, w = GRID.size, PROMPT_CELL_CONTEXTS
        first = [0] * len(batches) + [c[3] * w for c in cells]  # first GRID context of each row or cell
        sizes = [n] * len(batches) + [min(w, n - c[3] * w) for c in cells]
        sizes_arr = np.array(sizes)
        ends = np.cumsum(sizes_arr)
        dc_index = np.arange(int(ends[-1])) - np.repeat(ends - sizes_arr - np.array(first), sizes_arr)
        p = np.repeat(GRID[[0] * len(batches) + [c[0] for c in cells]], sizes_arr)
        pc = np.repeat(GRID[[0] * len(batches) + [c[1] for c in cells]], sizes_arr)
        b = np.repeat(np.array(batches + [c[2] for c in cells], float), sizes_arr)
        dc = GRID[dc_index]
        times = np.broadcast_to(np.asarray(self._dep.step(self._work(p, pc, b, dc)).latency_s, float), (p.size,))
        self.calls += 1
        flat = times.tolist()  # Python floats: same bits, faster scalar arithmetic
        ends_list = ends.tolist()
        for batch, end in zip(batches, ends_list):
            self._rows[batch] = flat[end - n:end]
        for (x, y, batch, cell), end, size in zip(cells, ends_list[len(batches):], sizes[len(batches):]):
            self._cells.setdefault(batch, {})[_cell_key(x, y) + cell] = flat[end - size:end]

    def kv_transfer_s(self, tokens: float) -> float:
        bytes_ = float(self._dep.model.kv_bytes(tokens, self._kv_dtype))
        bandwidth, latency = self._link
        return latency + bytes_ / bandwidth

    @property
    def cost_model_calls(self) -> int:
        return self.calls


_GRID_POINTS = GRID.size
_CELLS_PER_ROW = -(-_GRID_POINTS // PROMPT_CELL_CONTEXTS)


def _cell_key(p_index: int, pc_index: int) -> int:
    """The int naming a prompt-step row of one batch size; add the decode-context cell to name
    one of its cells (an int hashes faster than a tuple)."""
    return (p_index * _GRID_POINTS + pc_index) * _CELLS_PER_ROW


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
