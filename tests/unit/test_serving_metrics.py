"""Metric definitions (vLLM benchmark_serving names) and the KV ledger."""

import numpy as np
import pytest

from siliconsim.serving import LinearStepModel, ServeConfig, simulate, summarize
from siliconsim.serving.kv_cache import KVLedger
from siliconsim.serving.metrics import weighted_percentile
from siliconsim.serving.step_model import GRID, DeploymentStepModel, LinearStepModel as Lin, grid_bracket
from siliconsim.workloads import make_requests


@pytest.mark.parametrize("q", [0, 1, 37.5, 50, 90, 99, 100])
def test_weighted_percentile_matches_numpy_on_repeated_values(q):
    rng = np.random.default_rng(3)
    v = rng.random(40)
    c = rng.integers(1, 9, 40)
    assert weighted_percentile(v, c, q) == pytest.approx(np.percentile(np.repeat(v, c), q))


def test_summary_uses_vllm_names_and_definitions():
    m = LinearStepModel()
    rs = make_requests([0.0, 5.0], [100, 200], [1, 11])
    r = simulate(m, rs, ServeConfig())
    s = summarize(r, slo_ttft_s=1.0, slo_tpot_s=1e-9)
    for key in ("mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms",
                "mean_e2el_ms", "p99_e2el_ms", "request_throughput", "output_throughput", "request_goodput",
                "mean_queue_ms", "mean_batch", "max_kv_occupancy", "timeseries"):
        assert key in s
    ttft = r.first_token_s - r.arrival_s
    e2el = r.finish_s - r.arrival_s
    assert s["mean_ttft_ms"] == pytest.approx(ttft.mean() * 1e3)
    assert s["mean_tpot_ms"] == pytest.approx((e2el[1] - ttft[1]) / 10 * 1e3)  # one-token request has no TPOT
    assert s["request_throughput"] == pytest.approx(2 / (r.finish_s[1] - 0.0))
    assert s["output_throughput"] == pytest.approx(12 / r.finish_s[1])
    # only the one-token request meets an impossible TPOT SLO
    assert s["request_goodput"] == pytest.approx(1 / r.finish_s[1])
    assert s["slo_attainment"] == 0.5


def test_timeseries_integrates_running_sequences():
    r = simulate(LinearStepModel(), make_requests(np.zeros(4), np.full(4, 10), np.full(4, 20)), ServeConfig())
    ts = summarize(r, series_points=10)["timeseries"]
    assert len(ts["t_s"]) == len(ts["running"]) == len(ts["kv_occupancy"]) == 10
    width = r.end_s / 10
    assert sum(ts["running"]) * width == pytest.approx(float(np.dot(r.step_seqs, r.step_s)), rel=1e-3)


def test_kv_ledger_grows_one_token_per_decoding_sequence_per_step():
    kv = KVLedger(100, watermark=0.1)
    kv.prefill_tokens = 30
    assert kv.can_admit(60, alone=False) and not kv.can_admit(61, alone=False) and kv.can_admit(70, alone=True)
    kv.prefill_tokens = 0
    base = kv.join(30)
    kv.steps += 5
    assert kv.used_tokens() == 35 and kv.next_step_tokens() == 36
    kv.leave(base)
    assert kv.used_tokens() == 0


def test_grid_bracket_is_exact_below_64_and_brackets_above():
    assert grid_bracket(17.2) == (17, 17, 0.0)
    for x in (64.0, 300.0, 4097.0, 123456.0):
        lo, hi, w = grid_bracket(x)
        assert GRID[lo] <= x <= GRID[hi] and 0.0 <= w <= 1.0
        assert GRID[hi] / GRID[lo] == pytest.approx(2 ** 0.25)


class _FakeDeployment:
    """A deployment whose vectorized step is the LinearStepModel without its max() (affine)."""

    kv_capacity_tokens, max_batch, kv_dtype = 1e6, 64, "fp8"
    model = chip = None
    calls = 0

    def step(self, work):
        from siliconsim.perf.step import StepCost
        type(self).calls += 1
        lin = Lin(weights_s=0.0)
        t = (lin.overhead_s + work.prefill_tokens * lin.per_prefill_token_s + work.decode_batch * lin.per_seq_s
             + (work.prefill_tokens * work.prefill_context + work.decode_batch * work.decode_context)
             * lin.per_context_token_s)
        return StepCost(t, 0.0, 0.0, 0.0, t)


def test_deployment_adapter_interpolates_exactly_for_affine_costs(monkeypatch):
    import siliconsim.serving.step_model as sm
    monkeypatch.setattr(sm, "_kv_link", lambda dep: (1e9, 0.0))
    adapter = DeploymentStepModel(_FakeDeployment())
    lin = Lin(weights_s=0.0)
    for args in ((0, 0, 7, 3000.5), (5000, 2600, 0, 0), (1, 0, 3, 70)):
        assert adapter.step_time_s(*args) == pytest.approx(lin.step_time_s(*args), rel=1e-9)
    # prompt x context is bilinear: exact at grid points, close in between
    assert adapter.step_time_s(700, 900, 12, 5000) == pytest.approx(lin.step_time_s(700, 900, 12, 5000), rel=1e-2)
    before = adapter.cost_model_calls
    adapter.step_time_s(0, 0, 7, 3100)  # same batch, another context: no new cost-model call
    assert adapter.cost_model_calls == before
