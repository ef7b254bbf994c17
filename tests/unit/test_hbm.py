"""Unit checks of the hbm family against hand arithmetic."""

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.collectives import allreduce_s, alltoall_s, p2p_s, reducescatter_s
from siliconsim.perf.step import Work
from siliconsim.plans import plan_deployment


@pytest.fixture(scope="module")
def llama8b_h100():
    return plan_deployment(load_model("llama-3.1-8b"), load_chip("h100-sxm"), dtype="bf16",
                           context_tokens=2048).deployment


def test_batch1_decode_is_memory_bound_near_weights_over_bandwidth(llama8b_h100):
    dep = llama8b_h100
    cost = dep.step(Work(decode_batch=1, decode_context=1024))
    # every weight is read once, except the input embedding table (only the looked-up rows)
    read = dep.model.weight_bytes("bf16") - dep.model.vocab_size * dep.model.d_model * 2
    floor = read / (dep.chip.efficiency["memory"] * dep.chip.bandwidth_bytes_per_s)
    # compute shows only as the share of it the chip's (fitted) overlap leaves exposed under the reads
    assert float(cost.compute_s) < 0.01 * float(cost.memory_s)
    assert float(cost.memory_s) == pytest.approx(floor, rel=0.05)  # weights dominate; KV and activations add a little


def test_long_prefill_is_compute_bound(llama8b_h100):
    cost = llama8b_h100.step(Work(prefill_tokens=8192, prefill_context=4096))
    assert float(cost.compute_s) > 10 * float(cost.memory_s)


def test_vectorised_step_matches_scalar(llama8b_h100):
    batches = np.array([1.0, 16.0, 256.0])
    vec = llama8b_h100.step(Work(decode_batch=batches, decode_context=1000.0)).latency_s
    for b, v in zip(batches, vec):
        assert float(llama8b_h100.step(Work(decode_batch=b, decode_context=1000.0)).latency_s) == pytest.approx(v)


def test_tensor_parallel_adds_two_allreduces_per_layer():
    model, chip = load_model("llama-3.1-70b"), load_chip("h100-sxm")
    dep = plan_deployment(model, chip, chips=8, dtype="fp8", context_tokens=2048).deployment
    assert dep.par.tp == 8
    cost = dep.step(Work(decode_batch=1, decode_context=1024))
    from dataclasses import replace

    link = chip.system.scale_up  # at the chip's fitted share of the link's efficiency (``network``)
    link = replace(link, efficiency=link.efficiency * chip.efficiency.get("network", 1.0))
    per = allreduce_s(link, 8, model.d_model * 2.0)
    assert float(cost.network_s) == pytest.approx(2 * model.n_layers * per)


@pytest.mark.parametrize("algorithm", ["ring", "tree", "oneshot"])
def test_a_links_base_latency_is_paid_once_per_collective(algorithm):
    from dataclasses import replace

    link = replace(load_chip("h100-sxm").system.scale_up, algorithm=algorithm)
    based = replace(link, base_latency_s=14e-6)
    for f in (lambda lk: allreduce_s(lk, 8, 1e6), lambda lk: alltoall_s(lk, 8, 1e6),
              lambda lk: reducescatter_s(lk, 8, 1e6), lambda lk: p2p_s(lk, 1e6)):
        assert f(based) - f(link) == pytest.approx(14e-6)
    assert allreduce_s(based, 1, 1e6) == 0.0


def test_moe_decode_reads_only_touched_experts():
    model, chip = load_model("mixtral-8x7b"), load_chip("h100-sxm")
    dep = plan_deployment(model, chip, chips=2, dtype="fp8", context_tokens=2048).deployment
    t1 = float(dep.step(Work(decode_batch=1, decode_context=512)).memory_s)
    t256 = float(dep.step(Work(decode_batch=256, decode_context=512)).latency_s)
    active_floor = model.active_params / dep.par.chips / (chip.efficiency["memory"] * chip.bandwidth_bytes_per_s)
    total_floor = model.total_params / dep.par.chips / (chip.efficiency["memory"] * chip.bandwidth_bytes_per_s)
    assert active_floor * 0.9 < t1 < total_floor  # batch 1 touches 2 of 8 experts per layer
    assert t256 > total_floor  # a big batch touches them all


def test_dp_attention_uses_all_to_all_and_keeps_one_copy_of_mla_kv():
    from siliconsim.perf.hbm import HbmFamily
    from siliconsim.perf.step import Parallel

    fam, model, chip = HbmFamily(), load_model("deepseek-r1"), load_chip("b200")
    tp, dp = Parallel(tp=8, ep=8), Parallel(tp=8, ep=8, attn_dp=True)
    # MLA's latent KV is replicated on every TP rank but split across DP-attention ranks
    assert fam.kv_bytes_per_token_per_chip(model, tp, "fp8") == pytest.approx(
        8 * fam.kv_bytes_per_token_per_chip(model, dp, "fp8"))
    # replicated attention weights cost memory; experts are still split
    assert fam.weights_per_chip_bytes(model, dp, "fp4") > fam.weights_per_chip_bytes(model, tp, "fp4")
    assert fam.weights_per_chip_bytes(model, dp, "fp4") < model.weight_bytes("fp4") / 2
    work = Work(decode_batch=256, decode_context=4096)
    assert float(fam.step(model, chip, dp, "fp4", "fp8", work).network_s) > 0


def _with_moe_efficiency(chip, value):
    """The chip with its expert kernels' compute and streaming fractions both at ``value``."""
    from dataclasses import replace
    return replace(chip, efficiency={**chip.efficiency, "moe": value, "moe_memory": value})


@pytest.mark.parametrize("work", [Work(decode_batch=1, decode_context=1024), Work(decode_batch=512, decode_context=1024),
                                  Work(prefill_tokens=4096, prefill_context=2048)])
def test_expert_kernel_efficiency_scales_only_the_expert_operator(work):
    """Halving ``moe`` and ``moe_memory`` adds exactly the expert GEMMs' time once more; a dense
    model ignores them."""
    h100 = load_chip("h100-sxm")
    moe, dense = load_model("mixtral-8x7b"), load_model("llama-3.1-8b")
    fast, slow = (plan_deployment(moe, _with_moe_efficiency(h100, e), dtype="fp8", context_tokens=4096).deployment
                  for e in (0.8, 0.4))
    t_fast, t_slow = float(fast.step(work).latency_s), float(slow.step(work).latency_s)
    assert t_fast < t_slow < 2.0 * t_fast  # the attention and dense parts do not double
    d1, d2 = (plan_deployment(dense, _with_moe_efficiency(h100, e), dtype="fp8", context_tokens=4096).deployment
              for e in (0.8, 0.4))
    assert float(d1.step(work).latency_s) == pytest.approx(float(d2.step(work).latency_s))


def test_expert_streaming_waits_for_the_busiest_expert_parallel_rank():
    """DeepSeek-R1 on 8 H200: with experts spread over 8 ranks (EP8) a small decode step waits for
    the rank that reads the most experts, so it is slower than with every expert split 8 ways (EP1);
    at a large batch every rank reads all its experts and the two read the same bytes."""
    from siliconsim.perf.step import Parallel
    from siliconsim.plans.deploy import fit_layout

    model, chip = load_model("deepseek-r1"), load_chip("h200")
    ep8, ep1 = (fit_layout(model, chip, Parallel(tp=8, ep=e), "fp8", "fp8", 2048) for e in (8, 1))
    small, large = Work(decode_batch=4, decode_context=1024), Work(decode_batch=1024, decode_context=1024)
    assert float(ep8.step(small).memory_s) > 1.2 * float(ep1.step(small).memory_s)
    assert float(ep8.step(large).memory_s) == pytest.approx(float(ep1.step(large).memory_s), rel=0.02)


def test_expert_streaming_fraction_scales_only_memory_bound_expert_reads():
    """``moe_memory`` slows a decode step (expert weights streamed) and leaves a compute-bound
    long prefill of a dense model unchanged."""
    from dataclasses import replace

    h200 = load_chip("h200")
    slow = replace(h200, efficiency={**h200.efficiency, "moe_memory": 0.5})
    model = load_model("mixtral-8x7b")
    work = Work(decode_batch=8, decode_context=1024)
    fast_dep, slow_dep = (plan_deployment(model, c, dtype="fp8", context_tokens=4096).deployment for c in (h200, slow))
    assert float(slow_dep.step(work).latency_s) > 1.2 * float(fast_dep.step(work).latency_s)
    dense = load_model("llama-3.1-8b")
    pre = Work(prefill_tokens=8192, prefill_context=4096)
    d1, d2 = (plan_deployment(dense, c, dtype="fp8", context_tokens=8192).deployment for c in (h200, slow))
    assert float(d1.step(pre).latency_s) == float(d2.step(pre).latency_s)


def test_kv_read_fraction_scales_the_attention_kv_reads_only():
    """``kv_memory`` scales the attention core's KV-cache reads: halving it adds exactly the KV read
    time to a memory-bound long-context decode step (weights untouched) and leaves a step with no
    KV to read (prefill of a fresh prompt at batch 1 is dominated by weights and compute) nearly alone."""
    from dataclasses import replace

    h200 = load_chip("h200")
    slow = replace(h200, efficiency={**h200.efficiency, "kv_memory": 0.5})
    model = load_model("llama-3.1-8b")
    fast_dep, slow_dep = (plan_deployment(model, c, dtype="fp8", context_tokens=32768).deployment for c in (h200, slow))
    short, long = Work(decode_batch=64, decode_context=128), Work(decode_batch=64, decode_context=16384)
    gap_short = float(slow_dep.step(short).latency_s) - float(fast_dep.step(short).latency_s)
    gap_long = float(slow_dep.step(long).latency_s) - float(fast_dep.step(long).latency_s)
    kv_bytes = 64 * 16384 * 32 * 8 * 128 * 2 * 1.0  # batch x context x layers x KV heads x head dim x K,V x fp8
    read_s = kv_bytes / (h200.efficiency["memory"] * h200.bandwidth_bytes_per_s)
    # from the chip's own (fitted) KV fraction down to 0.5: the read time grows by 1/0.5 - 1/kv
    assert gap_long == pytest.approx(read_s * (2.0 - 1.0 / h200.efficiency.get("kv_memory", 1.0)), rel=0.05)
    assert 0 <= gap_short < 0.02 * gap_long


def test_network_factor_scales_only_the_collectives():
    """``network`` multiplies the scale-up link's bandwidth efficiency in the layer collectives: a
    TP8 step's network seconds grow by the all-reduces' bandwidth term, compute and memory stay, and a
    one-chip step (no collectives) does not change."""
    from dataclasses import replace

    from siliconsim.perf.step import Parallel
    from siliconsim.plans import fit_layout

    catalog = load_chip("h100-sxm")
    h100, slow = (replace(catalog, efficiency={**catalog.efficiency, "network": f}) for f in (1.0, 0.5))
    model = load_model("llama-3.1-70b")
    work = Work(decode_batch=256, decode_context=1024)
    tp8 = [fit_layout(model, c, Parallel(tp=8), "fp8", "fp8", 2048) for c in (h100, slow)]
    fast, slow_step = (d.step(work) for d in tp8)
    assert float(slow_step.compute_s) == float(fast.compute_s) and float(slow_step.memory_s) == float(fast.memory_s)
    link = h100.system.scale_up
    msg = 256 * model.d_model * 2.0  # bf16 activations per all-reduce
    bw_term = 2 * 7 / 8 * msg / (link.efficiency * link.bandwidth_bytes_per_s)  # at the catalog efficiency
    # halving the efficiency adds one more bandwidth term per collective, two all-reduces per layer
    assert float(slow_step.network_s) - float(fast.network_s) == pytest.approx(2 * model.n_layers * bw_term, rel=0.02)
    one = [fit_layout(load_model("llama-3.1-8b"), c, Parallel(tp=1), "fp8", "fp8", 2048) for c in (h100, slow)]
    assert float(one[0].step(work).latency_s) == float(one[1].step(work).latency_s)


def test_overlap_exposes_part_of_the_shorter_roofline_term_only():
    """``overlap`` is the share of each operator's shorter roofline term (compute or memory) hidden
    under the longer: 1 is the ideal roofline (max); below 1 the rest adds. A batch-1 decode step
    (memory-bound, little compute) barely moves, a decode step near the ridge point (compute and
    memory alike) moves most, and at 0 every operator is the sum of its two terms."""
    from dataclasses import replace

    from siliconsim.perf.hbm import _Roofline

    roof = _Roofline(0.25)
    roof.add(4.0, 2.0)
    roof.add(1.0, 3.0, times=2)
    assert (roof.compute_s, roof.memory_s) == pytest.approx((4.0 + 2 * 0.25 * 1.0, 0.25 * 2.0 + 2 * 3.0))
    vec = _Roofline(0.25)
    vec.add(np.array([4.0, 1.0]), np.array([2.0, 3.0]))
    assert vec.compute_s == pytest.approx([4.0, 0.25]) and vec.memory_s == pytest.approx([0.5, 3.0])

    h100 = load_chip("h100-sxm")
    model = load_model("llama-3.1-70b")
    ideal, partial = (plan_deployment(model, replace(h100, efficiency={**h100.efficiency, "overlap": o}),
                                      dtype="fp8", context_tokens=2048).deployment for o in (1.0, 0.5))
    def rise(work):
        return float(partial.step(work).latency_s) / float(ideal.step(work).latency_s) - 1.0
    batch1, ridge = Work(decode_batch=1, decode_context=1024), Work(decode_batch=512, decode_context=1024)
    assert 0 <= rise(batch1) < 0.02 < 0.10 < rise(ridge) < 0.5
