"""Dataflow family: Groq SRAM-only pipeline and SambaNova SN40L tiers."""

import pytest

from siliconsim.audit import physical_bound_tok_s
from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.perf.dataflow import DataflowFamily, hop_depth
from siliconsim.plans import plan_deployment


def test_groq_chip_count_comes_from_capacity():
    model, chip = load_model("llama-3.1-70b"), load_chip("groq-lpu")
    dep = plan_deployment(model, chip, dtype="int8", context_tokens=1500).deployment
    usable = chip.tier("sram").capacity_bytes * DataflowFamily().k["sram_usable_fraction"]
    need = model.weight_bytes("int8") / usable
    assert need <= dep.chips <= need + 5


def test_groq_has_no_contention_term_and_hops_cost_latency():
    est = estimate(load_model("llama-3.1-8b"), load_chip("groq-lpu"), Scenario(1, 1000, 500), dtype="int8")
    assert est.breakdown()["network_s"] > 0
    assert hop_depth(1, 8) == 0 and hop_depth(8, 8) == 1 and hop_depth(64, 8) == 2 and hop_depth(65, 8) == 3


def test_groq_prompt_activations_cross_every_chips_own_link():
    """A layer spread over n_l chips hands its prompt's activations on in n_l slices, one per chip and
    link: the network time of a 2,048-token prefill is bounded by every hop moving 1/n_l of them over
    one 14 GB/s link, not the whole prompt over one link (which took ~0.2 s on gpt-oss-120b)."""
    model, chip = load_model("gpt-oss-120b"), load_chip("groq-lpu")
    est = estimate(model, chip, Scenario(1, 2048, 28))
    n = est.deployment.par.chips
    n_l = n / model.n_layers  # chips per layer, about (the planner splits weights, not layers, evenly)
    k = DataflowFamily().k
    hops = 1 + k["tp_allreduces_per_layer"] * hop_depth(n_l, chip.system.chips_per_node) + k["moe_extra_hops"]
    slice_s = 2048 * model.d_model * k["activation_bytes"] / n_l / chip.microarch["c2c_link_bandwidth_bytes_per_s"]
    bound = model.n_layers * hops * (chip.microarch["c2c_hop_latency_s"] + slice_s)
    assert 0 < float(est.prefill.network_s) <= 1.5 * bound
    assert float(est.prefill.network_s) < 0.05  # the whole prompt over one link per hop would take ~0.2 s


def test_sn40l_decode_is_hbm_bound_and_physical():
    model, chip = load_model("llama-3.1-405b"), load_chip("sn40l")
    est = estimate(model, chip, Scenario(1, 1000, 500), chips=16, dtype="bf16")
    bound, why = physical_bound_tok_s(model, chip, 16, "bf16")
    assert est.output_tok_s_per_user < bound < 129  # the published 129 tok/s exceeds 16 sockets of HBM
    assert "HBM" in why and "25.6 TB/s" in why


def test_sn40l_spills_to_ddr_when_forced_onto_too_few_sockets():
    model, chip = load_model("llama-3.1-70b"), load_chip("sn40l")
    hbm = estimate(model, chip, Scenario(1, 1000, 500), chips=4)
    ddr = estimate(model, chip, Scenario(1, 1000, 500), chips=2)
    assert ddr.feasible and hbm.feasible
    assert ddr.tpot_s > 3 * hbm.tpot_s  # DDR at 100 GB/s per socket becomes the bound
    bound, why = physical_bound_tok_s(model, chip, 2, "bf16")
    assert "DDR" in why


def test_sn40l_without_chips_does_not_choose_ddr():
    dep = plan_deployment(load_model("llama-3.1-70b"), load_chip("sn40l")).deployment
    assert not dep.par.spill and dep.chips >= 3
