"""The wafer execution family: Cerebras WSE-2/WSE-3, weights resident in on-wafer SRAM.

Modelled at the level of the PE mesh (WaferLLM's PLMR model, He et al., OSDI 2025,
arXiv 2502.04563; ../reference/wafer-scale-modeling.md section 4.5):

- Each wafer's program rectangle ``Ux x Uy`` is tiled into ``nx x ny`` *regions* of
  ``Px x Py`` PEs. Each region holds ``ceil(L_w / R)`` consecutive layers (weights and their KV
  cache, 2D-partitioned over the region's PEs), so a token visits the regions in order. The
  tiling is chosen per step by minimising the step time subject to per-PE SRAM capacity.
- One layer on a ``Px x Py`` region costs (cycles), its weights and FLOP taken from the operators
  of ``perf/ops.py`` (all active weights as one fused GEMV pass, then the attention core):
  per-PE work ``max(FMAC/lanes, FMAC * (operand + 2 * accumulator bytes) / SRAM bytes per cycle)``
  plus 10 K-tree all-reduces (WaferLLM ``decode_struct``), each
  ``alpha * n + beta * K * n**(1/K) / 2 + elements / elements_per_wavelet`` along an axis of n PEs.
- Regions hand the hidden state to the next region (``alpha * (Px+Py)/2 + d/min(Px,Py)``);
  wafers hand it over system I/O (``io_latency + bytes / io_bandwidth``), and the sampled
  token returns to the first wafer once per step.
- Pipelining: with ``S`` regions in flight, a batch ``b`` is cut into ``m = min(b, S)``
  micro-batches; a step takes ``max(sum over stages, m * slowest stage)``, so batch-1 latency is
  the sum over layers and aggregate throughput approaches ``S x`` the per-user rate.
- Prefill is GEMM-shaped (MeshGEMM): FLOP at an end-to-end efficiency measured by WaferLLM,
  plus one pass of the collective latencies.
- Weight streaming (``WaferLayout.streaming``): weights live in MemoryX and cross the system
  I/O every step (decode is bound by weight bytes / I/O bandwidth); only for ``--chips`` too small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.errors import CatalogError
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import LayerGroup, ModelSpec, bytes_per_element
from siliconsim.perf.constants import family_constants
from siliconsim.perf.memory import MemoryFit
from siliconsim.perf.ops import attended, attention_flop_per_token, body_flop_per_token, forward_flop_per_token, \
    largest_layer_params, layer_totals, lm_head_op, mlp_width
from siliconsim.perf.step import Parallel, StepCost, Work

MESH_KEYS = ("usable_x", "usable_y", "sram_per_pe_bytes", "simd_fp16_lanes", "clock_hz", "sram_bytes_per_cycle",
             "hop_latency_cycles", "relay_latency_cycles", "io_bandwidth_bytes_per_s", "io_latency_s")
ACT_BYTES = 2.0  # activations and hidden state cross the mesh and the I/O in 16-bit
DECODE_MEMO_DEPLOYMENTS = 64  # deployments whose decode costs WaferFamily remembers (then it forgets all)


@dataclass(frozen=True)
class WaferLayout(Parallel):
    """Wafers of one replica (``pp``), layer-pipelined; ``streaming`` keeps weights in MemoryX."""

    streaming: bool = False
    note: str = ""

    def describe(self) -> str:
        s = f"PP{self.pp} wafer pipeline" if self.pp > 1 else "1 wafer"
        if self.streaming:
            s += ", weight streaming from MemoryX over system I/O (slow)"
            if self.note:
                s += f": {self.note}"
        return s


@dataclass(frozen=True)
class Mesh:
    """The numbers of one wafer's PE mesh, from the chip's [microarch] table."""

    ux: int
    uy: int
    sram_per_pe_bytes: float
    lanes: float
    clock_hz: float
    sram_bytes_per_cycle: float
    alpha_cycles: float
    beta_cycles: float
    io_bytes_per_s: float
    io_latency_s: float

    @classmethod
    def of(cls, chip: Chip) -> "Mesh":
        m = chip.microarch
        missing = [k for k in MESH_KEYS if k not in m]
        if missing:
            raise CatalogError(f"{chip.id}.toml: [microarch] lacks {', '.join(missing)} (needed by the wafer family)")
        return cls(int(m["usable_x"]), int(m["usable_y"]), m["sram_per_pe_bytes"], m["simd_fp16_lanes"],
                   m["clock_hz"], m["sram_bytes_per_cycle"], m["hop_latency_cycles"], m["relay_latency_cycles"],
                   m["io_bandwidth_bytes_per_s"], m["io_latency_s"])

    @property
    def pes(self) -> int:
        return self.ux * self.uy


def allreduce_cycles(mesh: Mesh, n: float, elements: Any, k: dict) -> Any:
    """K-tree all-reduce along a line of ``n`` PEs (WaferLLM MeshGEMV, section 6.1)."""
    kk = k["ktree_k"]
    relays = kk * n ** (1.0 / kk) / 2.0
    return mesh.alpha_cycles * n + mesh.beta_cycles * relays + elements / k["elements_per_wavelet"]


def _collectives(model: ModelSpec, g: LayerGroup, px: int, py: int, b: Any, span: Any) -> list[tuple[int, Any]]:
    """(axis length, elements per PE) of each all-reduce of one decode layer (WaferLLM decode_struct):
    partial sums of each operator's output, sized by the layer's widths."""
    width = mlp_width(g)
    out = [(py, b), (py, b * (model.q_dim + 2 * model.kv_dim) / px),  # RMSNorm, fused QKV
           (px, b * span / py), (py, b), (py, b),  # scores, softmax max, softmax sum
           (py, b * model.q_dim / px), (px, b * model.d_model / py),  # P.V, O projection
           (py, b), (py, b * 2 * width / px), (px, b * model.d_model / py)]  # RMSNorm, up/gate, down
    if g.moe:
        out.append((py, b * g.n_experts / px))  # router logits before top-k
    return out


@dataclass
class Cycles:
    """Per-token cycles on the critical path, split by cause (floats or arrays)."""

    compute: Any = 0.0
    memory: Any = 0.0
    network: Any = 0.0

    def add_pe(self, fmac: Any, operand_bytes: float, mesh: Mesh, acc_bytes: float, times: float = 1.0) -> None:
        t_c = fmac / mesh.lanes
        t_m = fmac * (operand_bytes + 2.0 * acc_bytes) / mesh.sram_bytes_per_cycle
        bound = np.greater_equal(t_c, t_m)
        self.compute = self.compute + times * np.where(bound, t_c, 0.0)
        self.memory = self.memory + times * np.where(bound, 0.0, t_m)

    @property
    def total(self) -> Any:
        return self.compute + self.memory + self.network


def layer_cycles(model: ModelSpec, g: LayerGroup, mesh: Mesh, px: int, py: int, b: Any, context: Any,
                 dtype: str, kv_dtype: str, k: dict) -> Cycles:
    """One decode layer of group ``g`` on a ``px x py`` region for ``b`` sequences: the layer's
    operators (``perf/ops.py``) as two PE-local GEMV passes, all active weights (one fused pass
    over the region's SRAM, 2 FLOP per multiply-accumulate) and the attention core over the
    cached keys (MLA absorbed), plus the mesh all-reduces of :func:`_collectives`."""
    span = attended(g, context)
    pes = px * py
    cyc = Cycles()
    layer = layer_totals(model, g)
    cyc.add_pe(b * layer.flop_per_token / 2.0 / pes, bytes_per_element(dtype), mesh, k["accumulator_bytes"])
    fmac_attn = b * span * layer.attention.decode_flop_per_pair / 2.0 / pes
    cyc.add_pe(fmac_attn, bytes_per_element(kv_dtype), mesh, k["accumulator_bytes"])
    for n, elements in _collectives(model, g, px, py, b, span):
        cyc.network = cyc.network + allreduce_cycles(mesh, n, elements, k)
    return cyc


def head_cycles(model: ModelSpec, mesh: Mesh, px: int, py: int, b: Any, dtype: str, k: dict) -> Cycles:
    """LM head GEMV, its all-reduce and the argmax reduce that samples the token."""
    cyc = Cycles()
    cyc.add_pe(b * lm_head_op(model).active_params / (px * py), max(bytes_per_element(dtype), 2.0), mesh,
               k["accumulator_bytes"])
    cyc.network = (allreduce_cycles(mesh, py, b * model.vocab_size / px, k)
                   + allreduce_cycles(mesh, px, b, k) + 0.0 * b)
    return cyc


def layers_per_wafer(model: ModelSpec, pp: int) -> int:
    return math.ceil(model.n_layers / pp)


def tilings(mesh: Mesh, layers: int, k: dict) -> list[tuple[int, int]]:
    """Region grids ``(nx, ny)`` that tile the program rectangle, at most one region per layer."""
    top = int(k["max_region_splits"])
    return [(nx, ny) for nx in range(1, top + 1) for ny in range(1, top + 1) if nx * ny <= layers]


def region_fits(model: ModelSpec, mesh: Mesh, pp: int, nx: int, ny: int, dtype: str, kv_dtype: str,
                kv_tokens: Any, k: dict) -> Any:
    """Whether each region's layers, their KV cache and the reserve fit every PE's SRAM."""
    lw = layers_per_wafer(model, pp)
    lpr = math.ceil(lw / (nx * ny))
    region_pes = (mesh.ux // nx) * (mesh.uy // ny)
    body = (model.weight_bytes(dtype) - model.embedding_params() * max(bytes_per_element(dtype), 2.0))
    per_layer = body / model.n_layers
    emb = model.embedding_params() * max(bytes_per_element(dtype), 2.0) / pp / mesh.pes
    kv_layer = kv_tokens * model.kv_elements_per_token_layer() * bytes_per_element(kv_dtype)
    per_pe = lpr * (per_layer + kv_layer) / region_pes + emb + k["pe_reserved_bytes"]
    return per_pe <= mesh.sram_per_pe_bytes


def _region_decode(model: ModelSpec, mesh: Mesh, pp: int, nx: int, ny: int, b: Any, context: Any,
                   dtype: str, kv_dtype: str, k: dict) -> tuple[Cycles, Any, int]:
    """(cycles of one token through all layers and the head, cycles of the slowest stage, stages)."""
    px, py = mesh.ux // nx, mesh.uy // ny
    total = Cycles()
    slowest: Any = 0.0
    for g in model.groups:
        cyc = layer_cycles(model, g, mesh, px, py, b, context, dtype, kv_dtype, k)
        for f in ("compute", "memory", "network"):
            setattr(total, f, getattr(total, f) + g.count * getattr(cyc, f))
        slowest = np.maximum(slowest, cyc.total)
    head = head_cycles(model, mesh, px, py, b, dtype, k)
    for f in ("compute", "memory", "network"):
        setattr(total, f, getattr(total, f) + getattr(head, f))
    lw = layers_per_wafer(model, pp)
    regions = min(nx * ny, lw)
    handoff = mesh.alpha_cycles * (px + py) / 2.0 + b * model.d_model / min(px, py)
    total.network = total.network + (regions * pp - pp) * handoff
    stage = math.ceil(lw / regions) * slowest + handoff
    return total, stage, regions * pp


class WaferFamily:
    """Step time on wafer-scale engines. Stateless apart from the family constants."""

    name = "wafer"
    pipelines_batch = True  # a step's batch is already cut into micro-batches over its regions and wafers

    def __init__(self) -> None:
        self.k = dict(family_constants("wafer"))
        # decode costs already computed, per deployment: (batch, context) -> column of a (5, n) table
        self._decode_memo: dict[tuple, tuple[dict[tuple[float, float], int], list[np.ndarray]]] = {}

    # ---- memory -------------------------------------------------------------------------
    def weights_per_chip_bytes(self, model: ModelSpec, par: Parallel, dtype: str) -> float:
        if getattr(par, "streaming", False):
            return 2.0 * _largest_layer_bytes(model, dtype)  # double-buffered layer in flight
        share = layers_per_wafer(model, par.pp) * par.pp / model.n_layers  # the fullest wafer
        return model.weight_bytes(dtype) / par.pp * share

    def kv_bytes_per_token_per_chip(self, model: ModelSpec, par: Parallel, kv_dtype: str,
                                    context: float | None = None) -> float:
        share = layers_per_wafer(model, par.pp) / model.n_layers
        return model.kv_bytes_per_token(kv_dtype, context) * share

    def usable_bytes_per_chip(self, chip: Chip) -> float:
        mesh = Mesh.of(chip)
        return mesh.pes * (mesh.sram_per_pe_bytes - self.k["pe_reserved_bytes"])

    def fit(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str,
            batch: float, context: float) -> MemoryFit:
        mesh = Mesh.of(chip)
        kv = batch * context * self.kv_bytes_per_token_per_chip(model, par, kv_dtype, context)
        reserve = mesh.pes * self.k["pe_reserved_bytes"]
        return MemoryFit(self.weights_per_chip_bytes(model, par, dtype), kv, reserve,
                         mesh.pes * mesh.sram_per_pe_bytes, chip.capacity_bytes)

    def max_batch(self, chip: Chip) -> float:
        return self.k["max_batch"]

    # ---- planning -----------------------------------------------------------------------
    def min_wafers(self, model: ModelSpec, chip: Chip, dtype: str) -> int:
        """Fewest wafers whose usable SRAM holds the weights (KV and reserve come on top)."""
        usable = self.usable_bytes_per_chip(chip)
        n = max(1, math.ceil(model.weight_bytes(dtype) / usable))
        while n < model.n_layers and self.weights_per_chip_bytes(model, Parallel(pp=n), dtype) > usable:
            n += 1
        return n

    def candidates(self, model: ModelSpec, chip: Chip, chips: int | None) -> list[Parallel]:
        """Resident layouts from the fewest wafers up; with ``chips`` given, that size resident
        and, as a fallback the planner takes only if residency does not fit, weight streaming."""
        if chips:
            if chips > model.n_layers:
                return []
            need = self.min_wafers(model, chip, model.native_dtype)
            note = (f"resident weights need >= {need} wafers at {model.native_dtype}" if need > chips
                    else "resident layout leaves too little SRAM for the KV cache")
            return [WaferLayout(pp=chips), WaferLayout(pp=chips, streaming=True, note=note)]
        top = min(chip.system.max_chips, model.n_layers)
        return [WaferLayout(pp=n) for n in range(1, top + 1)]

    # ---- time ---------------------------------------------------------------------------
    def step(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str, work: Work) -> StepCost:
        mesh = Mesh.of(chip)
        pre = np.asarray(work.prefill_tokens, dtype=float)
        dec = np.asarray(work.decode_batch, dtype=float)
        streaming = bool(getattr(par, "streaming", False))
        cost = self._decode_memoized(model, mesh, par.pp, dec, np.asarray(work.decode_context, dtype=float),
                                     dtype, kv_dtype, streaming).scaled(np.greater(dec, 0))
        if np.any(pre > 0):
            p = self._prefill(model, chip, mesh, par.pp, pre, np.asarray(work.prefill_context, dtype=float),
                              dtype, kv_dtype, streaming)
            cost = cost.plus(p.scaled(np.greater(pre, 0)))
        return cost

    def _decode_memoized(self, model: ModelSpec, mesh: Mesh, pp: int, b: Any, context: Any, dtype: str,
                         kv_dtype: str, streaming: bool) -> StepCost:
        """:meth:`_decode`, each (batch, context) element computed once per deployment.

        The decode cost is elementwise in (batch, context) and searches every region tiling, so
        it dominates a serving simulation, which asks for the same batches again and again with
        different prompt work. Misses are computed together in one :meth:`_decode` call; the
        numbers are those of :meth:`_decode` bit for bit (elementwise IEEE arithmetic does not
        depend on an element's neighbours)."""
        b, context = np.broadcast_arrays(b, context)
        shape = b.shape
        memo = self._decode_memo.get((model, mesh, pp, dtype, kv_dtype, streaming))
        if memo is None:
            if len(self._decode_memo) >= DECODE_MEMO_DEPLOYMENTS:
                self._decode_memo.clear()
            memo = self._decode_memo.setdefault((model, mesh, pp, dtype, kv_dtype, streaming), ({}, []))
        index, tables = memo
        keys = list(zip(b.ravel().tolist(), context.ravel().tolist()))
        cols = list(map(index.get, keys))
        if None in cols:
            missing = list(dict.fromkeys(key for key, col in zip(keys, cols) if col is None))
            mb, mc = np.array(missing, dtype=float).T
            cost = self._decode(model, mesh, pp, mb, mc, dtype, kv_dtype, streaming)
            table = np.array([np.broadcast_to(x, mb.shape) for x in (cost.compute_s, cost.memory_s, cost.network_s,
                                                                      cost.overhead_s, cost.interval_s)], float)
            base = sum(t.shape[1] for t in tables)
            tables.append(table)
            if len(tables) > 1:
                tables[:] = [np.concatenate(tables, axis=1)]
            index.update((key, base + j) for j, key in enumerate(missing))
            cols = list(map(index.__getitem__, keys))
        rows = tables[0][:, np.array(cols, dtype=np.intp)]
        return StepCost(*(row.reshape(shape) for row in rows))

    def _decode(self, model: ModelSpec, mesh: Mesh, pp: int, b: Any, context: Any, dtype: str, kv_dtype: str,
                streaming: bool) -> StepCost:
        if streaming:
            return self._streaming_decode(model, mesh, pp, b, context, dtype, kv_dtype)
        best: StepCost | None = None
        best_lat: Any = None
        for nx, ny in tilings(mesh, layers_per_wafer(model, pp), self.k):
            cost = self._pipelined(model, mesh, pp, nx, ny, b, context, dtype, kv_dtype)
            ok = region_fits(model, mesh, pp, nx, ny, dtype, kv_dtype, b * context, self.k)
            lat = np.where(ok, cost.latency_s, np.inf)
            if best is None:
                best, best_lat = cost, lat
                continue
            better = np.less(lat, best_lat)
            best = _choose(better, cost, best)
            best_lat = np.where(better, lat, best_lat)
        assert best is not None
        return best

    def _pipelined(self, model: ModelSpec, mesh: Mesh, pp: int, nx: int, ny: int, b: Any, context: Any,
                   dtype: str, kv_dtype: str) -> StepCost:
        """Decode step of ``b`` sequences, cut into micro-batches that fill the region pipeline."""
        stages = min(nx * ny, layers_per_wafer(model, pp)) * pp
        m = np.clip(b, 1.0, stages)
        bm = np.maximum(b, 1e-9) / m
        total, stage, _ = _region_decode(model, mesh, pp, nx, ny, bm, context, dtype, kv_dtype, self.k)
        f = mesh.clock_hz
        io = pp * (mesh.io_latency_s + bm * model.d_model * ACT_BYTES / mesh.io_bytes_per_s)  # incl. loop-back
        parts = [total.compute / f, total.memory / f, total.network / f + io, self.k["host_overhead_s"] + 0.0 * b]
        path = sum(parts)
        busy = m * (stage / f + io / pp)  # how long the step occupies the slowest stage
        period = np.maximum(path, busy)
        scale = period / path
        return StepCost(*(x * scale for x in parts), np.minimum(period, busy))

    def _streaming_decode(self, model: ModelSpec, mesh: Mesh, pp: int, b: Any, context: Any, dtype: str,
                          kv_dtype: str) -> StepCost:
        """Weights stream from MemoryX each step: one layer at a time on the whole wafer, the next
        layer's load overlapping this layer's work; exposed load time is memory."""
        total, _, _ = _region_decode(model, mesh, model.n_layers, 1, 1, b, context, dtype, kv_dtype, self.k)
        f = mesh.clock_hz
        work_s = total.total / f
        load_s = model.decode_read_bytes(dtype) / mesh.io_bytes_per_s
        io = pp * (mesh.io_latency_s + b * model.d_model * ACT_BYTES / mesh.io_bytes_per_s)
        exposed = np.maximum(load_s - work_s, 0.0)
        return StepCost(total.compute / f, exposed + total.memory / f, total.network / f + io,
                        self.k["host_overhead_s"] + 0.0 * b, work_s + exposed + io + self.k["host_overhead_s"])

    def _prefill(self, model: ModelSpec, chip: Chip, mesh: Mesh, pp: int, tokens: Any, context: Any, dtype: str,
                 kv_dtype: str, streaming: bool) -> StepCost:
        """GEMM-shaped prefill (MeshGEMM) over every wafer's PEs, chunks pipelined through the layers;
        one chunk's pass through the collectives and the wafer boundaries is the fill latency."""
        flop = (tokens * (body_flop_per_token(model) + attention_flop_per_token(model, context, decode=False))
                + lm_head_op(model).flop_per_token)
        fmac_rate = min(mesh.lanes, mesh.sram_bytes_per_cycle / (bytes_per_element(dtype) + 2 * self.k["accumulator_bytes"]))
        peak = mesh.pes * fmac_rate * 2.0 * mesh.clock_hz * self.k["prefill_efficiency"]
        compute = flop / (peak * (1 if streaming else pp))
        one = _region_decode(model, mesh, pp, 1, 1, 1.0, context, dtype, kv_dtype, self.k)[0]
        network = one.network / mesh.clock_hz + pp * mesh.io_latency_s
        network = network + (pp > 1) * tokens * model.d_model * ACT_BYTES / mesh.io_bytes_per_s
        memory = 0.0 * tokens
        if streaming:
            memory = np.maximum(model.decode_read_bytes(dtype) / mesh.io_bytes_per_s - compute, 0.0)
        lat = compute + memory + network
        return StepCost(compute, memory, network, 0.0 * tokens, lat)

    # ---- bounds -------------------------------------------------------------------------
    def physical_bound_tok_s(self, model: ModelSpec, chip: Chip, chips: int, dtype: str) -> tuple[float, str]:
        """Best single-stream tok/s at 100% of the wafers' aggregate SRAM bandwidth and dense peak,
        with zero mesh and I/O latency (no layout can beat it)."""
        sram = chip.tier("sram")
        bw = chips * (sram.bandwidth_bytes_per_s if sram else chip.bandwidth_bytes_per_s)
        read = model.decode_read_bytes(dtype)
        flop = forward_flop_per_token(model, 0.0)
        peak = chips * chip.peak_flop_per_s(dtype)
        by_bw, by_flop = bw / read, peak / flop
        if by_bw <= by_flop:
            return by_bw, (f"SRAM bandwidth: {chips} x {bw / chips / 1e15:.3g} PB/s over {read / 1e9:.3g} GB "
                           f"of weights read per token")
        return by_flop, f"dense compute: {chips} x {peak / chips / 1e15:.3g} PFLOP/s over {flop / 1e9:.3g} GFLOP per token"


def _choose(mask: Any, a: StepCost, b: StepCost) -> StepCost:
    return StepCost(*(np.where(mask, x, y) for x, y in zip(
        (a.compute_s, a.memory_s, a.network_s, a.overhead_s, a.interval_s),
        (b.compute_s, b.memory_s, b.network_s, b.overhead_s, b.interval_s))))


def _largest_layer_bytes(model: ModelSpec, dtype: str) -> float:
    return largest_layer_params(model) * bytes_per_element(dtype)
