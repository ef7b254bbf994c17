"""Invariants of the wafer family (hypothesis): capacity grows with wafers, and faster hardware
(lower hop or relay latency, faster clock, more SRAM bandwidth) never slows decode."""

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.perf.wafer import WaferFamily, WaferLayout
from siliconsim.plans import plan_deployment

FAM = WaferFamily()
MODELS = st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "qwen3-32b", "mixtral-8x7b"])
CHIPS = st.sampled_from(["cs-2", "cs-3"])
SETTINGS = settings(max_examples=25, deadline=None)


def _scaled(chip, **factors):
    return replace(chip, microarch={**chip.microarch, **{k: chip.microarch[k] * f for k, f in factors.items()}})


def _decode_s(model, chip, pp, batch, context):
    return float(FAM.step(model, chip, WaferLayout(pp=pp), "bf16", "bf16",
                          Work(decode_batch=batch, decode_context=context)).latency_s)


@SETTINGS
@given(MODELS, CHIPS, st.integers(1, 16), st.integers(1, 8))
def test_more_wafers_never_give_less_capacity(model_id, chip_id, pp, extra):
    model, chip = load_model(model_id), load_chip(chip_id)
    cap = []
    for n in (pp, pp + extra):
        fit = FAM.fit(model, chip, WaferLayout(pp=n), "bf16", "bf16", 1, 4096)
        cap.append(fit.free_for_kv_bytes / FAM.kv_bytes_per_token_per_chip(model, WaferLayout(pp=n), "bf16", 4096))
    assert cap[1] >= cap[0]


@SETTINGS
@given(MODELS, CHIPS, st.sampled_from(["hop_latency_cycles", "relay_latency_cycles"]), st.floats(0.1, 0.99),
       st.integers(1, 32), st.floats(128, 8192))
def test_lower_hop_or_relay_latency_never_slows_decode(model_id, chip_id, key, factor, batch, context):
    model, chip = load_model(model_id), load_chip(chip_id)
    pp = FAM.min_wafers(model, chip, "bf16")
    assert _decode_s(model, _scaled(chip, **{key: factor}), pp, batch, context) <= _decode_s(model, chip, pp, batch, context) * (1 + 1e-12)


@SETTINGS
@given(MODELS, CHIPS, st.sampled_from(["clock_hz", "sram_bytes_per_cycle", "simd_fp16_lanes", "io_bandwidth_bytes_per_s"]),
       st.floats(1.01, 4.0), st.integers(1, 64), st.floats(128, 8192))
def test_faster_clock_or_more_bandwidth_never_slows_decode(model_id, chip_id, key, factor, batch, context):
    model, chip = load_model(model_id), load_chip(chip_id)
    pp = FAM.min_wafers(model, chip, "bf16")
    assert _decode_s(model, _scaled(chip, **{key: factor}), pp, batch, context) <= _decode_s(model, chip, pp, batch, context) * (1 + 1e-12)


@SETTINGS
@given(MODELS, CHIPS, st.integers(1, 3), st.integers(1, 512), st.sampled_from([8192, 32768, 131072]))
def test_a_model_that_does_not_fit_gets_a_verdict_naming_the_shortfall(model_id, chip_id, chips, batch, context):
    plan = plan_deployment(load_model(model_id), load_chip(chip_id), chips=chips, batch=batch, context_tokens=context)
    if not plan.feasible:
        assert "needs" in plan.reason and ("GB" in plan.reason or "MB" in plan.reason)
    else:
        par = plan.deployment.par
        fit = plan.deployment.memory
        assert fit.fits and (not par.streaming or "wafers" in par.note or "KV" in par.note)


@SETTINGS
@given(MODELS, st.floats(1, 64))
def test_step_accepts_arrays(model_id, batch):
    model, chip = load_model(model_id), load_chip("cs-3")
    pp = FAM.min_wafers(model, chip, "bf16")
    b = np.array([1.0, batch])
    cost = FAM.step(model, chip, WaferLayout(pp=pp), "bf16", "bf16", Work(decode_batch=b, decode_context=2048.0))
    lat = np.asarray(cost.latency_s)
    assert lat.shape == (2,) and np.all(lat > 0) and np.all(np.asarray(cost.interval_s) <= lat * (1 + 1e-12))
