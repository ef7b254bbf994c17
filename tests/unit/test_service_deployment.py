"""Service rows: the vendor's unit of deployment, its documented decoding, and the SN40L step.

Sources: system ``chips_per_node`` in ``hardware/data/systems``; SambaStack's model table and
speculative-decoding page (``validation/data/services.toml``); arXiv 2405.07518 for the fused,
pipelined SN40L decoder (``perf/dataflow.py``).
"""

from dataclasses import replace

import pytest

from siliconsim.hardware.catalog import load_chip, read_toml
from siliconsim.hardware.spec import BASES
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.planner.layouts import serving_unit_chips
from siliconsim.plans import plan_deployment
from siliconsim.validation.runner import run_case
from siliconsim.validation.speculation import SERVICES_FILE, as_served
from siliconsim.validation.suite import load_cases


@pytest.fixture(scope="module")
def cases():
    return {c.id: c for c in load_cases()}


@pytest.mark.parametrize(("chip_id", "model_id", "dtype"), [
    ("sn40l", "llama-3-8b", "bf16"), ("sn40l", "llama-3.1-405b", "bf16"), ("groq-lpu", "llama-3.1-8b", "int8"),
    ("cs-3", "llama-3.1-70b", "bf16"), ("h100-sxm", "llama-3.1-8b", "fp8")])
def test_the_unit_is_the_fewest_whole_nodes_that_hold_the_model(chip_id, model_id, dtype):
    chip, model = load_chip(chip_id), load_model(model_id)
    fewest = plan_deployment(model, chip, dtype=dtype, context_tokens=1500).deployment.chips
    unit = serving_unit_chips(model, chip, dtype, 1500)
    node = chip.system.chips_per_node
    assert unit % node == 0 and fewest <= unit < fewest + node


def test_a_model_no_system_holds_gives_the_planners_reason():
    plan = serving_unit_chips(load_model("llama-3.1-405b"), load_chip("h100-sxm"), "bf16", 1e9)
    assert not isinstance(plan, int) and not plan.feasible and plan.reason


def test_a_service_row_without_chips_runs_on_a_whole_sambarack(cases):
    res = run_case(cases["M0046"])  # Llama-3-8B fits one socket's HBM; SambaNova serves it on a rack
    assert res.covered and res.prediction.layout.startswith("16× sn40l") and res.prediction.chips_chosen
    assert not res.exceeds_bound


def test_sn40l_weight_stream_overlaps_the_dependent_chain():
    chip = load_chip("sn40l")
    big = estimate(load_model("llama-3.1-405b"), chip, Scenario(1, 1000, 500), chips=16, dtype="bf16")
    small = estimate(load_model("gpt-oss-120b"), chip, Scenario(1, 1000, 500), chips=16)
    for est, hidden in ((big, "network_s"), (small, "memory_s")):
        parts = est.breakdown()
        assert parts[hidden] == 0.0  # the shorter of the stream and the chain is hidden
        assert est.tpot_s == pytest.approx(sum(parts.values()))


def test_moe_layers_add_dispatch_and_combine_reductions():
    chip = load_chip("sn40l")
    moe = load_model("gpt-oss-120b")
    dense = replace(moe, groups=tuple(replace(g, moe=False) for g in moe.groups))
    net = [estimate(m, chip, Scenario(1, 1000, 500), chips=16).breakdown()["network_s"] for m in (moe, dense)]
    assert net[0] == pytest.approx(2.0 * net[1])  # 2 + 2 reductions per layer against 2


def test_service_practice_file_is_sourced():
    doc = read_toml(SERVICES_FILE)
    assert doc["meta"]["sources"] and doc["meta"]["retrieved"]
    for chip_id, table in doc.items():
        if chip_id == "meta":
            continue
        load_chip(chip_id)
        for key, entry in table.items():
            assert entry["basis"] in BASES and len(entry["source"]) > 40, f"{chip_id}.{key}"


def test_documented_speculation_applies_only_where_documented(cases):
    served, colocated = as_served(cases["M0044"])  # SambaNova Llama-3.1-70B, source silent on decoding
    assert served.speculative == "specdec" and colocated
    assert as_served(cases["M0046"]) == (cases["M0046"], False)  # Llama-3-8B: 'Optimizations: None'
    assert as_served(cases["M0001"]) == (cases["M0001"], False)  # no documented practice for cs-3
    mlperf_like = replace(cases["M0044"], scenario="offline", metric="aggregate_output_tok_s")
    assert as_served(mlperf_like)[0].speculative == "none"


def test_documented_speculation_lifts_the_plain_bound(cases):
    res = run_case(cases["M0044"])
    plain = run_case(replace(cases["M0044"], hardware="sn40l", model="llama-3.1-8b"))  # no practice for 8B
    assert res.covered and res.bound is None and "specdec assumed" in res.prediction.layout
    assert "on the target's chips" in res.prediction.layout
    assert "assumed" not in plain.prediction.layout
