"""The hbm execution family: GPUs, TPUs and Gaudi, with weights and KV cache in HBM.

One step of one replica is a sum over decoder layers of per-operator rooflines
(Williams, Waterman & Patterson, CACM 2009): each operator of ``perf/ops.py`` (or each fused
group of them, below) takes ``max(FLOP / (eta_c * peak), bytes / (eta_m * bandwidth))`` on one
chip, with achievable fractions ``eta`` kept per chip in the catalog. Tensor parallelism
(Shoeybi et al., Megatron-LM 2019) splits every layer over ``tp`` chips and adds two all-reduces
per layer (``ops.layer_collectives``); pipeline
parallelism splits layers over ``pp`` stages and adds a hand-off per stage boundary (a single
request sees the sum of the stages). MoE layers read only the experts the step's tokens touch:
with ``T`` tokens routed uniformly to ``k`` of ``E`` experts, ``E * (1 - (1 - k/E)**T)`` distinct
experts are expected, and with experts spread over ``ep`` ranks the step waits for the rank that
reads most of them (``Op.busiest_rank_experts``); the experts are an operator of their own
(grouped GEMM) whose compute runs at a per-chip fraction ``moe`` of the dense kernels'
efficiency and whose weights stream at a fraction ``moe_memory`` (1 unless fitted) of the dense
memory efficiency, both fitted by ``siliconsim calibrate``. Per-kernel
launch gaps and a per-step host overhead are added on top.

Fusion rules (what inference engines run as one roofline term, per layer):

- *dense*: every operator but the routed experts (projections, dense or shared MLP, router,
  norms, gpt-oss's sink logits) is one term: its weights are read once per step, all split by
  TP (engines replicate the router and the norms, under 2% of the group), or replicated under
  DP attention; its FLOP are ``2 x`` those weights per token; and the step's activations move
  in fused kernels: the residual stream through the norms, replicated, plus the QKV output and
  three MLP widths, split by TP (:func:`fused_activation_elements`).
  That is fewer bytes than the unfused training traffic of ``Op.act_elements``, which also
  counts dropout masks and un-fused residual adds.
- *experts*: the routed experts are their own term (grouped GEMM, below).
- *attention*: the core's FLOP per (query, key) pair and its KV-cache reads.
- *LM head*: the sampled tokens only.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from siliconsim.errors import CatalogError
from siliconsim.hardware.spec import Chip, Link
from siliconsim.models.spec import LayerGroup, ModelSpec, bytes_per_element
from siliconsim.perf.collectives import allreduce_s, alltoall_s, p2p_s
from siliconsim.perf.constants import family_constants
from siliconsim.perf.ops import Op, attended, layer_totals, lm_head_op, merged_collectives, mlp_width
from siliconsim.perf.step import Parallel, StepCost, Work
from siliconsim.perf.memory import MemoryFit

EFFICIENCY_KEYS = ("compute", "memory", "kernel_overhead", "step_overhead", "moe")
# Optional keys and their value when a chip file leaves them out: expert weights stream at the
# dense kernels' memory efficiency (``moe_memory`` = 1), attention reads the KV cache at it
# (``kv_memory`` = 1), and the layer collectives move data at the scale-up link's own efficiency
# (``network`` = 1, a multiplier on the link catalog's), unless a chip's fit says otherwise.
OPTIONAL_EFFICIENCY = {"moe_memory": 1.0, "kv_memory": 1.0, "network": 1.0, "overlap": 1.0}


def chip_efficiency(chip: Chip) -> dict[str, float]:
    """The chip's efficiency parameters; each hbm chip must carry all of ``EFFICIENCY_KEYS``."""
    missing = [k for k in EFFICIENCY_KEYS if k not in chip.efficiency]
    if missing:
        raise CatalogError(f"{chip.id}.toml: [efficiency] lacks {', '.join(missing)} (needed by the hbm family)")
    out = {k: chip.efficiency[k] for k in EFFICIENCY_KEYS}
    out.update({k: chip.efficiency.get(k, v) for k, v in OPTIONAL_EFFICIENCY.items()})
    return out


def kv_replication(model: ModelSpec, tp: int) -> float:
    """How many copies of each KV head the TP group keeps in total, relative to one.

    GQA heads are split over TP ranks until there are fewer heads than ranks, then replicated;
    MLA's latent KV is shared by all heads, so every rank keeps a full copy.
    """
    if model.is_mla:
        return float(tp)
    return max(1.0, tp / model.n_kv_heads)


def fused_activation_elements(model: ModelSpec, mlp_width: float, tp: int) -> float:
    """Activation elements per token one chip moves through a fused layer (the dense fusion rule
    above): the residual stream into and out of the two norms (``4 d``, the ``norms`` operator's
    ``act_elements``), replicated, plus the QKV output and ``3 x mlp_width`` (gate and up
    outputs, down input), split over ``tp``."""
    return 4 * model.d_model + (model.q_dim + 2 * model.kv_dim + 3 * mlp_width) / tp


def link_between(chip: Chip, chips: int) -> Link:
    """The link a group of ``chips`` communicates over: scale-up if it fits in one domain."""
    sysm = chip.system
    if chips <= sysm.scale_up_domain or sysm.scale_out is None:
        return sysm.scale_up
    return sysm.scale_out


class _Roofline:
    """Accumulates per-operator roofline times into a compute/memory split. An operator takes the
    longer of its compute and memory times plus ``exposed`` (1 - the chip's ``overlap``) of the
    shorter: 0 is the ideal roofline, where streaming hides entirely under the math or the reverse."""

    def __init__(self, exposed: float = 0.0) -> None:
        self.compute_s: Any = 0.0
        self.memory_s: Any = 0.0
        self.exposed = exposed

    def add(self, t_compute: Any, t_memory: Any, times: float = 1.0) -> None:
        k = self.exposed
        if isinstance(t_compute, float) and isinstance(t_memory, float):  # scalars (np.float64 too): no np.where
            if t_compute >= t_memory:
                self.compute_s = self.compute_s + times * t_compute
                if k:
                    self.memory_s = self.memory_s + times * k * t_memory
            else:
                self.memory_s = self.memory_s + times * t_memory
                if k:
                    self.compute_s = self.compute_s + times * k * t_compute
            return
        bound = np.greater_equal(t_compute, t_memory)
        self.compute_s = self.compute_s + times * np.where(bound, t_compute, k * t_compute)
        self.memory_s = self.memory_s + times * np.where(bound, k * t_memory, t_memory)


class HbmFamily:
    """Step time on HBM accelerators. Stateless apart from the family constants."""

    name = "hbm"
    pipelines_batch = False  # a step is one micro-batch's traversal of the pipeline stages

    def __init__(self) -> None:
        self.k = family_constants("hbm")

    # ---- memory -------------------------------------------------------------------------
    def weights_per_chip_bytes(self, model: ModelSpec, par: Parallel, dtype: str) -> float:
        total = model.weight_bytes(dtype)
        if not par.attn_dp:
            return total / par.chips
        experts = model.expert_params * model.expert_bytes_per_element(dtype)
        return ((total - experts) + experts / par.ep) / par.pp

    def kv_bytes_per_token_per_chip(self, model: ModelSpec, par: Parallel, kv_dtype: str,
                                    context: float | None = None) -> float:
        rep = 1.0 if par.attn_dp else kv_replication(model, par.tp)
        return model.kv_bytes_per_token(kv_dtype, context) * rep / par.chips

    def usable_bytes_per_chip(self, chip: Chip) -> float:
        return chip.capacity_bytes * self.k["usable_memory_fraction"]

    def activation_bytes_per_chip(self, model: ModelSpec, par: Parallel, step_tokens: float) -> float:
        """Transient activations of the widest layer for ``step_tokens`` tokens."""
        widest = max(g.d_ff * max(1, g.experts_per_token) for g in model.groups)
        return step_tokens * fused_activation_elements(model, widest, par.tp) * self.k["activation_bytes"]

    # ---- planning -----------------------------------------------------------------------
    def candidates(self, model: ModelSpec, chip: Chip, chips: int | None) -> list[Parallel]:
        return hbm_candidates(model, chip, chips)

    def fit(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str,
            batch: float, context: float) -> MemoryFit:
        kv = batch * context * self.kv_bytes_per_token_per_chip(model, par, kv_dtype, context)
        # engines reserve activations for their largest step (max_num_tokens), whatever the batch
        act = self.activation_bytes_per_chip(model, par, self.k["max_step_tokens"])
        return MemoryFit(self.weights_per_chip_bytes(model, par, dtype), kv, act,
                         self.usable_bytes_per_chip(chip), chip.capacity_bytes)

    def max_batch(self, chip: Chip) -> float:
        return self.k["max_batch"]

    # ---- time ---------------------------------------------------------------------------
    def step(self, model: ModelSpec, chip: Chip, par: Parallel, dtype: str, kv_dtype: str, work: Work) -> StepCost:
        eff = chip_efficiency(chip)
        peak_c = eff["compute"] * chip.peak_flop_per_s(dtype)
        peak_attn = self.k["attention_efficiency"] * chip.peak_flop_per_s("bf16")
        bw = eff["memory"] * chip.bandwidth_bytes_per_s
        pre = _num(work.prefill_tokens)
        dec = _num(work.decode_batch)
        tokens = pre + dec
        roof = _Roofline(1.0 - eff["overlap"])
        network: Any = 0.0
        kernels = 0.0
        for g in model.groups:
            self._layer(roof, model, g, par, dtype, kv_dtype, work, tokens, peak_c, peak_attn, bw, eff["moe"],
                        eff["moe_memory"], eff["kv_memory"])
            network = network + g.count * self._layer_network(model, g, chip, par, tokens, eff["network"])
            kernels += g.count * (self.k["kernels_per_layer"] + (self.k["kernels_per_moe_layer"] if g.moe else 0.0)
                                  + (self.k["kernels_per_mla_layer"] if model.is_mla else 0.0))
        self._lm_head(roof, model, par, dtype, work, peak_c, bw)
        if par.pp > 1:
            link = _at(link_between(chip, par.chips), eff["network"])
            network = network + (par.pp - 1) * p2p_s(link, tokens * model.d_model * self.k["activation_bytes"])
        overhead = kernels * eff["kernel_overhead"] + eff["step_overhead"] + 0.0 * tokens
        network = network + 0.0 * tokens
        return StepCost(roof.compute_s, roof.memory_s, network, overhead,
                        roof.compute_s + roof.memory_s + network + overhead)

    def _layer_network(self, model: ModelSpec, g: LayerGroup, chip: Chip, par: Parallel, tokens: Any,
                       network_eff: float = 1.0) -> Any:
        """Collectives of one layer (``ops.merged_collectives``) on the scale-up link, its bandwidth
        efficiency times ``network_eff``: two TP all-reduces, or, under data-parallel attention,
        the expert-parallel all-to-all dispatch and combine of each rank's ``tokens / tp`` tokens."""
        act = self.k["activation_bytes"]
        link = _at(chip.system.scale_up, network_eff)
        total = 0.0 * tokens
        if par.attn_dp:
            for c, n in merged_collectives(model, g, ep=par.ep):
                total = total + n * alltoall_s(link, par.ep, tokens / par.tp * c.elements_per_token * act)
            return total
        for c, n in merged_collectives(model, g, tp=par.tp):
            total = total + n * allreduce_s(link, par.tp, tokens * c.elements_per_token * act)
        return total

    def _layer(self, roof: _Roofline, model: ModelSpec, g: LayerGroup, par: Parallel, dtype: str, kv_dtype: str,
               work: Work, tokens: Any, peak_c: float, peak_attn: float, bw: float, moe_eff: float,
               moe_mem: float, kv_mem: float = 1.0) -> None:
        """One layer on one chip: the dense group split by TP, or replicated with its tokens
        split under DP attention; the experts split over the group either way, reading only
        the experts the step's tokens touch on the busiest expert-parallel rank, as their own roofline
        operator (grouped GEMM) at ``moe_eff`` times the chip's dense compute efficiency (small,
        uneven per-expert GEMMs waste tensor-core tiles) and ``moe_mem`` times its memory
        efficiency (weight streaming; 1 = like dense weights); then attention, whose KV-cache reads
        stream at ``kv_mem`` times the memory efficiency (paged-attention kernels, not GEMMs)."""
        tp = par.tp
        layer = layer_totals(model, g)
        dense_share = 1.0 if par.attn_dp else 1.0 / tp  # fraction of dense weights each chip reads
        w_bytes = layer.dense_params * bytes_per_element(dtype) * dense_share
        flop = tokens * layer.dense_flop_per_token / tp
        act = tokens * self.k["activation_bytes"] * fused_activation_elements(model, mlp_width(g), tp)
        roof.add(flop / peak_c, (w_bytes + act) / bw, g.count)
        experts = layer.experts
        if experts is not None:
            ep = max(1, min(par.ep, tp))
            # each of the ep ranks holds E / ep experts, each split over tp / ep chips; the step
            # waits for the rank whose experts the step's tokens touch most (ops.busiest_rank_experts)
            e_bytes = (experts.busiest_rank_experts(tokens, ep) * experts.per_expert_params
                       * model.expert_bytes_per_element(dtype) * ep / tp)
            imbalance = self.k["expert_imbalance"] if ep > 1 else 1.0  # tokens on the busiest rank
            e_flop = tokens * experts.flop_per_token * imbalance / tp
            roof.add(e_flop / (moe_eff * peak_c), e_bytes / (moe_mem * bw), g.count)
        self._attention(roof, model, g, layer.attention, par, kv_dtype, work, tokens, peak_attn, bw * kv_mem)

    def _attention(self, roof: _Roofline, model: ModelSpec, g: LayerGroup, att: Op, par: Parallel, kv_dtype: str,
                   work: Work, tokens: Any, peak_attn: float, bw: float) -> None:
        """The attention core ``att`` of a layer of ``g``: FLOP per (query, key) pair and KV reads."""
        tp = par.tp
        rep = 1.0 if par.attn_dp else kv_replication(model, tp)
        kv_tok = att.kv_elements * bytes_per_element(kv_dtype) * rep / tp
        span_p = attended(g, _num(work.prefill_context))
        span_d = attended(g, _num(work.decode_context))
        pre = _num(work.prefill_tokens)
        dec = _num(work.decode_batch)
        flop = (pre * span_p * att.flop_per_pair + dec * span_d * att.decode_flop_per_pair) / tp
        # decode reads each sequence's KV once; prefill re-reads it once per 128-query tile
        kv_bytes = kv_tok * (dec * span_d + pre / 128.0 * span_p + tokens)
        roof.add(flop / peak_attn, kv_bytes / bw, g.count)

    def _lm_head(self, roof: _Roofline, model: ModelSpec, par: Parallel, dtype: str, work: Work,
                 peak_c: float, bw: float) -> None:
        head = lm_head_op(model)
        pre = _num(work.prefill_tokens)
        sampled = _num(work.decode_batch) + (min(pre, 1.0) if isinstance(pre, float) else np.minimum(pre, 1.0))
        head_bytes = head.params * max(bytes_per_element(dtype), 2.0) / (1 if par.attn_dp else par.tp)
        roof.add(sampled * head.flop_per_token / par.tp / peak_c, head_bytes / bw)


@functools.lru_cache(maxsize=256)
def _at(link: Link, network_eff: float) -> Link:
    """``link`` with its bandwidth efficiency scaled by the chip's fitted ``network`` factor, at most 1."""
    return link if network_eff == 1.0 else replace(link, efficiency=min(1.0, link.efficiency * network_eff))


def _num(x: Any) -> Any:
    """A Python float for a scalar (arithmetic on it is ~20x faster than on a 0-d array, with the
    same IEEE results), else a float array."""
    return float(x) if isinstance(x, (int, float)) else np.asarray(x, dtype=float)


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit`` (parallel-degree candidates)."""
    out, n = [], 1
    while n <= limit:
        out.append(n)
        n *= 2
    return out


def hbm_candidates(model: ModelSpec, chip: Chip, chips: int | None) -> list[Parallel]:
    """Layouts to try, fewest chips first: TP inside the scale-up domain, PP across it."""
    return list(_candidates(model.n_layers, model.n_heads, model.is_moe, chip.system.scale_up_domain,
                            chip.system.max_chips, chips))


@functools.lru_cache(maxsize=4096)
def _candidates(n_layers: int, n_heads: int, moe: bool, domain: int, max_chips: int,
                chips: int | None) -> tuple[Parallel, ...]:
    """``hbm_candidates`` from exactly the numbers it depends on (cached: a scalar estimate calls it)."""
    sizes = [chips] if chips else sorted(set(powers_of_two(max_chips)) | {domain})
    out = []
    for n in sizes:
        for tp in powers_of_two(min(n, domain)):
            pp = n // tp
            if tp * pp != n or pp > n_layers or n_heads % tp:
                continue
            out.append(Parallel(tp=tp, pp=pp, ep=tp if moe else 1))
            if moe and tp > 1:
                out.append(Parallel(tp=tp, pp=pp, ep=tp, attn_dp=True))
    return tuple(out)

