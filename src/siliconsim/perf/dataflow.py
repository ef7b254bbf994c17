"""The dataflow execution family: SRAM-only multi-chip (Groq LPU) and tiered SRAM+HBM+DDR
(SambaNova SN40L). The chip's memory tiers pick the variant.

SRAM-only (Groq; ../reference/wafer-scale-modeling.md section 5):
- Chips from capacity: ``ceil((weights + KV) / (usable fraction x 220 MiB))``; each layer gets
  chips in proportion to its bytes (``n_l = max(1, n * W_l / W)``) and layers run as a pipeline.
- A layer takes ``max(bytes / (n_l * eta_m * SRAM bw), FLOP / (n_l * eta_c * peak))`` plus the
  deterministic C2C hops on its critical path (one hand-off, two tensor-parallel reductions of
  depth 1/2/3 inside a node/rack/system, two more for MoE dispatch), each ``hop latency +
  message / link bandwidth``. There is no contention term: the compiler schedules every link.
- MoE layers read the routed experts on the chips that hold them (expert parallel). The schedule
  is static, so routing becomes a fixed shape plus a runtime mask: each token has ``k`` expert
  slots that run one after another (gather the chosen expert, run it, scatter back), and a
  token's ``k`` experts cost ``k`` times one expert on the chips that hold it. With many
  tokens the touched experts are spread over the layer's chips and run side by side.

Tiered (SN40L, Prabhakar et al., arXiv 2405.07518): weights and KV in HBM, tensor parallel over
the sockets of a rack (two all-reduces per layer on the inter-RDU network, two more per MoE layer
for the expert dispatch and combine, as on Groq), pipeline across racks. The SN40L compiler fuses
a whole decoder into one kernel and turns the calls of consecutive layers into one pipelined
loop (arXiv 2405.07518 section 5; SambaNova's SC'24 talk reports over 75% of peak during token
generation on 8 and 16 sockets), so the HBM weight stream runs on while a layer's matmuls and
reductions wait for each other: a step is the longer of the weight stream and that dependent
chain, not their sum. With ``--chips`` too small for HBM, DDR holds the overflow and its
bandwidth becomes the bound.

Both pipeline concurrent micro-batches like the wafer family (batch-1 latency is the sum over
stages; aggregate throughput approaches ``stages x`` the per-user rate). Both take a layer's
weights, FLOP and KV traffic from the operators of ``perf/ops.py``: SRAM-only machines time each
layer's operators as one roofline on its chips (the compiler streams the whole layer), with the
routed experts read as above; the tiered variant times the whole model's forward FLOP against
its weight and KV reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.errors import CatalogError
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import LayerGroup, ModelSpec, bytes_per_element
from siliconsim.perf.collectives import allreduce_s, p2p_s
from siliconsim.perf.constants import family_constants
from siliconsim.perf.memory import MemoryFit
from siliconsim.perf.ops import attended, attention_flop_per_token, body_flop_per_token, forward_flop_per_token, \
    layer_totals, lm_head_op
from siliconsim.perf.step import Parallel, StepCost, Work


@dataclass(frozen=True)
class DataflowLayout(Parallel):
    """``tp`` chips share each layer (SN40L) or ``pp`` chips hold the pipeline (Groq);
    ``spill`` lets weights overflow HBM into DDR (only when the chip count was forced)."""

    spill: bool = False

    def describe(self) -> str:
        if self.tp == 1 and self.pp > 1:
            return f"{self.pp}-chip layer pipeline"
        s = super().describe()
        return s + ", DDR holds what HBM cannot" if self.spill else s


def _eff(chip: Chip, key: str) -> float:
    if key not in chip.efficiency:
        raise CatalogError(f"{chip.id}.toml: [efficiency] lacks {key} (needed by the dataflow family)")
    return chip.efficiency[key]


def _tiered(chip: Chip) -> bool:
    return chip.tier("hbm") is not None


def pipeline_cost(parts: list[Any], stage_s: Any, stages: int, b: Any) -> StepCost:
    """Cut ``b`` sequences into ``m = min(b, stages)`` micro-batches: a step takes
    ``max(path, m * slowest stage)``; ``parts`` (compute, memory, network, overhead) are the
    path of one micro-batch and are scaled up when the slowest stage binds. The next step can
    enter once the slowest stage is free (``interval_s = m * slowest stage``)."""
    m = np.clip(b, 1.0, stages)
    path = sum(parts)
    period = np.maximum(path, m * stage_s)
    scale = period / path
    return StepCost(*(x * scale for x in parts), np.minimum(period, m * stage_s))


def hop_depth(n: float, per_node: int) -> float:
    """Hops of a reduction among ``n`` chips of a Dragonfly: inside a fully connected node,
    a rack of nodes, or beyond."""
    if n <= 1:
        return 0.0
    if n <= per_node:
        return 1.0
    return 2.0 if n <= per_node * per_node else 3.0


class DataflowFamily:
    """Step time on dataflow machines. Stateless apart from the family constants."""

    name = "dataflow"
    pipelines_batch = True  # a step's batch is already cut into micro-batches over its stages (pipeline_cost)

    def __init__(self) -> None:
        self.k = dict(family_constants("dataflow"))

    # ---- memory -------------------------------------------------------------------------
    def weights_per_chip_bytes(self, model: ModelSpec, par: Parallel, dtype: str) -> float:
        return model.weight_bytes(dtype) / par.chips

    def kv_bytes_per_token_per_chip(self, model: ModelSpec, par: Parallel, kv_dtype: str,
                                    context: float | None = None) -> float:
        return model.kv_bytes_per_token(kv_dtype, context) / par.chips

    def usable_bytes_per_chip(self, chip: Chip, spill: bool = False) -> float:
        if not _tiered(chip):
            return chip.tier("sram").capacity_bytes * self.k["sram_usable_fraction"]  # type: ignore[union-attr]
        hbm = chip.tier("hbm").capacity_bytes * self.k["hbm_usable_fraction"]  # type: ignore[union-attr]
        ddr = chip.tier("ddr")
        return hbm + (ddr.capacity_bytes * self.k["hbm_usable_fraction"] if spill and ddr else 0.0)

    def fit(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str,
            batch: float, context: float) -> MemoryFit:
        spill = bool(getattr(par, "spill", False))
        kv = batch * context * self.kv_bytes_per_token_per_chip(model, par, kv_dtype, context)
        act = batch * model.d_model * 4 * self.k["activation_bytes"]
        cap = sum(t.capacity_bytes for t in chip.memory if t.kind != "sram" and (spill or t.kind == "hbm"))
        return MemoryFit(self.weights_per_chip_bytes(model, par, dtype), kv, act,
                         self.usable_bytes_per_chip(chip, spill), cap or chip.capacity_bytes)

    def max_batch(self, chip: Chip) -> float:
        return self.k["max_batch"]

    # ---- planning -----------------------------------------------------------------------
    def candidates(self, model: ModelSpec, chip: Chip, chips: int | None) -> list[Parallel]:
        if _tiered(chip):
            return self._tiered_candidates(model, chip, chips)
        if chips:
            return [DataflowLayout(tp=1, pp=chips)]
        # the candidate list does not know the dtype: start from the 4-bit lower bound
        n0 = max(1, math.ceil(model.weight_bytes("int4") / self.usable_bytes_per_chip(chip)))
        top = min(chip.system.max_chips, max(4 * n0, n0 + 64))
        return [DataflowLayout(tp=1, pp=n) for n in range(n0, top + 1)]

    def _tiered_candidates(self, model: ModelSpec, chip: Chip, chips: int | None) -> list[Parallel]:
        dom = chip.system.scale_up_domain
        if chips:  # DDR takes the overflow only when HBM cannot hold the model on these chips
            tp = math.gcd(chips, dom)
            return [DataflowLayout(tp=tp, pp=chips // tp), DataflowLayout(tp=tp, pp=chips // tp, spill=True)]
        out: list[Parallel] = []
        n = 1
        while n <= chip.system.max_chips:
            tp, pp = min(n, dom), max(1, n // dom)
            if pp <= model.n_layers and model.n_heads % tp == 0:
                out.append(DataflowLayout(tp=tp, pp=pp))
            n *= 2
        return out

    # ---- time ---------------------------------------------------------------------------
    def step(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str, work: Work) -> StepCost:
        pre = np.asarray(work.prefill_tokens, dtype=float)
        dec = np.asarray(work.decode_batch, dtype=float)
        run = self._tiered_step if _tiered(chip) else self._sram_step
        cost = run(model, chip, par, dtype, kv_dtype, dec, np.asarray(work.decode_context, dtype=float), 0.0 * dec)
        cost = cost.scaled(np.greater(dec, 0))
        if np.any(pre > 0):
            p = run(model, chip, par, dtype, kv_dtype, pre, np.asarray(work.prefill_context, dtype=float), pre)
            cost = cost.plus(p.scaled(np.greater(pre, 0)))
        return cost

    def _sram_step(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str,
                   tokens: Any, context: Any, prefill: Any) -> StepCost:
        """Groq: ``tokens`` sequences decode one token each (or, with ``prefill`` > 0, ``tokens``
        prompt tokens run through the same layer pipeline as one GEMM-shaped batch)."""
        n = par.chips
        bw = _eff(chip, "memory") * chip.tier("sram").bandwidth_bytes_per_s  # type: ignore[union-attr]
        peak = _eff(chip, "compute") * chip.peak_flop_per_s(dtype)
        total = model.weight_bytes(dtype)
        decoding = np.equal(prefill, 0)
        stages = min(n, model.n_layers)
        m = np.where(decoding, np.clip(tokens, 1.0, stages), 1.0)
        b = np.maximum(tokens, 1e-9) / m
        comp, mem, net, slowest = 0.0, 0.0, 0.0, 0.0
        for g in model.groups:
            c, r, h = self._layer(model, chip, g, n, total, b, context, dtype, kv_dtype, bw, peak, decoding)
            comp, mem, net = comp + g.count * c, mem + g.count * r, net + g.count * h
            slowest = np.maximum(slowest, c + r + h)
        head_op = lm_head_op(model)
        head = head_op.params * max(bytes_per_element(dtype), 2.0)
        n_head = max(1.0, n * head / total)
        sampled = np.where(decoding, b, 1.0)
        t_c = sampled * head_op.flop_per_token / (n_head * peak)
        t_m = head / (n_head * bw)
        comp, mem = comp + np.where(t_c >= t_m, t_c, 0.0), mem + np.where(t_c >= t_m, 0.0, t_m)
        parts = [comp, mem, net, _eff_or(chip, "step_overhead") + 0.0 * tokens]
        per_stage = np.maximum(slowest * model.n_layers / stages, slowest)
        return pipeline_cost(parts, per_stage, stages, m)

    def _layer(self, model: ModelSpec, chip: Chip, g: LayerGroup, n: int, total: float, b: Any, context: Any,
               dtype: str, kv_dtype: str, bw: float, peak: float, decoding: Any) -> tuple[Any, Any, Any]:
        """(compute, memory, network) seconds of one layer of ``g`` on its share of the chips: the
        layer's operators (``perf/ops.py``) as one roofline over its chips (the compiler streams
        the whole layer), the routed experts read as below, the attention core over the cache."""
        wb = bytes_per_element(dtype)
        layer = layer_totals(model, g)
        att, experts = layer.attention, layer.experts
        n_l = max(1.0, n * layer.params * wb / total)
        span = attended(g, context)
        kv = kv_read_tokens(b, span, decoding) * att.kv_elements * bytes_per_element(kv_dtype) / n_l
        flop = (b * layer.flop_per_token + b * span * att.decode_flop_per_pair) / n_l / peak
        dense = layer.dense_params * wb / n_l / bw
        moe = 0.0
        if experts is not None:
            per_expert = experts.per_expert_params * wb
            slots = g.experts_per_token * per_expert / max(1.0, n_l / g.n_experts)
            moe = np.maximum(slots, experts.experts_touched(b) * per_expert / n_l) / bw
        mem = dense + moe + kv / bw
        compute = np.where(flop >= mem, flop, 0.0)
        memory = np.where(flop >= mem, 0.0, mem)
        hops = 1.0 + self.k["tp_allreduces_per_layer"] * hop_depth(n_l, chip.system.chips_per_node)
        if g.moe and n_l > 1:
            hops += self.k["moe_extra_hops"]
        link = chip.microarch
        # each of the layer's n_l chips moves its own 1/n_l share of the activations over its own
        # link: a hand-off from one layer's chips to the next, or a phase of a reduce-scatter /
        # all-gather among directly connected chips (each sends n_l - 1 chunks of msg / n_l, one per link)
        msg = b * model.d_model * self.k["activation_bytes"] / n_l
        hop_s = link.get("c2c_hop_latency_s", chip.system.scale_up.latency_s) + msg / link.get(
            "c2c_link_bandwidth_bytes_per_s", chip.system.scale_up.bandwidth_bytes_per_s)
        return compute, memory, hops * hop_s

    def _tiered_step(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str,
                     tokens: Any, context: Any, prefill: Any) -> StepCost:
        """SN40L: per-socket weight reads from HBM (and DDR for the overflow) under TP, plus
        TP all-reduces and pipeline hand-offs; prompt tokens share the weight reads."""
        decoding = np.equal(prefill, 0)
        m = np.where(decoding, np.clip(tokens, 1.0, par.pp), 1.0)
        b = np.maximum(tokens, 1e-9) / m
        hbm, ddr = chip.tier("hbm"), chip.tier("ddr")
        eta = _eff(chip, "memory")
        per_socket = model.weight_bytes(dtype) / par.chips
        room = self.usable_bytes_per_chip(chip, False)
        f_ddr = max(0.0, per_socket - room) / per_socket if (getattr(par, "spill", False) and ddr) else 0.0
        read = model.decode_read_bytes(dtype) / par.tp  # each stage reads its share in turn
        kv = np.where(decoding, b * model.kv_bytes(context, kv_dtype),
                      b / PREFILL_QUERY_TILE * model.kv_bytes(context, kv_dtype) + b * model.kv_bytes(1.0, kv_dtype)) / par.tp
        t_hbm = (read * (1.0 - f_ddr) + kv) / (eta * hbm.bandwidth_bytes_per_s)  # type: ignore[union-attr]
        t_ddr = read * f_ddr / (eta * ddr.bandwidth_bytes_per_s) if f_ddr else 0.0  # type: ignore[union-attr]
        t_mem = np.maximum(t_hbm, t_ddr)
        sampled = np.where(decoding, b, np.minimum(b, 1.0))
        flop = (b * (body_flop_per_token(model) + attention_flop_per_token(model, context, decode=True))
                + sampled * lm_head_op(model).flop_per_token)
        t_c = flop / (par.tp * _eff(chip, "compute") * chip.peak_flop_per_s(dtype))
        msg = b * model.d_model * self.k["activation_bytes"]
        moe_layers = sum(g.count for g in model.groups if g.moe)
        reductions = model.n_layers * self.k["tp_allreduces_per_layer"] + moe_layers * self.k["moe_extra_hops"]
        net = reductions * allreduce_s(chip.system.scale_up, par.tp, msg) + 0.0 * tokens
        if par.pp > 1:
            link = chip.system.scale_out or chip.system.scale_up
            net = net + (par.pp - 1) * p2p_s(link, msg)
        # The fused decoder kernel streams the weights from HBM while the dependent chain of
        # matmuls and reductions runs (see tiered_overlap): the longer of the two is the step.
        chain = t_c + net
        bound = chain >= t_mem
        parts = [np.where(bound, t_c, 0.0), np.where(bound, 0.0, t_mem), np.where(bound, net, 0.0),
                 _eff_or(chip, "step_overhead") + 0.0 * tokens]
        return pipeline_cost(parts, sum(parts) / par.pp, par.pp, m)

    # ---- bounds -------------------------------------------------------------------------
    def physical_bound_tok_s(self, model: ModelSpec, chip: Chip, chips: int, dtype: str) -> tuple[float, str]:
        """Best single-stream tok/s at 100% of the weight-holding tier's bandwidth on every chip
        (DDR for what does not fit HBM) and of dense peak, with zero network latency."""
        read = model.decode_read_bytes(dtype)
        flop = forward_flop_per_token(model, 0.0)
        by_flop = chips * chip.peak_flop_per_s(dtype) / flop
        if _tiered(chip):
            hbm, ddr = chip.tier("hbm"), chip.tier("ddr")
            per = model.weight_bytes(dtype) / chips
            f_ddr = max(0.0, per - hbm.capacity_bytes) / per if ddr else 0.0  # type: ignore[union-attr]
            t = max(read * (1 - f_ddr) / (chips * hbm.bandwidth_bytes_per_s),  # type: ignore[union-attr]
                    read * f_ddr / (chips * ddr.bandwidth_bytes_per_s) if f_ddr else 0.0)  # type: ignore[union-attr]
            tier = "DDR" if f_ddr and read * f_ddr / ddr.bandwidth_bytes_per_s > read * (1 - f_ddr) / hbm.bandwidth_bytes_per_s else "HBM"  # type: ignore[union-attr]
            bw = hbm.bandwidth_bytes_per_s if tier == "HBM" else ddr.bandwidth_bytes_per_s  # type: ignore[union-attr]
        else:
            bw = chip.tier("sram").bandwidth_bytes_per_s  # type: ignore[union-attr]
            t, tier = read / (chips * bw), "SRAM"
        by_bw = 1.0 / t
        if by_bw <= by_flop:
            return by_bw, (f"{tier} bandwidth: {chips} x {bw / 1e12:.3g} TB/s = {chips * bw / 1e12:.3g} TB/s over "
                           f"{read / 1e9:.3g} GB of weights read per token")
        return by_flop, (f"dense compute: {chips} x {chip.peak_flop_per_s(dtype) / 1e12:.3g} TFLOP/s over "
                         f"{flop / 1e9:.3g} GFLOP per token")


# Prefill attention (FlashAttention-style) streams the earlier KV once per tile of queries.
PREFILL_QUERY_TILE = 128.0


def kv_read_tokens(tokens: Any, span: Any, decoding: Any) -> Any:
    """KV positions read per layer: each decoding sequence reads its whole span; prompt tokens
    read the span once per query tile and write their own KV."""
    return np.where(decoding, tokens * span, tokens / PREFILL_QUERY_TILE * span + tokens)


def _eff_or(chip: Chip, key: str) -> float:
    return float(chip.efficiency.get(key, 0.0))
