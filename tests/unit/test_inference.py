import numpy as np
import pytest

from siliconsim.accounting import account, default_assumptions
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate, max_throughput, sweep
from siliconsim.models.catalog import load_model


@pytest.fixture(scope="module")
def est():
    return estimate(load_model("llama-3.1-8b"), load_chip("h100-sxm"), Scenario(8, 1000, 200), dtype="fp8")


def test_per_user_speed_is_inverse_tpot(est):
    assert est.output_tok_s_per_user == pytest.approx(1 / est.tpot_s)


def test_aggregate_counts_prefill_once_per_batch(est):
    expected = 8 * 200 / (est.ttft_s + 200 * est.tpot_s)
    assert est.aggregate_output_tok_s == pytest.approx(expected)
    assert est.aggregate_output_tok_s < 8 * est.output_tok_s_per_user


def test_sweep_is_vectorised_and_marks_overflow_nan(est):
    dep = est.deployment
    out = sweep(dep, np.array([1, 64, 1e6]), 1000, 200)
    assert out["tpot_s"].shape == (3,)
    assert np.isnan(out["tpot_s"][2])  # a million sequences do not fit
    assert out["aggregate_output_tok_s"][1] > out["aggregate_output_tok_s"][0]


def test_offline_picks_a_large_batch():
    e = max_throughput(load_model("llama-3.1-8b"), load_chip("h100-sxm"), 1000, 1000, dtype="fp8")
    assert e.scenario.batch > 64
    assert e.aggregate_output_tok_s > 5000


def test_tpot_limit_caps_the_batch():
    m, c = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    free = max_throughput(m, c, 1000, 1000, dtype="fp8")
    capped = max_throughput(m, c, 1000, 1000, dtype="fp8", max_tpot_s=0.010)
    assert capped.tpot_s <= 0.010 < free.tpot_s


def test_bad_scenario_rejected():
    with pytest.raises(InputError, match="input_tokens"):
        Scenario(1, -5, 10)


def test_accounting_scales_with_chips_and_price(est):
    chip = load_chip("h100-sxm")
    a = account(chip, 1, est.decode, est.aggregate_output_tok_s)
    b = account(chip, 2, est.decode, est.aggregate_output_tok_s)
    assert b.power_w == pytest.approx(2 * a.power_w)
    assert b.usd_per_million_tokens > a.usd_per_million_tokens
    cheap = default_assumptions().with_overrides(electricity_price_usd_per_j=0.0)
    assert account(chip, 1, est.decode, est.aggregate_output_tok_s, cheap).usd_per_million_tokens < a.usd_per_million_tokens
    assert chip.tdp_w * default_assumptions().idle_power_fraction <= a.chip_power_w <= chip.tdp_w
    assert a.energy_j_per_token == pytest.approx(a.power_w / est.aggregate_output_tok_s)
