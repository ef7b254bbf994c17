"""Training step time on HBM clusters (GPUs, TPUs, Gaudi), from the operator list of ``perf/ops``.

One micro-batch on one chip of the busiest pipeline stage runs every operator forward and
backward (and again forward under recomputation), each as a roofline
``max(FLOP / (eta_c peak), bytes / (eta_m bandwidth))`` (Williams et al. 2009) with training
efficiencies per chip family. Backward FLOP = 2 x forward for GEMMs (Narayanan et al. SC'21
§5.1), 2.5 x for FlashAttention (Dao 2023). Collectives run on the link tier their group spans
(``perf/collectives.group_collective_s``); the framework's overlap fractions say how much of
each is hidden. The pipeline runs ``m + (P - 1)/v`` micro-batch slots per step (1F1B bubble
``(P-1)/(m v)``, Narayanan et al. SC'21 §2.2). Data-parallel gradient reduction overlaps the
last micro-batch's backward (Li et al., PyTorch Distributed, VLDB 2020); under FSDP/ZeRO-3 the
weight all-gathers and gradient reduce-scatters run per micro-batch behind its compute (Zhao et
al., PyTorch FSDP, VLDB 2023). The Adam update is memory-bound and exposed at the step end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.models.spec import LayerGroup
from siliconsim.perf.collectives import group_collective_s, p2p_s
from siliconsim.perf.ops import Op, head_ops, layer_collectives, layer_op, layer_ops
from siliconsim.training.job import Layout, TrainingJob, microbatches
from siliconsim.training.memory import lora_params, stage_params
from siliconsim.training.params import DATA, Efficiency, Framework

LOW_PRECISION = ("fp8", "fp4", "int8")


@functools.cache
def constants() -> dict[str, float]:
    path = DATA / "constants.toml"
    table = read_toml(path).get("training", {})
    return {k: sourced(v, "s" if k == "kernel_overhead" else "dimensionless", f"{path.name}: training.{k}").value
            for k, v in table.items()}


@dataclass(frozen=True)
class StepBreakdown:
    """Seconds of one optimizer step on the critical path, by cause; they sum to the step time."""

    compute_s: float
    memory_s: float
    tp_comm_s: float
    dp_comm_s: float
    cp_comm_s: float
    ep_comm_s: float
    pp_bubble_s: float
    optimizer_s: float
    overhead_s: float

    @property
    def step_time_s(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Tally:
    """Per-micro-batch seconds on one chip, accumulated operator by operator."""

    compute_s: float = 0.0
    memory_s: float = 0.0
    tp_s: float = 0.0
    cp_s: float = 0.0
    ep_s: float = 0.0
    fwd_s: float = 0.0
    bwd_s: float = 0.0

    def roof(self, t_compute: float, t_memory: float, passes: float, backward: bool) -> None:
        t = max(t_compute, t_memory)
        if t_compute > t_memory:
            self.compute_s += passes * t
        else:
            self.memory_s += passes * t
        if backward:
            self.bwd_s += passes * t
        else:
            self.fwd_s += passes * t


@dataclass(frozen=True)
class _Rates:
    matmul_flop_per_s: float
    head_flop_per_s: float
    attention_flop_per_s: float
    bandwidth_bytes_per_s: float
    moe: float  # grouped expert GEMMs relative to dense ones
    weight_bytes: float  # per parameter


def _rates(job: TrainingJob, eff: Efficiency, fw: Framework) -> _Rates:
    """Achieved rates: the chip family's efficiencies times the framework's software factor."""
    chip = job.chip
    low = job.dtype in LOW_PRECISION
    mm = eff.matmul * fw.software * chip.peak_flop_per_s(job.dtype) * (eff.fp8 if low else 1.0)
    bf16 = chip.peak_flop_per_s("bf16") * fw.software
    return _Rates(mm, eff.matmul * bf16, eff.attention * bf16, eff.memory * chip.bandwidth_bytes_per_s, eff.moe,
                  1.0 if low else 2.0)


def _local(job: TrainingJob, stride: int) -> int:
    """Members of a group whose consecutive ranks are ``stride`` chips apart in one domain."""
    return max(1, job.domain_chips // max(1, stride))


def _collective_s(job: TrainingJob, pattern: str, n: int, stride: int, message_bytes: float) -> float:
    sysm = job.chip.system
    return float(group_collective_s(pattern, sysm.scale_up, sysm.scale_out, n, _local(job, stride), message_bytes))


def _keys_per_query(job: TrainingJob, g: LayerGroup, flash: bool) -> float:
    """Keys each query is scored against: all ``s`` for batched-GEMM attention, about half under a
    causal mask for FlashAttention (which skips masked tiles), at most the window."""
    s = float(job.seq_len)
    w = float(g.window) if g.window and g.window < s else 0.0
    if not flash:
        return s
    return w * (s - w / 2.0) / s if w else s / 2.0


def _passes(lay: Layout) -> tuple[float, float]:
    """(forward passes, recomputed forward passes of the attention core only)."""
    if lay.recompute == "full":
        return 2.0, 0.0
    return 1.0, 1.0 if lay.recompute == "selective" else 0.0


def _op_time(tally: _Tally, job: TrainingJob, lay: Layout, op: Op, layers: float, tokens: float,
             rates: _Rates, fw: Framework, g: LayerGroup) -> None:
    """Forward, backward and recomputed seconds of ``layers`` layers' ``op`` for one micro-batch."""
    if op.kind in ("matmul", "experts"):
        _matmul_time(tally, job, lay, op, layers, tokens, rates)
    elif op.kind == "attention":
        _attention_time(tally, job, lay, op, layers, tokens, rates, fw, g)
    else:  # elementwise: memory-bound, split by TP only when sharded or sequence-parallel
        split = lay.tp if (op.tp_split or (lay.sequence_parallel and lay.tp > 1)) else 1
        t = layers * op.act_elements * tokens * constants()["activation_bytes"] / split / rates.bandwidth_bytes_per_s
        tally.roof(0.0, t, _passes(lay)[0], False)
        tally.roof(0.0, op.backward_factor() * t, 1.0, True)


def _matmul_time(tally: _Tally, job: TrainingJob, lay: Layout, op: Op, layers: float, tokens: float,
                 rates: _Rates) -> None:
    k = constants()
    fwd, _ = _passes(lay)
    split = lay.tp if op.tp_split else 1
    on_chip = op.params / split / (lay.ep if op.kind == "experts" else 1)
    flop = op.flop_per_token * tokens / split
    bytes_ = on_chip * rates.weight_bytes + op.act_elements * tokens * k["activation_bytes"] / split
    rate = rates.head_flop_per_s if op.name == "lm_head" else rates.matmul_flop_per_s
    if op.kind == "experts":
        rate *= rates.moe
    bwd = 1.0 if job.lora_rank else op.backward_factor()  # frozen base weights: no weight gradient
    tally.roof(layers * flop / rate, layers * bytes_ / rates.bandwidth_bytes_per_s, fwd, False)
    tally.roof(layers * flop / rate, layers * bytes_ / rates.bandwidth_bytes_per_s, bwd, True)
    if rates.weight_bytes < 2.0 and op.name != "lm_head":  # fp8/fp4 GEMMs cast their inputs first
        cast = layers * op.act_elements * tokens * k["low_precision_cast_bytes"] / split / rates.bandwidth_bytes_per_s
        tally.roof(0.0, cast, fwd, False)
        tally.roof(0.0, cast, 1.0, True)


def _attention_time(tally: _Tally, job: TrainingJob, lay: Layout, op: Op, layers: float, tokens: float,
                    rates: _Rates, fw: Framework, g: LayerGroup) -> None:
    k = constants()
    fwd, sel = _passes(lay)
    keys = _keys_per_query(job, g, fw.flash_attention)
    t_c = layers * op.flop_per_pair * keys * tokens / lay.tp / rates.attention_flop_per_s
    if fw.flash_attention:
        bwd_factor, t_f, t_b = k["flash_backward_factor"], 0.0, 0.0
    else:  # scores, softmax and dropout tensors written to HBM (memory-bound, own kernels)
        scores = job.model.n_heads * keys * tokens / lay.tp * layers
        bwd_factor = 2.0
        t_f = scores * k["softmax_forward_bytes_per_score"] / rates.bandwidth_bytes_per_s
        t_b = scores * k["softmax_backward_bytes_per_score"] / rates.bandwidth_bytes_per_s
    tally.roof(t_c, 0.0, fwd + sel, False)
    tally.roof(0.0, t_f, fwd + sel, False)
    tally.roof(bwd_factor * t_c, 0.0, 1.0, True)
    tally.roof(0.0, t_b, 1.0, True)


def _layer_comm(tally: _Tally, job: TrainingJob, lay: Layout, g: LayerGroup, layers: float, tokens: float,
                fw: Framework, attn_s: float) -> None:
    """Exposed TP, EP and CP communication of ``layers`` layers for one micro-batch."""
    act = constants()["activation_bytes"]
    fwd, _ = _passes(lay)
    for c in layer_collectives(job.model, g, tp=lay.tp, ep=lay.ep, cp=lay.cp,
                               sequence_parallel=lay.sequence_parallel):
        # the backward pass moves the same volume again; under sequence parallelism it also
        # repeats each all-gather to rebuild the input the weight gradient needs, which is not
        # stored (Korthikanti et al. 2022 §4.2.2)
        passes = fwd + (2.0 if c.pattern == "allgather" else 1.0)
        if c.group == "tp":
            t = _collective_s(job, c.pattern, lay.tp, 1, c.elements_per_token * tokens * act)
            tally.tp_s += layers * passes * t * (1.0 - fw.tp_overlap)
        elif c.group == "ep":
            t = _collective_s(job, c.pattern, lay.ep, lay.tp * lay.cp, c.elements_per_token * tokens * act)
            tally.ep_s += layers * passes * t * (1.0 - fw.ep_overlap)
        else:  # ring attention: cp - 1 block hand-offs forward, K/V and their gradients backward
            local = _local(job, lay.tp) >= lay.cp
            link = job.chip.system.scale_up if local or job.chip.system.scale_out is None else job.chip.system.scale_out
            heads_split = 1 if job.model.is_mla else min(lay.tp, job.model.n_kv_heads)  # TP ranks hold their KV heads
            hop = float(p2p_s(link, c.elements_per_token / heads_split * tokens * act))
            t = layers * (lay.cp - 1) * hop * (fwd + 2.0)
            tally.cp_s += max(0.0, t - attn_s)


def _microbatch(job: TrainingJob, lay: Layout, eff: Efficiency, fw: Framework) -> _Tally:
    """Seconds of one micro-batch on one chip of the busiest stage (forward + backward)."""
    rates = _rates(job, eff, fw)
    tokens = lay.microbatch * job.seq_len / lay.cp
    tally = _Tally()
    for g in job.model.groups:
        layers = g.count / lay.pp
        for op in layer_ops(job.model, g):
            _op_time(tally, job, lay, op, layers, tokens, rates, fw, g)
        _layer_comm(tally, job, lay, g, layers, tokens, fw, _attention_s(job, lay, g, layers, tokens, rates, fw))
    for op in head_ops(job.model):
        _op_time(tally, job, lay, op, 1.0, tokens, rates, fw, job.model.groups[-1])
    return tally


def _attention_s(job: TrainingJob, lay: Layout, g: LayerGroup, layers: float, tokens: float,
                 rates: _Rates, fw: Framework) -> float:
    """Attention-core compute of ``layers`` layers (what ring-attention transfers hide behind)."""
    att = layer_op(job.model, g, "attention")
    flop = att.flop_per_pair * _keys_per_query(job, g, fw.flash_attention) * tokens / lay.tp
    bwd = constants()["flash_backward_factor"] if fw.flash_attention else 2.0
    return layers * flop * (1.0 + bwd) / rates.attention_flop_per_s


def _dp_comm_s(job: TrainingJob, lay: Layout, mb: _Tally, m: int, fw: Framework) -> float:
    """Exposed gradient reduction (and ZeRO parameter gathering) per step."""
    n = lay.dp * lay.cp
    if n <= 1:
        return 0.0
    dense, expert = stage_params(job.model, lay)
    if job.lora_rank:
        dense, expert = lora_params(job.model, job.lora_rank, lay), 0.0
    grad = constants()["activation_bytes"]
    n_e = max(1, n // lay.ep)

    def sync(pattern: str) -> float:
        return (_collective_s(job, pattern, n, lay.tp, dense * grad)
                + _collective_s(job, pattern, n_e, lay.tp * lay.ep, expert * grad))

    if lay.zero >= 3:  # FSDP: gather weights forward and backward, reduce-scatter gradients, per micro-batch
        per_mb = 3.0 * sync("reducescatter")
        window = mb.fwd_s + mb.bwd_s
        return m * max(per_mb - fw.dp_overlap * window, (1.0 - fw.dp_overlap) * per_mb)
    if lay.zero == 2:  # gradients reduce-scattered every micro-batch, weights gathered once per step
        per_mb = sync("reducescatter")
        exposed = m * max(per_mb - fw.dp_overlap * mb.bwd_s, (1.0 - fw.dp_overlap) * per_mb)
        gather = sync("reducescatter")
        return exposed + max(gather - fw.dp_overlap * mb.fwd_s, (1.0 - fw.dp_overlap) * gather)
    t = sync("allreduce")  # DDP all-reduce, or ZeRO-1's reduce-scatter + all-gather of the same bytes
    window = mb.bwd_s + (mb.fwd_s if lay.zero == 1 else 0.0)
    return max(t - fw.dp_overlap * window, (1.0 - fw.dp_overlap) * t)


def _optimizer_s(job: TrainingJob, lay: Layout, eff: Efficiency) -> float:
    dense, expert = stage_params(job.model, lay)
    params = lora_params(job.model, job.lora_rank, lay) if job.lora_rank else dense + expert
    if lay.zero >= 1:
        params /= lay.dp * lay.cp
    return params * constants()["optimizer_update_bytes_per_param"] / (eff.memory * job.chip.bandwidth_bytes_per_s)


def _pp_handoff_s(job: TrainingJob, lay: Layout, tokens: float) -> float:
    """Point-to-point sends of one micro-batch on one stage (forward activation, backward
    gradient, for each virtual stage), scattered over the TP ranks (Narayanan et al. §4.1)."""
    if lay.pp <= 1:
        return 0.0
    sysm = job.chip.system
    local = _local(job, lay.tp * lay.cp * lay.dp) >= 2
    link = sysm.scale_up if local or sysm.scale_out is None else sysm.scale_out
    msg = tokens * job.model.d_model * constants()["activation_bytes"] / lay.tp
    return 2.0 * lay.vp * float(p2p_s(link, msg))


def step_breakdown(job: TrainingJob, lay: Layout, eff: Efficiency, fw: Framework,
                   cache: dict | None = None) -> StepBreakdown:
    """One optimizer step of ``job`` under ``lay`` (see module docstring). ``cache`` shares the
    per-micro-batch timing between layouts of one job that differ only in DP or ZeRO stage."""
    key = replace(lay, dp=1, zero=0)
    mb = cache.get(key) if cache is not None else None
    if mb is None:
        mb = _microbatch(job, lay, eff, fw)
        if cache is not None:
            cache[key] = mb
    m = microbatches(job, lay)
    k = constants()
    kernels = k["kernels_per_layer"] * sum(g.count for g in job.model.groups) / lay.pp
    kernels *= 1.0 + (1.0 / 3.0 if lay.recompute == "full" else 0.0)
    launch = kernels * k["kernel_overhead"]
    handoff = _pp_handoff_s(job, lay, lay.microbatch * job.seq_len / lay.cp) * (1.0 - fw.pp_overlap)
    slot = mb.compute_s + mb.memory_s + mb.tp_s + mb.cp_s + mb.ep_s + launch + handoff
    bubble = (lay.pp - 1) / lay.vp * slot * fw.pp_bubble_factor
    return StepBreakdown(
        compute_s=m * mb.compute_s, memory_s=m * mb.memory_s, tp_comm_s=m * mb.tp_s,
        dp_comm_s=_dp_comm_s(job, lay, mb, m, fw), cp_comm_s=m * mb.cp_s, ep_comm_s=m * mb.ep_s,
        pp_bubble_s=bubble + m * handoff, optimizer_s=_optimizer_s(job, lay, eff),
        overhead_s=m * launch + fw.step_overhead_s)


def hardware_flop_per_token(job: TrainingJob, lay: Layout, model_flop: float) -> float:
    """FLOPs the chips execute per token, recomputation included (HFU numerator; Korthikanti
    et al. 2022 §5: full recomputation adds one forward pass, selective the attention core)."""
    if lay.recompute == "full":
        return model_flop * 4.0 / 3.0
    if lay.recompute == "selective":
        attn = sum(g.count * layer_op(job.model, g, "attention").flop_per_pair
                   * (min(job.seq_len, g.window) if g.window else job.seq_len) for g in job.model.groups)
        return model_flop + attn
    return model_flop
