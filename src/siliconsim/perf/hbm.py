"""The hbm execution family: GPUs, TPUs and Gaudi, with weights and KV cache in HBM.

One step of one replica is a sum over decoder layers of per-operator rooflines
(Williams, Waterman & Patterson, CACM 2009): each operator takes
``max(FLOP / (eta_c * peak), bytes / (eta_m * bandwidth))`` on one chip, with achievable
fractions ``eta`` kept per chip in the catalog. Tensor parallelism (Shoeybi et al., Megatron-LM
2019) splits every layer over ``tp`` chips and adds two all-reduces per layer; pipeline
parallelism splits layers over ``pp`` stages and adds a hand-off per stage boundary (a single
request sees the sum of the stages). MoE layers read only the experts the step's tokens touch:
with ``T`` tokens routed uniformly to ``k`` of ``E`` experts, ``E * (1 - (1 - k/E)**T)`` distinct
experts are expected; the experts are an operator of their own (grouped GEMM) at a per-chip
fraction ``moe`` of the dense kernels' efficiency, fitted by ``siliconsim calibrate``. Per-kernel
launch gaps and a per-step host overhead are added on top.
"""

from __future__ import annotations

import functools

from typing import Any

import numpy as np

from siliconsim.errors import CatalogError
from siliconsim.hardware.spec import Chip, Link
from siliconsim.models.spec import LayerGroup, ModelSpec, bytes_per_element
from siliconsim.perf.collectives import allreduce_s, alltoall_s, p2p_s
from siliconsim.perf.constants import family_constants
from siliconsim.perf.step import Parallel, StepCost, Work
from siliconsim.perf.memory import MemoryFit

EFFICIENCY_KEYS = ("compute", "memory", "kernel_overhead", "step_overhead", "moe")


def chip_efficiency(chip: Chip) -> dict[str, float]:
    """The chip's efficiency parameters; each hbm chip must carry all of them."""
    missing = [k for k in EFFICIENCY_KEYS if k not in chip.efficiency]
    if missing:
        raise CatalogError(f"{chip.id}.toml: [efficiency] lacks {', '.join(missing)} (needed by the hbm family)")
    return {k: chip.efficiency[k] for k in EFFICIENCY_KEYS}


def kv_replication(model: ModelSpec, tp: int) -> float:
    """How many copies of each KV head the TP group keeps in total, relative to one.

    GQA heads are split over TP ranks until there are fewer heads than ranks, then replicated;
    MLA's latent KV is shared by all heads, so every rank keeps a full copy.
    """
    if model.is_mla:
        return float(tp)
    return max(1.0, tp / model.n_kv_heads)


def link_between(chip: Chip, chips: int) -> Link:
    """The link a group of ``chips`` communicates over: scale-up if it fits in one domain."""
    sysm = chip.system
    if chips <= sysm.scale_up_domain or sysm.scale_out is None:
        return sysm.scale_up
    return sysm.scale_out


class _Roofline:
    """Accumulates per-operator roofline times into a compute/memory split."""

    def __init__(self) -> None:
        self.compute_s: Any = 0.0
        self.memory_s: Any = 0.0

    def add(self, t_compute: Any, t_memory: Any, times: float = 1.0) -> None:
        if isinstance(t_compute, float) and isinstance(t_memory, float):  # scalars (np.float64 too): no np.where
            if t_compute >= t_memory:
                self.compute_s = self.compute_s + times * t_compute
            else:
                self.memory_s = self.memory_s + times * t_memory
            return
        bound = np.greater_equal(t_compute, t_memory)
        self.compute_s = self.compute_s + times * np.where(bound, t_compute, 0.0)
        self.memory_s = self.memory_s + times * np.where(bound, 0.0, t_memory)


class HbmFamily:
    """Step time on HBM accelerators. Stateless apart from the family constants."""

    name = "hbm"

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
        per_token = (4 * model.d_model + (model.q_dim + 2 * model.kv_dim + 3 * widest) / par.tp)
        return step_tokens * per_token * self.k["activation_bytes"]

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
        roof = _Roofline()
        network: Any = 0.0
        kernels = 0.0
        for g in model.groups:
            self._layer(roof, model, g, par, dtype, kv_dtype, work, tokens, peak_c, peak_attn, bw, eff["moe"])
            network = network + g.count * self._layer_network(model, g, chip, par, tokens)
            kernels += g.count * (self.k["kernels_per_layer"] + (self.k["kernels_per_moe_layer"] if g.moe else 0.0)
                                  + (self.k["kernels_per_mla_layer"] if model.is_mla else 0.0))
        self._lm_head(roof, model, par, dtype, work, peak_c, bw)
        if par.pp > 1:
            link = link_between(chip, par.chips)
            network = network + (par.pp - 1) * p2p_s(link, tokens * model.d_model * self.k["activation_bytes"])
        overhead = kernels * eff["kernel_overhead"] + eff["step_overhead"] + 0.0 * tokens
        network = network + 0.0 * tokens
        return StepCost(roof.compute_s, roof.memory_s, network, overhead,
                        roof.compute_s + roof.memory_s + network + overhead)

    def _layer_network(self, model: ModelSpec, g: LayerGroup, chip: Chip, par: Parallel, tokens: Any) -> Any:
        """Collectives of one layer: two TP all-reduces, or an all-to-all dispatch and combine
        of each token's hidden state to its k experts under data-parallel attention."""
        act = self.k["activation_bytes"]
        if par.attn_dp:
            if not g.moe:
                return 0.0 * tokens
            msg = tokens / par.tp * g.experts_per_token * model.d_model * act
            return 2.0 * alltoall_s(chip.system.scale_up, par.ep, msg)
        return 2.0 * allreduce_s(chip.system.scale_up, par.tp, tokens * model.d_model * act)

    def _layer(self, roof: _Roofline, model: ModelSpec, g: LayerGroup, par: Parallel, dtype: str, kv_dtype: str,
               work: Work, tokens: Any, peak_c: float, peak_attn: float, bw: float, moe_eff: float) -> None:
        """Matmuls of one layer on one chip: dense part (attention projections, dense or shared
        MLP) split by TP, or replicated with its tokens split under DP attention; experts split
        over the group either way, reading only the experts the step's tokens touch. The
        experts are their own roofline operator (grouped GEMM), run at ``moe_eff`` times the
        chip's dense compute and memory efficiencies."""
        tp = par.tp
        total, active, experts = model.layer_params(g)
        dense_flop_params = active - (g.experts_per_token * experts / g.n_experts if g.moe else 0.0)
        dense_share = 1.0 if par.attn_dp else 1.0 / tp  # fraction of dense weights each chip reads
        w_bytes = (total - experts) * bytes_per_element(dtype) * dense_share
        flop = 2.0 * tokens * dense_flop_params / tp
        widest = g.d_ff * max(1, g.experts_per_token) + g.n_shared_experts * g.shared_d_ff
        act = tokens * self.k["activation_bytes"] * (4 * model.d_model + (model.q_dim + 2 * model.kv_dim + 3 * widest) / tp)
        roof.add(flop / peak_c, (w_bytes + act) / bw, g.count)
        if g.moe:
            per_expert = experts / g.n_experts
            touched = g.n_experts * (1.0 - (1.0 - g.experts_per_token / g.n_experts) ** tokens)
            imbalance = self.k["expert_imbalance"] if tp > 1 else 1.0
            e_bytes = touched * per_expert * model.expert_bytes_per_element(dtype) * imbalance / tp
            e_flop = 2.0 * tokens * g.experts_per_token * per_expert * imbalance / tp
            roof.add(e_flop / (moe_eff * peak_c), e_bytes / (moe_eff * bw), g.count)
        self._attention(roof, model, g, par, kv_dtype, work, tokens, peak_attn, bw)

    def _attention(self, roof: _Roofline, model: ModelSpec, g: LayerGroup, par: Parallel, kv_dtype: str, work: Work,
                   tokens: Any, peak_attn: float, bw: float) -> None:
        tp = par.tp
        rep = 1.0 if par.attn_dp else kv_replication(model, tp)
        kv_tok = model.kv_elements_per_token_layer() * bytes_per_element(kv_dtype) * rep / tp
        span_p = _num(work.prefill_context)
        span_d = _num(work.decode_context)
        if g.window:
            span_p, span_d = np.minimum(span_p, g.window), np.minimum(span_d, g.window)
        pre = _num(work.prefill_tokens)
        dec = _num(work.decode_batch)
        flop = (pre * span_p * model.attn_flop_per_query_key(absorbed=False)
                + dec * span_d * model.attn_flop_per_query_key(absorbed=True)) / tp
        # decode reads each sequence's KV once; prefill re-reads it once per 128-query tile
        kv_bytes = kv_tok * (dec * span_d + pre / 128.0 * span_p + tokens)
        roof.add(flop / peak_attn, kv_bytes / bw, g.count)

    def _lm_head(self, roof: _Roofline, model: ModelSpec, par: Parallel, dtype: str, work: Work,
                 peak_c: float, bw: float) -> None:
        pre = _num(work.prefill_tokens)
        sampled = _num(work.decode_batch) + (min(pre, 1.0) if isinstance(pre, float) else np.minimum(pre, 1.0))
        head_bytes = model.vocab_size * model.d_model * max(bytes_per_element(dtype), 2.0) / (1 if par.attn_dp else par.tp)
        roof.add(2.0 * sampled * model.d_model * model.vocab_size / par.tp / peak_c, head_bytes / bw)


def _num(x: Any) -> Any:
    """A Python float for a scalar (arithmetic on it is ~20x faster than on a 0-d array, with the
    same IEEE results), else a float array."""
    return float(x) if isinstance(x, (int, float)) else np.asarray(x, dtype=float)


def _powers_of_two(limit: int) -> list[int]:
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
    sizes = [chips] if chips else sorted(set(_powers_of_two(max_chips)) | {domain})
    out = []
    for n in sizes:
        for tp in _powers_of_two(min(n, domain)):
            pp = n // tp
            if tp * pp != n or pp > n_layers or n_heads % tp:
                continue
            out.append(Parallel(tp=tp, pp=pp, ep=tp if moe else 1))
            if moe and tp > 1:
                out.append(Parallel(tp=tp, pp=pp, ep=tp, attn_dp=True))
    return tuple(out)

