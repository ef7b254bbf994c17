"""A transformer decoder layer as ONE list of operators, with FLOPs and bytes per token.

Execution families and the training model time these operators; none of them re-derives the
layer. Every count is for one layer of one :class:`~siliconsim.models.spec.LayerGroup`, for the
whole (unsharded) layer and one token; callers divide by their parallel split.

Operator kinds:
- ``matmul``: a weight GEMM. Forward FLOP = 2 x params per token (Kaplan et al. 2020, eq. 2.2);
  backward = 2 x forward (gradients for activations and for weights; Narayanan et al. SC'21
  §5.1). Reads its weights once per step and ``act_elements`` activations per token.
- ``experts``: the routed experts of an MoE layer (grouped GEMM). ``params`` counts all experts;
  a token runs ``experts_per_token`` of them.
- ``attention``: the score/context core (QK^T, softmax, PV). FLOP per (query, key) pair
  (``flop_per_pair``; ``decode_flop_per_pair`` for decode, where MLA attends in its latent space
  with W_UK/W_UV absorbed, DeepSeek-V2 §2.1.3); the KV cache adds ``kv_elements`` per token.
  ``params`` holds gpt-oss's learned sink logits (one per head).
- ``elementwise``: norms, activations, residual adds, rotary embedding, router softmax:
  memory-bound work counted in activation elements read plus written per token.

The elementwise element counts follow the tensors Korthikanti et al. ("Reducing Activation
Recomputation in Large Transformer Models", 2022, §4.1) list for a layer, with Megatron's
fusions: two LayerNorms (read and write ``h``), two fused bias-dropout-residual-adds (read the
branch and the residual, write ``h`` and a 1-byte mask, counted as half an element) and the MLP
activation (read the up projection, write its output).

``params`` over a layer's operators is ``ModelSpec.layer_params(g)[0]``, biases included: the
``norms`` operator carries every norm weight of the layer (its ``d``-wide norms with their biases
for LayerNorm, Qwen3's per-head q/k norms, MLA's latent q/kv norms), though its ``act_elements``
count two ``d``-wide norms whatever the model (the training activation model of Korthikanti et
al.). The one remainder: shared experts with biases are one MLP of the summed width here, so
``n_shared - 1`` output biases of ``d`` are not counted (no catalog model has both). With the
input embedding table, ``head_ops`` give the rest of ``ModelSpec.total_params``.

Storage (total weight bytes, KV-cache bytes, and the weight bytes one batch-1 decode token
reads) stays on :class:`ModelSpec`; what a step computes and moves per layer comes from these
operators. The execution families (``hbm``, ``wafer``, ``dataflow``) and the training model only
time them, each with its own fusion rules; ``layer_totals`` holds the per-layer sums they ask
for on every step.

``layer_collectives`` lists the collectives a layout implies for one layer's forward pass:
Megatron tensor parallelism's two all-reduces (or, with sequence parallelism, an all-gather and
a reduce-scatter of the same volume; Shoeybi et al. 2019, Korthikanti et al. 2022), expert
parallelism's all-to-all dispatch and combine (DeepSeek-V3 report §3.2), and context
parallelism's ring exchange of K and V blocks (Liu et al., Ring Attention, 2023).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from siliconsim.models.spec import LayerGroup, ModelSpec


@functools.lru_cache(maxsize=256)
def expected_max_standard_normal(n: int) -> float:
    """Expected largest of ``n`` independent standard normals, by Blom's (1958) plotting position
    ``Phi^-1((n - 0.375) / (n + 0.25))``: 0 for 1, 0.55 for 2, 1.42 for 8, 2.04 for 32 (exact: 0, 0.56,
    1.42, 2.04)."""
    return 0.0 if n <= 1 else NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


KINDS = ("matmul", "experts", "attention", "elementwise")
DROPOUT_MASK_ELEMENTS = 0.5  # a 1-byte mask counted in 2-byte activation elements (Korthikanti §4.1)


@dataclass(frozen=True)
class Op:
    """One operator of one layer, per token, unsharded (see module docstring)."""

    name: str
    kind: str
    params: float = 0.0  # weight parameters the operator multiplies by (all experts for "experts")
    act_elements: float = 0.0  # activation elements read + written per token in the forward pass
    flop_per_pair: float = 0.0  # attention only: forward FLOP per (query, key) pair
    decode_flop_per_pair: float = 0.0  # attention only: the same in decode (MLA: W_UK/W_UV absorbed)
    kv_elements: float = 0.0  # attention only: K and V cache elements per token
    experts_per_token: int = 0  # experts only
    n_experts: int = 0  # experts only
    tp_split: bool = True  # tensor parallelism shards it (False: replicated on every TP rank)

    @property
    def active_params(self) -> float:
        """Parameters one token multiplies by."""
        if self.kind == "experts":
            return self.params / self.n_experts * self.experts_per_token
        return self.params

    @property
    def per_expert_params(self) -> float:
        """Parameters of one expert (experts only)."""
        return self.params / self.n_experts

    def experts_touched(self, tokens: Any) -> Any:
        """Distinct experts a step of ``tokens`` tokens reads, routed uniformly to ``k`` of ``E``:
        ``E (1 - (1 - k/E)^T)`` expected (experts only; floats or arrays)."""
        return self.n_experts * (1.0 - (1.0 - self.experts_per_token / self.n_experts) ** tokens)

    def busiest_rank_experts(self, tokens: Any, ranks: int) -> Any:
        """Distinct experts the busiest of ``ranks`` expert-parallel ranks reads in a step of
        ``tokens`` tokens (experts only; floats or arrays). Each rank holds ``E / ranks`` experts,
        each touched with probability ``p = 1 - (1 - k/E)^T``, so a rank's count is binomial
        with mean ``m = E p / ranks`` and variance ``m (1 - p)``; the step waits for the busiest
        rank, whose expected count is ``m + z_R sd`` with ``z_R`` the expected maximum of ``R``
        standard normals (Blom 1958), capped at the rank's ``E / ranks`` experts. With few tokens
        the busiest rank reads 1.5-2x the mean; with many, every rank reads all its experts."""
        per = self.n_experts / ranks
        p = 1.0 - (1.0 - self.experts_per_token / self.n_experts) ** tokens
        mean = per * p
        if ranks <= 1:
            return mean
        spread = expected_max_standard_normal(ranks) * np.sqrt(mean * (1.0 - p))
        return np.minimum(per, mean + spread) if isinstance(mean, np.ndarray) else min(per, mean + float(spread))

    @property
    def flop_per_token(self) -> float:
        """Forward FLOP per token, context-independent part (attention: see ``flop_per_pair``)."""
        return 2.0 * self.active_params

    def backward_factor(self) -> float:
        """Backward work over forward work: 2 in FLOP for GEMMs (dX and dW; Narayanan et al. SC'21
        §5.1); 1.5 in bytes for elementwise work (an activation or norm backward reads the output
        gradient and the saved input and writes the input gradient, against one read and one
        write forward; dropout-add backward moves less than its forward)."""
        return 1.5 if self.kind == "elementwise" else 2.0


@dataclass(frozen=True)
class Collective:
    """A collective one layer's forward pass implies, per token of the micro-batch."""

    name: str
    group: str  # "tp" | "ep" | "cp"
    pattern: str  # "allreduce" | "allgather" | "reducescatter" | "alltoall" | "ring"
    elements_per_token: float  # elements each rank contributes per token it holds


def _attention_projection_ops(model: ModelSpec) -> tuple[Op, ...]:
    d = model.d_model
    if model.is_mla:
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        h = model.n_heads
        q = (d * model.q_lora_rank + model.q_lora_rank * h * qk) if model.q_lora_rank else d * h * qk
        kv_a = d * (model.kv_lora_rank + model.qk_rope_head_dim)
        kv_b = model.kv_lora_rank * h * (model.qk_nope_head_dim + model.v_head_dim)
        qkv = Op("qkv_proj", "matmul", params=float(q + kv_a + kv_b),
                 act_elements=float(d + h * qk + 2 * h * model.v_head_dim))
        out = Op("o_proj", "matmul", params=float(h * model.v_head_dim * d), act_elements=float(h * model.v_head_dim + d))
        return qkv, out
    qkv_w = model.q_dim + 2 * model.kv_dim
    qkv = Op("qkv_proj", "matmul", params=float(d * qkv_w + (qkv_w if model.attn_bias else 0)),
             act_elements=float(d + qkv_w))
    out = Op("o_proj", "matmul", params=float(model.q_dim * d + (d if model.attn_bias else 0)),
             act_elements=float(model.q_dim + d))
    return qkv, out


def _attention_core(model: ModelSpec) -> Op:
    return Op("attention", "attention", params=float(model.n_heads if model.attn_sinks else 0),
              flop_per_pair=model.attn_flop_per_query_key(absorbed=False),
              decode_flop_per_pair=model.attn_flop_per_query_key(absorbed=True),
              kv_elements=model.kv_elements_per_token_layer(), act_elements=float(model.q_dim + model.q_dim))


def _mlp_bias(model: ModelSpec) -> bool:
    return model.expert_bias or model.mlp_bias


def _mlp_ops(model: ModelSpec, width: int, prefix: str) -> tuple[Op, ...]:
    d = model.d_model
    up_out = (2 if model.gated_mlp else 1) * width
    bias_up = up_out if _mlp_bias(model) else 0
    up = Op(f"{prefix}up_proj", "matmul", params=float(d * up_out + bias_up), act_elements=float(d + up_out))
    act = Op(f"{prefix}activation", "elementwise", act_elements=float(up_out + width))
    down = Op(f"{prefix}down_proj", "matmul", params=float(width * d + (d if _mlp_bias(model) else 0)),
              act_elements=float(width + d))
    return up, act, down


def _moe_ops(model: ModelSpec, g: LayerGroup) -> tuple[Op, ...]:
    d = model.d_model
    router = Op("router", "matmul", params=float((d + (1 if model.router_bias else 0)) * g.n_experts),
                act_elements=float(d + g.n_experts), tp_split=False)
    mats = 3 if model.gated_mlp else 2
    per_expert = mats * d * g.d_ff + ((mats - 1) * g.d_ff + d if _mlp_bias(model) else 0)
    k = g.experts_per_token
    experts = Op("experts", "experts", params=float(g.n_experts * per_expert), n_experts=g.n_experts,
                 experts_per_token=k, act_elements=float(k * (2 * d + (mats - 1) * g.d_ff + 2 * g.d_ff)))
    ops: tuple[Op, ...] = (router, experts)
    if g.n_shared_experts:
        ops += _mlp_ops(model, g.n_shared_experts * (g.shared_d_ff or g.d_ff), "shared_")
    return ops


def _norm_width_params(model: ModelSpec) -> float:
    """Weights of one ``d``-wide norm: a scale, and a bias for LayerNorm with one (GPT-2 family)."""
    return float(model.d_model * (2 if model.norm_bias else 1))


def _norm_params(model: ModelSpec) -> float:
    """Every norm weight of a layer: its ``d``-wide norms (two, or one for a parallel block),
    per-head q/k norms, MLA latent norms."""
    qk = 2 * model.head_dim if model.qk_norm else 0
    latent = model.q_lora_rank + model.kv_lora_rank if model.is_mla else 0
    return model.norms_per_layer * _norm_width_params(model) + qk + latent


def _elementwise_ops(model: ModelSpec) -> tuple[Op, ...]:
    d = float(model.d_model)
    return (
        Op("norms", "elementwise", params=_norm_params(model), act_elements=2 * 2 * d, tp_split=False),
        Op("bias_dropout_add", "elementwise", act_elements=2 * (3 * d + DROPOUT_MASK_ELEMENTS * d), tp_split=False),
    )


@functools.cache
def layer_ops(model: ModelSpec, g: LayerGroup) -> tuple[Op, ...]:
    """The operators of one decoder layer of group ``g``, in execution order."""
    qkv, out = _attention_projection_ops(model)
    mlp = _moe_ops(model, g) if g.moe else _mlp_ops(model, g.d_ff, "")
    return (qkv, _attention_core(model), out) + mlp + _elementwise_ops(model)


@functools.cache
def head_ops(model: ModelSpec) -> tuple[Op, ...]:
    """Operators outside the decoder layers, the LM head last: the input embedding (a row gather,
    a memory operation of ``d`` elements per token; its ``params`` are a learned position table
    where the model has one, as the token table is counted by callers with the LM head's tying),
    an embedding norm (BLOOM), the final norm and the LM head (with its bias, GPT-J)."""
    d, v = float(model.d_model), float(model.vocab_size)
    ops = [Op("embedding", "elementwise", params=float(model.learned_positions) * d, act_elements=d, tp_split=False)]
    if model.embedding_norm:
        ops.append(Op("embedding_norm", "elementwise", params=_norm_width_params(model), act_elements=2 * d,
                      tp_split=False))
    ops += [Op("final_norm", "elementwise", params=_norm_width_params(model), act_elements=2 * d, tp_split=False),
            Op("lm_head", "matmul", params=d * v + (v if model.lm_head_bias else 0.0), act_elements=d + v)]
    return tuple(ops)


@functools.cache
def layer_collectives(model: ModelSpec, g: LayerGroup, *, tp: int = 1, ep: int = 1, cp: int = 1,
                      sequence_parallel: bool = False) -> tuple[Collective, ...]:
    """Collectives of one layer's forward pass under a layout (the backward pass has the same
    volume again: all-reduce for all-reduce, reduce-scatter for all-gather, and vice versa)."""
    d = float(model.d_model)
    out: list[Collective] = []
    if tp > 1:
        if sequence_parallel:
            out += [Collective("sp_allgather_attn", "tp", "allgather", d), Collective("sp_reducescatter_attn", "tp", "reducescatter", d),
                    Collective("sp_allgather_mlp", "tp", "allgather", d), Collective("sp_reducescatter_mlp", "tp", "reducescatter", d)]
        else:
            out += [Collective("tp_allreduce_attn", "tp", "allreduce", d), Collective("tp_allreduce_mlp", "tp", "allreduce", d)]
    if g.moe and ep > 1:
        k = float(g.experts_per_token)
        out += [Collective("ep_dispatch", "ep", "alltoall", k * d), Collective("ep_combine", "ep", "alltoall", k * d)]
    if cp > 1:
        out.append(Collective("cp_kv_ring", "cp", "ring", model.kv_elements_per_token_layer()))
    return tuple(out)


@functools.cache
def merged_collectives(model: ModelSpec, g: LayerGroup, *, tp: int = 1, ep: int = 1, cp: int = 1,
                       sequence_parallel: bool = False) -> tuple[tuple[Collective, int], ...]:
    """``layer_collectives`` with collectives of the same group, pattern and size merged into
    ``(collective, how many)``, so a step function times each kind once."""
    counts: dict[tuple[str, str, float], list] = {}
    for c in layer_collectives(model, g, tp=tp, ep=ep, cp=cp, sequence_parallel=sequence_parallel):
        counts.setdefault((c.group, c.pattern, c.elements_per_token), [c, 0])[1] += 1
    return tuple((c, n) for c, n in counts.values())


def find_op(ops: Iterable[Op], *, kind: str = "", name: str = "") -> Op | None:
    """The first operator of ``kind`` and/or ``name`` (``None`` if there is none, e.g. no experts)."""
    return next((op for op in ops if (not kind or op.kind == kind) and (not name or op.name == name)), None)


def layer_op(model: ModelSpec, g: LayerGroup, name: str) -> Op:
    """The operator called ``name`` that every layer has (``attention``, ``norms``, ``qkv_proj``, ...)."""
    op = find_op(layer_ops(model, g), name=name)
    if op is None:
        raise KeyError(f"a layer of {model.id} has no operator {name!r}")
    return op


def attended(g: LayerGroup, context: Any) -> Any:
    """Keys one query of group ``g`` attends to at ``context`` positions (at most the window)."""
    return np.minimum(context, g.window) if g.window else context


def mlp_width(g: LayerGroup) -> int:
    """Intermediate width one token's MLP runs through: the dense MLP's, or its ``k`` routed
    experts' plus the shared experts' (as ``layer_ops`` builds them)."""
    return g.d_ff * max(1, g.experts_per_token) + g.n_shared_experts * (g.shared_d_ff or g.d_ff)


def layer_params(ops: Iterable[Op]) -> float:
    """Weight parameters of ``ops`` (all experts included)."""
    return sum(op.params for op in ops)


def layer_flop_per_token(ops: Iterable[Op]) -> float:
    """Context-independent forward FLOP per token of ``ops`` (2 x active parameters)."""
    return sum(op.flop_per_token for op in ops)


@dataclass(frozen=True)
class LayerTotals:
    """One layer's operators summed once for the step functions (``layer_totals``)."""

    params: float  # every weight, all experts included
    flop_per_token: float  # context-independent forward FLOP (2 x active params)
    dense_params: float  # weights of every operator but the routed experts
    dense_flop_per_token: float
    attention: Op
    experts: Op | None


@functools.cache
def layer_totals(model: ModelSpec, g: LayerGroup) -> LayerTotals:
    """Sums over the operators of a layer of group ``g`` (cached: the families ask every step)."""
    ops = layer_ops(model, g)
    experts = find_op(ops, kind="experts")
    dense = [op for op in ops if op is not experts]
    return LayerTotals(layer_params(ops), layer_flop_per_token(ops), layer_params(dense), layer_flop_per_token(dense),
                       layer_op(model, g, "attention"), experts)


def largest_layer_params(model: ModelSpec) -> float:
    """Weight parameters of the model's largest decoder layer."""
    return max(layer_totals(model, g).params for g in model.groups)


def attention_flop_per_token(model: ModelSpec, context: Any, *, decode: bool) -> Any:
    """Forward attention-core FLOP of one token at ``context`` positions, over all layers
    (``decode``: MLA's absorbed form). Floats or arrays."""
    total: Any = 0.0
    for g in model.groups:
        att = layer_totals(model, g).attention
        total = total + g.count * attended(g, context) * (att.decode_flop_per_pair if decode else att.flop_per_pair)
    return total


@functools.cache
def body_flop_per_token(model: ModelSpec) -> float:
    """Context-independent forward FLOP of one token through every decoder layer."""
    return sum(g.count * layer_totals(model, g).flop_per_token for g in model.groups)


def lm_head_op(model: ModelSpec) -> Op:
    """The LM head (a ``d x V`` matmul on the tokens that sample)."""
    return head_ops(model)[-1]


def forward_flop_per_token(model: ModelSpec, context: Any, *, decode: bool = True) -> Any:
    """Forward FLOP of one sampled token at ``context`` positions: layers, attention, LM head
    (``ModelSpec.flop_per_token``'s count, from the operators)."""
    return (body_flop_per_token(model) + lm_head_op(model).flop_per_token
            + attention_flop_per_token(model, context, decode=decode))


def model_flop_per_token(model: ModelSpec, seq_len: float, attention_factor: float = 1.0) -> float:
    """Model FLOPs per trained token, forward plus backward, no recomputation (the MFU numerator).

    ``6 x active matmul params`` plus ``3 x flop_per_pair x s`` per layer for attention: following
    PaLM (Chowdhery et al. 2022, appendix B) and Megatron (Narayanan et al. SC'21 §5.1) the
    attention term counts every one of the ``s`` keys per query (``12 L h s`` for multi-head
    attention), although a causal mask makes half of them unneeded. Sliding-window layers count
    their window. For a GPT model this is Megatron's ``72 B s L h^2 (1 + s/6h + V/12Lh)`` per
    ``B s`` tokens. ``attention_factor`` 0.5 gives the causal convention some frameworks report
    (MaxText's ``calculate_training_tflops`` halves the attention term).
    """
    total = 0.0
    for g in model.groups:
        span = attended(g, seq_len)
        for op in layer_ops(model, g):
            if op.kind in ("matmul", "experts"):
                total += g.count * 3.0 * op.flop_per_token
            elif op.kind == "attention":
                total += g.count * 3.0 * op.flop_per_pair * span * attention_factor
    return float(total + 3.0 * lm_head_op(model).flop_per_token)
