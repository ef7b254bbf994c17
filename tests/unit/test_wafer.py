"""Wafer family: mesh collectives, region tiling, pipelining, weight streaming."""

import math

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.perf.wafer import Mesh, WaferFamily, WaferLayout, allreduce_cycles
from siliconsim.plans import plan_deployment


@pytest.fixture(scope="module")
def fam():
    return WaferFamily()


def test_ktree_allreduce_is_alpha_hops_plus_beta_relays_plus_words(fam):
    mesh = Mesh.of(load_chip("cs-2"))
    n, words = 400.0, 30.0
    want = mesh.alpha_cycles * n + mesh.beta_cycles * 2 * math.sqrt(n) / 2 + words
    assert allreduce_cycles(mesh, n, words, fam.k) == pytest.approx(want)


def test_mesh_comes_from_the_microarch_table():
    mesh = Mesh.of(load_chip("cs-3"))
    assert (mesh.ux, mesh.uy) == (755, 1170)
    assert mesh.lanes == 8 and mesh.sram_per_pe_bytes == 48 * 1024


def test_8b_fits_one_cs3_and_70b_needs_four(fam):
    assert plan_deployment(load_model("llama-3.1-8b"), load_chip("cs-3")).deployment.chips == 1
    assert fam.min_wafers(load_model("llama-3.1-70b"), load_chip("cs-3"), "bf16") == 4
    assert plan_deployment(load_model("llama-3.1-70b"), load_chip("cs-3")).deployment.chips == 4


def test_decode_is_mesh_latency_bound_not_sram_bandwidth_bound():
    est = estimate(load_model("llama-3.1-8b"), load_chip("cs-3"), Scenario(1, 1000, 500))
    b = est.breakdown()
    assert b["network_s"] > 0.5 * sum(b.values())
    sram_bound_s = load_model("llama-3.1-8b").decode_read_bytes("bf16") / 21e15
    assert est.tpot_s > 100 * sram_bound_s  # the 21 PB/s would predict ~1.4M tok/s


def test_pipelined_batch_gives_about_stages_times_the_per_user_rate(fam):
    model, chip = load_model("llama-3.1-70b"), load_chip("cs-3")
    dep = plan_deployment(model, chip, batch=64, context_tokens=1500).deployment
    one = dep.step(Work(decode_batch=1.0, decode_context=1250.0))
    many = dep.step(Work(decode_batch=np.array([4.0, 16.0]), decode_context=1250.0))
    per_user_1 = 1.0 / float(one.latency_s)
    agg = np.array([4.0, 16.0]) / np.asarray(many.latency_s)
    assert np.all(agg > 3.0 * per_user_1)  # concurrent users fill the layer pipeline
    assert float(one.interval_s) < float(one.latency_s)  # another request can enter before the first leaves


def test_prefill_only_step_has_no_decode_cost(fam):
    model, chip = load_model("llama-3.1-8b"), load_chip("cs-3")
    dep = plan_deployment(model, chip).deployment
    pre = dep.step(Work(prefill_tokens=1000.0, prefill_context=500.0))
    both = dep.step(Work(prefill_tokens=1000.0, prefill_context=500.0, decode_batch=1.0, decode_context=500.0))
    assert float(both.latency_s) > float(pre.latency_s) > 0


def test_too_few_wafers_streams_weights_slowly_and_says_why():
    model, chip = load_model("llama-3.1-70b"), load_chip("cs-3")
    plan = plan_deployment(model, chip, chips=1)
    assert plan.feasible
    par = plan.deployment.par
    assert isinstance(par, WaferLayout) and par.streaming
    assert "MemoryX" in plan.deployment.describe() and ">= 4 wafers" in plan.deployment.describe()
    streaming = estimate(model, chip, Scenario(1, 1000, 500), chips=1)
    resident = estimate(model, chip, Scenario(1, 1000, 500), chips=4)
    assert streaming.tpot_s > 50 * resident.tpot_s
    io_bound_s = 141e9 / chip.microarch["io_bandwidth_bytes_per_s"]
    assert streaming.tpot_s == pytest.approx(io_bound_s, rel=0.1)


def test_resident_layout_is_preferred_when_it_fits():
    plan = plan_deployment(load_model("llama-3.1-70b"), load_chip("cs-3"), chips=4)
    assert not plan.deployment.par.streaming


def test_kv_cache_in_sram_caps_batch_times_context():
    model, chip = load_model("llama-3.1-70b"), load_chip("cs-3")
    plan = plan_deployment(model, chip, chips=4, batch=64, context_tokens=131072)
    assert not plan.feasible
    assert "KV cache needs" in plan.reason and "GB" in plan.reason
    more = plan_deployment(model, chip, batch=64, context_tokens=131072)  # more wafers hold it
    assert more.feasible and more.deployment.chips > 4


def test_wafer_physical_bound_is_above_the_prediction(fam):
    model, chip = load_model("llama-3.1-8b"), load_chip("cs-3")
    bound, why = fam.physical_bound_tok_s(model, chip, 1, "bf16")
    est = estimate(model, chip, Scenario(1, 1000, 500))
    assert bound > est.output_tok_s_per_user and why
