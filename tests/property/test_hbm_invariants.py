"""Monotonicity invariants of the hbm family (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.hbm import HbmFamily
from siliconsim.perf.step import Parallel, Work
from siliconsim.plans import plan_deployment

FAMILY = HbmFamily()
MODELS = ["llama-3.1-8b", "mixtral-8x7b", "deepseek-r1", "gpt-oss-120b", "qwen3-32b"]
model_ids = st.sampled_from(MODELS)
tps = st.sampled_from([1, 2, 4, 8])
batches = st.integers(1, 512)
contexts = st.integers(1, 32768)
factors = st.floats(1.0, 8.0)
CHIP = load_chip("h100-sxm")


def _step(model, chip, tp, work):
    return float(FAMILY.step(load_model(model), chip, Parallel(tp=tp), "fp8", "fp8", work).latency_s)


@settings(max_examples=40, deadline=None)
@given(model_ids, tps, batches, contexts, factors)
def test_more_bandwidth_never_slows_decode(model, tp, batch, ctx, k):
    work = Work(decode_batch=batch, decode_context=ctx)
    assert _step(model, CHIP.scaled(bandwidth=k), tp, work) <= _step(model, CHIP, tp, work) * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(model_ids, tps, st.integers(1, 16384), factors)
def test_more_flops_never_slows_prefill(model, tp, tokens, k):
    work = Work(prefill_tokens=tokens, prefill_context=tokens / 2)
    assert _step(model, CHIP.scaled(flops=k), tp, work) <= _step(model, CHIP, tp, work) * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(model_ids, tps, batches, contexts, st.integers(1, 32768))
def test_longer_context_never_speeds_up_decode(model, tp, batch, ctx, extra):
    a = _step(model, CHIP, tp, Work(decode_batch=batch, decode_context=ctx))
    b = _step(model, CHIP, tp, Work(decode_batch=batch, decode_context=ctx + extra))
    assert b >= a * (1 - 1e-12)


@settings(max_examples=30, deadline=None)
@given(model_ids, batches, st.integers(128, 65536), factors)
def test_more_capacity_never_makes_a_feasible_plan_infeasible(model, batch, ctx, k):
    m = load_model(model)
    small = plan_deployment(m, CHIP, dtype="fp8", context_tokens=ctx, batch=batch)
    if small.feasible:
        big = plan_deployment(m, CHIP.scaled(capacity=k), dtype="fp8", context_tokens=ctx, batch=batch)
        assert big.feasible
        assert big.deployment.par.chips <= small.deployment.par.chips


@settings(max_examples=30, deadline=None)
@given(model_ids, st.sampled_from([2, 4, 8]), batches, contexts, factors)
def test_faster_links_never_slow_a_tp_step(model, tp, batch, ctx, k):
    work = Work(decode_batch=batch, decode_context=ctx)
    fast = CHIP.scaled(link_bandwidth=k, link_latency=1 / k)
    assert _step(model, fast, tp, work) <= _step(model, CHIP, tp, work) * (1 + 1e-12)
