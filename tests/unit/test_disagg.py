"""Disaggregated prefill/decode pools in a closed loop (serving/disagg.py): the KV transfer by hand,
the steady state against hand calculation, Little's law and the event engine, and the reasons
when a system cannot run."""

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Parallel, Work
from siliconsim.plans import fit_layout
from siliconsim.serving.closed_loop import closed_loop_point, closed_loop_requests
from siliconsim.serving.config import ServeConfig
from siliconsim.serving.disagg import Pools, disaggregated_point, kv_transfer_s, plan_pools, pool_link
from siliconsim.serving.engine import simulate
from siliconsim.serving.metrics import latencies_s
from siliconsim.serving.step_model import DeploymentStepModel

I, O = 1000.0, 200.0


def _r1(hw: str = "h200", par: Parallel = Parallel(tp=8, ep=8, attn_dp=True)):
    return fit_layout(load_model("deepseek-r1"), load_chip(hw), par, "fp8", "fp8", 2048.0)


def _small(tp: int = 1):
    """Llama-3.1-8B on H100s with no API first-token latency: the event engine has none, so the
    comparisons with it check the pools' mechanics alone."""
    from dataclasses import replace

    h100 = load_chip("h100-sxm")
    chip = replace(h100, efficiency={**h100.efficiency, "api_overhead": 0.0})
    return fit_layout(load_model("llama-3.1-8b"), chip, Parallel(tp=tp), "bf16", "bf16", I + O)


def _pools(dep, p: int = 1, d: int = 1) -> Pools:
    return Pools(dep, p, dep, d, *pool_link(dep.chip, (p + d) * dep.par.chips))


# ---- the KV link ---------------------------------------------------------------------------------

def test_kv_transfer_by_hand_on_nvlink_and_infiniband():
    """DeepSeek-V3/R1 MLA caches a 512-dim latent plus 64 RoPE dims per layer, 61 layers
    (DeepSeek-V3 report, arXiv:2412.19437, section 2.1): 35,136 bytes per token in FP8. A
    1000-token prompt is 35.1 MB; one decode chip (DP attention) receives it over its own port.
    Inside one 8-GPU HGX H200 it moves over NVLink 4 (450 GB/s per direction x 0.8, 4 us);
    16 GPUs span two nodes, so over InfiniBand NDR (50 GB/s x 0.8, 12 us): link catalog values."""
    dep = _r1()
    assert dep.model.kv_bytes_per_token("fp8") == 61 * 576
    inside = Pools(dep, 1, dep, 1, *pool_link(dep.chip, 8))
    across = Pools(dep, 1, dep, 1, *pool_link(dep.chip, 16))
    assert (inside.link.id, inside.link_scope, across.link.id, across.link_scope) == (
        "nvlink4", "scale-up", "ib-ndr", "scale-out")
    assert kv_transfer_s(inside, 1000) == pytest.approx(4e-6 + 35.136e6 / (0.8 * 450e9), rel=1e-9)
    assert kv_transfer_s(across, 1000) == pytest.approx(12e-6 + 35.136e6 / (0.8 * 50e9), rel=1e-9)


# ---- the steady state ----------------------------------------------------------------------------

def test_one_request_in_flight_by_hand():
    """N = 1: the request cycles alone. Prefill residence t_p (1 + u / 2) with u = x t_p the
    prefill replica's busy share, then the transfer, then O decode steps at batch 1:
    x = 1 / (R_p + T_kv + O t_d). Solved here by fixed-point iteration, independently."""
    dep = _small()
    pools = _pools(dep)
    t_p = float(dep.step(Work(prefill_tokens=I, prefill_context=I / 2)).latency_s)
    t_d = float(dep.step(Work(decode_batch=1, decode_context=I + O / 2)).latency_s)
    t_kv = kv_transfer_s(pools, I)
    x = 0.0
    for _ in range(100):
        x = 1.0 / (t_p * (1 + x * t_p / 2) + t_kv + O * t_d)
    pt = disaggregated_point(pools, 1, I, O)
    assert pt.feasible and pt.bound == ""
    assert pt.output_tok_s == pytest.approx(x * O, rel=1e-3)
    assert pt.tpot_s == pytest.approx(t_d, rel=1e-3)
    assert pt.ttft_s == pytest.approx(t_p * (1 + x * t_p / 2) + t_kv + t_d, rel=1e-3)


@pytest.mark.parametrize("n", [1, 4, 32, 128, 512])
def test_littles_law_holds_at_every_load(n):
    """N = request throughput x (TTFT + (O - 1) TPOT); 1% for the interpolation on the batch grid."""
    pt = disaggregated_point(_pools(_small(), 1, 2), n, I, O)
    assert pt.request_s * (pt.ttft_s + (O - 1) * pt.tpot_s) == pytest.approx(n, rel=0.01)


def test_full_decode_slots_cap_throughput_and_the_rest_wait_before_the_first_token():
    pools = _pools(_small(), 2, 1)
    cfg = ServeConfig(max_batch=16)
    at_cap, beyond = (disaggregated_point(pools, n, I, O, cfg) for n in (64, 256))
    assert at_cap.bound == beyond.bound == "decode slots"
    assert at_cap.in_service <= 16 and beyond.output_tok_s == pytest.approx(at_cap.output_tok_s)
    assert beyond.tpot_s == pytest.approx(at_cap.tpot_s)
    assert beyond.queue_s > 3 * at_cap.queue_s > 0  # more requests, longer wait for a slot


def test_disaggregation_removes_prefill_interference_from_tpot():
    """The same 8-GPU DeepSeek-R1 replica decoding 64 requests: aggregated, every request's prefill
    is chunked in between the running batch's steps; disaggregated, the decode pool only decodes."""
    dep = _r1()
    agg = closed_loop_point(dep, 64, 921.6, 921.6)
    dis = disaggregated_point(_pools(dep), 64, 921.6, 921.6)
    plain = float(dep.step(Work(decode_batch=dis.in_service, decode_context=921.6 * 1.5)).latency_s)
    assert dis.tpot_s == pytest.approx(plain, rel=1e-3)
    assert dis.tpot_s < agg.tpot_s


@pytest.mark.parametrize("p, d, n", [(1, 1, 4), (1, 1, 128), (1, 2, 32), (2, 1, 512)])
def test_closed_form_matches_the_event_engine(p, d, n):
    """Both pools on one layout, which the engine's ``disaggregate=(P, D)`` expresses. Llama-3.1-8B
    on H100, 1000 in / 200 out, 10 N requests. The engine emits the first token at the end of the
    prefill and queues requests for a full decode pool after it (in TPOT), the closed form before
    it (in TTFT, as engines that reserve decode KV before the prefill do), so end-to-end latency is
    compared, with throughput. Tolerances: 12% on throughput (the engine's burst start and final
    drain), 8% on end-to-end latency (0-3% apart), 5% on TPOT where no request
    waits for a decode slot (0-1% apart). Throughput: 12% (2-10.2% apart: the 1P1D point at 128 in
    flight spends the most of its run in the start burst and the drain)."""
    dep = _small()
    cfg = ServeConfig(disaggregate=(p, d))
    cf = disaggregated_point(_pools(dep, p, d), n, I, O, cfg)
    res = simulate(DeploymentStepModel(dep, dep.kv_dtype), closed_loop_requests(n, I, O, rng=np.random.default_rng(0)), cfg)
    ok = res.completed
    assert ok.all() and cf.feasible
    lat = latencies_s(res)
    sim_tput = float(res.output_tokens.sum()) / float(res.finish_s.max() - res.arrival_s.min())
    sim_e2e = float(np.median(lat["ttft"])) + (O - 1) * float(np.nanmedian(lat["tpot"]))
    assert cf.output_tok_s == pytest.approx(sim_tput, rel=0.12)
    assert cf.ttft_s + (O - 1) * cf.tpot_s == pytest.approx(sim_e2e, rel=0.08)
    if cf.bound != "decode slots":
        assert cf.tpot_s == pytest.approx(float(np.nanmedian(lat["tpot"])), rel=0.05)


# ---- layouts and reasons -------------------------------------------------------------------------

def test_pools_take_the_decode_layout_given_and_count_both_pools():
    model, chip = load_model("deepseek-r1"), load_chip("b200")
    pools = plan_pools(model, chip, 8, 16, dtype="fp4", kv_dtype="fp8", input_tokens=921.6, output_tokens=921.6,
                       decode_par=Parallel(tp=8, ep=8, attn_dp=True))
    assert not isinstance(pools, str)
    assert (pools.prefill_chips, pools.decode_chips, pools.chips, pools.decode_replicas) == (8, 16, 24, 2)
    assert pools.decode.par == Parallel(tp=8, ep=8, attn_dp=True) and pools.link.id == "ib-ndr"
    assert "8P16D" in pools.describe() and "prefill" in pools.describe()


def test_systems_that_cannot_run_say_why():
    model, chip = load_model("deepseek-r1"), load_chip("h200")
    one = plan_pools(model, chip, 1, 1, dtype="fp8", kv_dtype="fp8", input_tokens=I, output_tokens=O)
    assert isinstance(one, str) and one.startswith("decode pool:")
    odd = plan_pools(model, chip, 8, 12, dtype="fp8", kv_dtype="fp8", input_tokens=I, output_tokens=O,
                     decode_par=Parallel(tp=8, ep=8))
    assert isinstance(odd, str) and "does not divide 12 decode chips" in odd
    huge = disaggregated_point(_pools(_small()), 8, 5e6, O)  # the replica was fitted for 1.2k tokens
    assert not huge.feasible and "holds no" in huge.reason and np.isnan(huge.output_tok_s)
