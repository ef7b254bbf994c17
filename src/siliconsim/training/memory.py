"""Training memory per chip: weights, gradients, optimizer state and activations.

- Mixed-precision Adam keeps 2 B of 16-bit weights, 2 B of gradients and 12 B of fp32 master
  weights, momentum and variance per parameter: 16 B (Rajbhandari et al., ZeRO, SC'20 §3.1).
  ZeRO-1 shards the 12 B over the data-parallel group, ZeRO-2 also the gradients, ZeRO-3 / FSDP
  also the weights (then two layers' weights are gathered at a time). FP8 training keeps the
  16-bit weights and the fp32 state; it saves compute time, not optimizer memory.
- LoRA (Hu et al. 2021) freezes the base weights (2 B each, no gradient, no optimizer state) and
  trains ``r x (in + out)`` adapter parameters on every projection at 16 B each.
- Activations stored per layer and token follow Korthikanti et al. 2022 (Table 2, §4), generalised
  from multi-head attention with a 4h MLP to any widths: attention ``3d + 4q + 4kv`` bytes (QKV
  input, Q, K, V, output-projection input, dropout mask) plus ``5 a s`` for the score, softmax and
  dropout tensors (absent with FlashAttention, which recomputes them); MLP ``3d + 2 up + 2 f``;
  two LayerNorm inputs ``4d``. For GPT (q = kv = d, up = f = 4d) that is ``34 s b h + 5 a s^2 b``.
  Without sequence parallelism ``10 d`` of it (norm inputs, masks, the inputs of the QKV and
  up projections) is replicated on every TP rank. Selective recomputation drops the ``5 a s``
  term; full recomputation keeps only each layer's input (``2d``). Under FP8 (and FP4) recipes the
  inputs of the four GEMMs are saved as their 1-byte cast copies (Transformer Engine keeps the
  fp8 tensor it fed the forward GEMM for the weight gradient). The last stage also holds
  the fp32 logits for the loss (``4 V`` per token, split by TP).
- Under 1F1B the first pipeline stage holds the activations of ``min(P, m)`` in-flight
  micro-batches; the interleaved schedule ``(1 + (P - 1)/(P v))`` times that (Narayanan et al.
  SC'21 §2.2; Korthikanti et al. §4.2.3).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from siliconsim.models.spec import LayerGroup, ModelSpec
from siliconsim.perf.ops import head_ops, layer_ops
from siliconsim.training.job import Layout, TrainingJob, microbatches

WEIGHT_BYTES = 2.0  # 16-bit working weights
GRAD_BYTES = 2.0  # 16-bit gradients
OPTIMIZER_BYTES = 12.0  # fp32 master weights, Adam m and v
FP8_STORED = ("fp8", "fp4")  # Transformer Engine saves the fp8 copy of each GEMM input for the backward


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per chip on the busiest pipeline stage."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    usable_bytes: float

    @property
    def used_bytes(self) -> float:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes

    @property
    def fits(self) -> bool:
        return self.used_bytes <= self.usable_bytes

    def reason(self) -> str:
        """Names the part that overflows first, in the order a user would shrink them."""
        if self.fits:
            return ""
        budget = self.usable_bytes
        for name, part in (("weights", self.weights_bytes), ("gradients", self.gradients_bytes),
                           ("optimizer state", self.optimizer_bytes)):
            if part > budget:
                return f"{name} need {_gb(part)} per chip > {_gb(budget)} usable"
            budget -= part
        return (f"activations need {_gb(self.activations_bytes)} per chip > {_gb(max(budget, 0.0))} left after "
                f"weights, gradients and optimizer state ({_gb(self.used_bytes)} > {_gb(self.usable_bytes)} usable)")

    def as_dict(self) -> dict[str, float]:
        return {"weights_bytes": self.weights_bytes, "gradients_bytes": self.gradients_bytes,
                "optimizer_bytes": self.optimizer_bytes, "activations_bytes": self.activations_bytes,
                "total_bytes": self.used_bytes, "usable_bytes": self.usable_bytes}


def stage_params(model: ModelSpec, lay: Layout) -> tuple[float, float]:
    """(dense, expert) parameters one chip of the busiest stage holds before ZeRO sharding."""
    return _stage_params(model, lay.tp, lay.pp, lay.ep)


@functools.cache
def _stage_params(model: ModelSpec, tp: int, pp: int, ep: int) -> tuple[float, float]:
    lay = Layout(tp=tp, pp=pp, ep=ep)
    dense = expert = 0.0
    for g in model.groups:
        per_stage = g.count / lay.pp
        for op in layer_ops(model, g):
            if op.kind == "experts":
                expert += per_stage * op.params / (lay.ep * lay.tp)
            elif op.tp_split:
                dense += per_stage * op.params / lay.tp
            else:
                dense += per_stage * op.params
    head = sum(op.params for op in head_ops(model))
    emb = model.vocab_size * model.d_model * (1 if model.tied_embeddings or lay.pp > 1 else 2)
    return dense + (emb + head - model.vocab_size * model.d_model) / lay.tp, expert


def lora_params(model: ModelSpec, rank: int, lay: Layout) -> float:
    """Trainable LoRA adapter parameters per chip: ``r (in + out)`` on every attention and MLP
    projection (the QLoRA/PEFT "all linear layers" recipe)."""
    total = 0.0
    d = model.d_model
    for g in model.groups:
        for op in layer_ops(model, g):
            if op.kind == "matmul" and op.tp_split:
                total += g.count * rank * (d + op.params / d)
    return total / lay.pp / lay.tp


def _layer_activation_bytes(model: ModelSpec, g: LayerGroup, job: TrainingJob, lay: Layout, flash: bool) -> float:
    """Activation bytes one layer keeps per token of a micro-batch, on one TP rank."""
    d, q, kv = model.d_model, model.q_dim, model.kv_dim
    tp = lay.tp
    sp = lay.sequence_parallel and tp > 1
    if lay.recompute == "full":
        return 2.0 * d / (tp if sp else 1)
    up = (2 if model.gated_mlp else 1) * g.d_ff
    f = g.d_ff
    k = max(1, g.experts_per_token)
    replicated = 10.0 * d
    split = 4 * q + 4 * kv + k * (2 * up + 2 * f)
    if job.dtype in FP8_STORED:  # GEMM inputs kept for the backward in their 1-byte cast copy
        replicated -= d + d  # QKV and MLP inputs (2 B -> 1 B each)
        split -= q + k * f  # output-projection and down-projection inputs
    if g.moe and g.n_shared_experts:
        shared = g.n_shared_experts * (g.shared_d_ff or g.d_ff)
        split += 2 * (2 if model.gated_mlp else 1) * shared + 2 * shared
    per_token = (replicated + split) / tp if sp else replicated + split / tp
    if not flash and lay.recompute == "none":
        span = min(job.seq_len, g.window) if g.window else job.seq_len
        per_token += 5.0 * model.n_heads * span / tp / lay.cp
    return per_token


def activation_bytes(job: TrainingJob, lay: Layout, flash: bool) -> float:
    """Activation bytes the busiest (first) pipeline stage keeps at its peak."""
    model = job.model
    tokens = lay.microbatch * job.seq_len / lay.cp
    per_mb = sum(g.count / lay.pp * _layer_activation_bytes(model, g, job, lay, flash) for g in model.groups) * tokens
    m = microbatches(job, lay)
    in_flight = min(lay.pp, m)
    if lay.vp > 1:
        in_flight *= 1.0 + (lay.pp - 1) / (lay.pp * lay.vp)
    logits = 4.0 * model.vocab_size * tokens / lay.tp  # fp32 logits on the last stage (pp == 1: same chip)
    return per_mb * in_flight + (logits if lay.pp == 1 else 0.0)


def training_memory(job: TrainingJob, lay: Layout, usable_bytes: float, flash: bool) -> TrainingMemory:
    dense, expert = stage_params(job.model, lay)
    params = dense + expert
    shard = lay.dp * lay.cp  # Megatron's distributed optimizer shards over the DP x CP group
    expert_shard = max(1, shard // lay.ep)
    if job.lora_rank:
        adapters = lora_params(job.model, job.lora_rank, lay)
        weights = params * WEIGHT_BYTES + adapters * WEIGHT_BYTES
        grads, opt = adapters * GRAD_BYTES, adapters * OPTIMIZER_BYTES / (shard if lay.zero >= 1 else 1)
        return TrainingMemory(weights, grads, opt, activation_bytes(job, lay, flash), usable_bytes)

    def sharded(bytes_per_param: float, stage_min: int) -> float:
        if lay.zero < stage_min:
            return params * bytes_per_param
        return (dense / shard + expert / expert_shard) * bytes_per_param

    weights = sharded(WEIGHT_BYTES, 3)
    if lay.zero >= 3:  # two layers gathered at a time (the one computing and the one prefetched)
        weights += 2.0 * params / max(1.0, sum(g.count for g in job.model.groups) / lay.pp) * WEIGHT_BYTES
    return TrainingMemory(weights, sharded(GRAD_BYTES, 2), sharded(OPTIMIZER_BYTES, 1),
                          activation_bytes(job, lay, flash), usable_bytes)
