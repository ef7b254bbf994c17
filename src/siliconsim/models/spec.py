"""Model specs derived from Hugging Face ``config.json`` files (kept verbatim in ``data/``).

A transformer is summarised as a few *layer groups*: layers that share an attention window and
MLP kind are counted together, so a step's cost is one small sum, and vectorises over NumPy
arrays of batch and context.

Formulas:
- Parameters: embeddings (V*d), attention projections (GQA or MLA), MLP (gated: 3*d*f,
  plain: 2*d*f), MoE experts (E * 3*d*f_e) plus router and shared experts, norms (and Qwen3's
  q/k norms, gpt-oss's attention sinks and biases). GPT-2-style models add a learned position
  table (n_positions*d), linear biases (attention 4*d for MHA, MLP f+d) and LayerNorms with a
  bias (2*d each); with f = 4d that is Megatron's 12*l*d^2*(1 + 13/(12d) + (V+s)/(12*l*d))
  (Narayanan et al. 2021, arXiv:2104.04473, section 5.1) plus the final LayerNorm's 2*d.
  Multi-token-prediction layers a checkpoint may carry (DeepSeek, GLM
  ``num_nextn_predict_layers``) are not part of the serving model and are left out;
  ``mtp_layers`` records them.
- Forward FLOP per token: 2 * (active matmul parameters) (Kaplan et al. 2020, eq. 2.2), plus
  attention scores and values, 4 * heads * head_dim per context position (QK^T and PV),
  and the LM head 2*d*V on tokens that sample.
- KV cache per token and layer: 2 * kv_heads * head_dim elements (GQA); kv_lora_rank +
  qk_rope_head_dim elements for MLA (DeepSeek-V2 paper, section 2.1). Sliding-window layers hold
  at most ``window`` tokens.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field, fields

BYTES_PER_ELEMENT = {
    "fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
    # 4-bit formats carry block scales: MXFP4 is 32 x 4-bit + one 8-bit scale = 4.25 bits;
    # NVFP4 is 16 x 4-bit + one 8-bit scale = 4.5 bits; int4 (AWQ/GPTQ g128) ~4.25 bits.
    "fp4": 4.5 / 8.0, "mxfp4": 4.25 / 8.0, "int4": 4.25 / 8.0,
}


def bytes_per_element(dtype: str) -> float:
    from siliconsim.errors import InputError

    try:
        return BYTES_PER_ELEMENT[dtype]
    except KeyError:
        raise InputError(f"dtype: {dtype!r} is not one of {', '.join(BYTES_PER_ELEMENT)}") from None


@dataclass(frozen=True)
class LayerGroup:
    """``count`` identical decoder layers."""

    count: int
    window: int | None  # sliding/chunked attention span in tokens; None = full context
    moe: bool
    d_ff: int  # dense MLP width, or expert width when moe
    n_experts: int = 0
    experts_per_token: int = 0
    n_shared_experts: int = 0
    shared_d_ff: int = 0


@dataclass(frozen=True)
class ModelSpec:
    id: str
    architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    gated_mlp: bool
    groups: tuple[LayerGroup, ...]
    native_dtype: str = "bf16"
    max_context: int = 0
    # MLA (DeepSeek): zero when the model uses ordinary multi-head/GQA attention.
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    attn_bias: bool = False
    expert_bias: bool = False
    quantized_experts: str = ""  # e.g. "mxfp4" when the checkpoint ships quantized experts
    qk_norm: bool = False  # per-head RMSNorm weights on q and k (Qwen3, GLM-4.x with use_qk_norm)
    attn_sinks: bool = False  # one learned sink logit per head (gpt-oss)
    router_bias: bool = False  # router carries a bias per expert (gpt-oss)
    mtp_layers: int = 0  # multi-token-prediction layers in the checkpoint; not part of serving
    # GPT-2 family (all default to the Llama-style values, so other models are unchanged):
    mlp_bias: bool = False  # dense MLP carries biases (f + d per layer)
    norm_bias: bool = False  # LayerNorm with a bias: 2 parameters per channel (RMSNorm: 1)
    norms_per_layer: int = 2  # 1 for a parallel block sharing one norm (GPT-J)
    learned_positions: int = 0  # rows of a learned absolute position table (GPT-2, OPT); 0 = none
    embedding_norm: bool = False  # a LayerNorm right after the token embedding (BLOOM)
    lm_head_bias: bool = False  # the untied LM head carries a bias per vocabulary entry (GPT-J)
    position_embedding: str = ""  # "learned_absolute", "rope" or "alibi" where the loader records it
    activation: str = ""  # MLP activation as the config names it ("gelu_new", "relu2", ...), if recorded
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    # ---- structure -------------------------------------------------------------------
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @functools.cached_property
    def _field_hash(self) -> int:
        return hash(tuple(getattr(self, f.name) for f in fields(self)))

    def __hash__(self) -> int:
        """The generated hash, computed once: specs key the per-layer caches of the hot path."""
        return self._field_hash

    def __getstate__(self) -> dict:
        """Pickle the fields only: cached values (the hash depends on the process's string-hash seed) are not sent."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @functools.cached_property
    def is_moe(self) -> bool:
        return any(g.moe for g in self.groups)

    @property
    def q_dim(self) -> int:
        """Width of the query projection output."""
        if self.is_mla:
            return self.n_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of one of K or V per token (GQA)."""
        return self.n_kv_heads * self.head_dim

    # ---- parameters ------------------------------------------------------------------
    def attn_params(self) -> float:
        d, h = self.d_model, self.n_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * h * qk) if self.q_lora_rank else d * h * qk
            kv = d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv += self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
            return float(q + kv + h * self.v_head_dim * d)
        p = d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d
        if self.attn_bias:
            p += self.q_dim + 2 * self.kv_dim + d
        return float(p)

    def _mlp_params(self, width: int) -> float:
        mats = 3 if self.gated_mlp else 2
        p = mats * self.d_model * width
        if self.expert_bias or self.mlp_bias:
            p += (mats - 1) * width + self.d_model
        return float(p)

    def layer_params(self, g: LayerGroup) -> tuple[float, float, float]:
        """(total, active, expert) matmul parameters of one layer of group ``g``."""
        known = self._layer_params_of_groups.get(g)
        return known if known is not None else self._count_layer_params(g)

    @functools.cached_property
    def _layer_params_of_groups(self) -> dict[LayerGroup, tuple[float, float, float]]:
        # the step functions ask for these on every call; a spec is frozen, so count them once
        return {g: self._count_layer_params(g) for g in self.groups}

    def _count_layer_params(self, g: LayerGroup) -> tuple[float, float, float]:
        attn = self.attn_params() + self.norms_per_layer * self._norm_params()
        attn += (2 * self.head_dim if self.qk_norm else 0) + (self.n_heads if self.attn_sinks else 0)
        if not g.moe:
            mlp = self._mlp_params(g.d_ff)
            return attn + mlp, attn + mlp, 0.0
        expert = self._mlp_params(g.d_ff)
        shared = g.n_shared_experts * self._mlp_params(g.shared_d_ff or g.d_ff)
        router = (self.d_model + (1 if self.router_bias else 0)) * g.n_experts
        total = attn + router + shared + g.n_experts * expert
        active = attn + router + shared + g.experts_per_token * expert
        return total, active, g.n_experts * expert

    def _norm_params(self) -> int:
        return self.d_model * (2 if self.norm_bias else 1)

    def embedding_params(self) -> float:
        """Everything outside the decoder layers: token embedding and LM head, the final norm, and
        where the model has them a learned position table, an embedding norm and an LM-head bias."""
        p = self.vocab_size * self.d_model * (1 if self.tied_embeddings else 2) + self._norm_params()
        p += self.learned_positions * self.d_model + (self._norm_params() if self.embedding_norm else 0)
        return float(p + (self.vocab_size if self.lm_head_bias else 0))

    @property
    def total_params(self) -> float:
        return self.embedding_params() + sum(g.count * self.layer_params(g)[0] for g in self.groups)

    @property
    def active_params(self) -> float:
        return self.embedding_params() + sum(g.count * self.layer_params(g)[1] for g in self.groups)

    @property
    def expert_params(self) -> float:
        return sum(g.count * self.layer_params(g)[2] for g in self.groups)

    def expert_bytes_per_element(self, dtype: str) -> float:
        """Bytes per expert parameter at ``dtype``: a checkpoint's quantized experts (gpt-oss MXFP4,
        Kimi int4) stay at their format whenever ``dtype`` is wider."""
        b = bytes_per_element(dtype)
        return min(b, bytes_per_element(self.quantized_experts)) if self.quantized_experts else b

    def weights_label(self, dtype: str | None = None) -> str:
        """Weight precision as served at ``dtype`` (default: the native one): ``bf16+mxfp4``
        when the checkpoint keeps quantized experts narrower than ``dtype``."""
        dtype = dtype or self.native_dtype
        q = self.quantized_experts
        if q and BYTES_PER_ELEMENT[q] < BYTES_PER_ELEMENT.get(dtype, 2.0):
            return f"{dtype}+{q}"
        return dtype

    def decode_read_bytes(self, dtype: str) -> float:
        """Weight bytes one decode token reads at batch 1: each layer's active weights (only the
        routed experts of MoE layers) and the LM head; the input embedding is a row lookup.
        Embeddings and head stay at least 16-bit, as in ``weight_bytes``."""
        b = bytes_per_element(dtype)
        body = 0.0
        for g in self.groups:
            _, active, experts = self.layer_params(g)
            routed = experts / g.n_experts * g.experts_per_token if g.moe else 0.0
            body += g.count * ((active - routed) * b + routed * self.expert_bytes_per_element(dtype))
        return body + self.d_model * self.vocab_size * max(b, 2.0)

    def weight_bytes(self, dtype: str) -> float:
        """Bytes of all weights at ``dtype``; embeddings and norms stay 16-bit when quantized.

        A checkpoint that ships quantized experts (gpt-oss MXFP4) keeps them at that format
        whenever ``dtype`` is wider.
        """
        b = bytes_per_element(dtype)
        emb = self.embedding_params() * max(b, 2.0)
        body = self.total_params - self.embedding_params()
        expert = self.expert_params
        return emb + (body - expert) * b + expert * self.expert_bytes_per_element(dtype)

    # ---- KV cache --------------------------------------------------------------------
    def kv_elements_per_token_layer(self) -> float:
        if self.is_mla:
            return float(self.kv_lora_rank + self.qk_rope_head_dim)
        return float(2 * self.kv_dim)

    def kv_bytes_per_token(self, kv_dtype: str = "bf16", context: float | None = None) -> float:
        """KV-cache bytes one token adds, averaged over a ``context``-long sequence.

        Sliding-window layers stop growing past their window, so at long context they add
        ``window / context`` of a full layer per token.
        """
        per_layer = self.kv_elements_per_token_layer() * bytes_per_element(kv_dtype)
        total = 0.0
        for g in self.groups:
            frac = 1.0
            if g.window and context and context > g.window:
                frac = g.window / context
            total += g.count * frac
        return per_layer * total

    def kv_bytes(self, tokens, kv_dtype: str = "bf16"):
        """KV-cache bytes for one sequence of ``tokens`` (scalar or NumPy array)."""
        per_layer = self.kv_elements_per_token_layer() * bytes_per_element(kv_dtype)
        total = 0.0
        for g in self.groups:
            held = tokens if not g.window else _minimum(tokens, g.window)
            total = total + g.count * held
        return per_layer * total

    # ---- FLOP ------------------------------------------------------------------------
    def attn_flop_per_query_key(self, *, absorbed: bool = False) -> float:
        """FLOP for one query attending to one key, per layer (QK^T plus PV)."""
        if self.is_mla:
            if absorbed:  # decode with W_UK/W_UV absorbed: attend in the latent space
                return 2.0 * self.n_heads * (2 * self.kv_lora_rank + self.qk_rope_head_dim)
            return 2.0 * self.n_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim + self.v_head_dim)
        return 4.0 * self.n_heads * self.head_dim

    def flop_per_token(self, context: float, *, decode: bool = True) -> float:
        """Forward FLOP for one token at ``context`` positions, attention and LM head included."""
        matmul = 2.0 * (self.active_params - self.embedding_params())
        lm_head = 2.0 * self.d_model * self.vocab_size
        attn = 0.0
        for g in self.groups:
            span = context if not g.window else min(context, g.window)
            attn += g.count * span * self.attn_flop_per_query_key(absorbed=decode)
        return matmul + lm_head + attn

    def prefill_flop(self, prompt_tokens: float) -> float:
        """FLOP to prefill a prompt (causal: each token sees the ones before it)."""
        matmul = 2.0 * (self.active_params - self.embedding_params()) * prompt_tokens
        attn = 0.0
        for g in self.groups:
            if g.window and prompt_tokens > g.window:
                pairs = g.window * prompt_tokens - g.window * g.window / 2.0
            else:
                pairs = prompt_tokens * prompt_tokens / 2.0
            attn += g.count * pairs * self.attn_flop_per_query_key(absorbed=False)
        return matmul + attn + 2.0 * self.d_model * self.vocab_size


def context_warning(model: ModelSpec, context_tokens: float) -> str:
    """A warning when ``context_tokens`` (prompt + output) exceeds the model's maximum context
    (``max_position_embeddings``), else "". Such a request is legal to estimate (the formulas
    extrapolate) but no deployment of the model serves it."""
    if model.max_context and context_tokens > model.max_context:
        return (f"context of {context_tokens:,.0f} tokens exceeds {model.id}'s maximum of {model.max_context:,} "
                "(max_position_embeddings); the figures extrapolate past what the model serves")
    return ""


def _minimum(a, b):
    try:
        return min(a, b)
    except (TypeError, ValueError):
        import numpy as np

        return np.minimum(a, b)
