import numpy as np
import pytest

from siliconsim.accounting import account, default_assumptions
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate, finite_run, max_throughput, max_throughput_on, sweep
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


def test_offline_batch_is_the_best_on_the_layout_it_returns():
    """The planner lays DeepSeek-R1 on 8 B200s out differently at batch 1 and at a large batch (data-
    parallel attention frees KV room): the batch must be searched on the returned layout, not on the
    batch-1 one, so no batch of that layout beats it."""
    m, c = load_model("deepseek-r1"), load_chip("b200")
    e = max_throughput(m, c, 800, 3736, chips=8, dtype="fp4")
    on_own_layout = max_throughput_on(e.deployment, 800, 3736)
    assert e.aggregate_output_tok_s >= on_own_layout.aggregate_output_tok_s * (1 - 1e-9)
    batch1 = estimate(m, c, Scenario(1, 800, 3736), chips=8, dtype="fp4").deployment
    assert e.deployment.describe() != batch1.describe()  # the case the search must handle


def test_offline_never_loses_the_batch_its_own_layout_runs():
    """Re-planning at the best batch can fail where the searched layout holds that batch (a Groq
    pipeline with KV room for three DeepSeek-R1 sequences): the search keeps what it found, not the
    batch-1 estimate."""
    m, c = load_model("deepseek-r1"), load_chip("groq-lpu")
    base = estimate(m, c, Scenario(1, 1000, 1000)).deployment
    e = max_throughput(m, c, 1000, 1000, chips=base.par.chips)
    on_base = max_throughput_on(base, 1000, 1000)
    assert on_base.scenario.batch > 1
    assert e.aggregate_output_tok_s >= on_base.aggregate_output_tok_s * (1 - 1e-9)


def test_tpot_limit_caps_the_batch():
    m, c = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    free = max_throughput(m, c, 1000, 1000, dtype="fp8")
    capped = max_throughput(m, c, 1000, 1000, dtype="fp8", max_tpot_s=0.010)
    assert capped.tpot_s <= 0.010 < free.tpot_s


def test_a_length_biased_decode_context_slows_decode_only():
    m, c = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    equal = estimate(m, c, Scenario(64, 1000, 2000), dtype="fp8")
    assert equal.scenario.decode_context == 2000  # input + output / 2
    spread = estimate(m, c, Scenario(64, 1000, 2000, decode_context_tokens=4000), dtype="fp8")
    assert spread.tpot_s > equal.tpot_s and spread.ttft_s == equal.ttft_s
    with pytest.raises(InputError, match="decode_context_tokens"):
        Scenario(1, 10, 10, decode_context_tokens=-1)


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


def _t(dep, b, i, o):
    s = sweep(dep, np.array([float(b)]), i, o)
    return float(s["ttft_s"][0] + o * s["tpot_s"][0])


def test_a_finite_run_of_equal_requests_runs_in_waves(est):
    """A fixed dataset of N equal requests (the TensorRT-LLM performance overview's) runs in waves:
    one request alone is batch 1; a dataset one request larger than the KV cache holds needs two
    waves, at best two half-full ones, so it runs below the steady state of full batches."""
    dep = est.deployment
    i, o = 1000, 1000
    assert finite_run(dep, 1, i, o) == pytest.approx((1.0, o / _t(dep, 1, i, o)))
    cap = int(min(dep.kv_capacity_tokens / (i + o), dep.max_batch))
    batch, tput = finite_run(dep, cap + 1, i, o)
    waves = (cap + 1) // batch
    rest = (cap + 1) - waves * batch
    expected = (cap + 1) * o / (waves * _t(dep, batch, i, o) + (_t(dep, rest, i, o) if rest else 0.0))
    assert tput == pytest.approx(expected)
    steady = max_throughput_on(dep, i, o).aggregate_output_tok_s
    assert (cap + 1) / 2 <= batch < cap  # two near-equal waves beat a full one followed by a single request
    assert 0.5 * steady < tput < 0.95 * steady
    long_run = finite_run(dep, 100 * cap, i, o)[1]  # many full waves: the steady state
    assert long_run == pytest.approx(steady, rel=0.02)
    with pytest.raises(InputError, match="requests"):
        finite_run(dep, 0, i, o)
