"""Metric definitions (vLLM benchmark_serving names) and the KV ledger."""

import numpy as np
import pytest

from siliconsim.serving import LinearStepModel, ServeConfig, simulate, summarize
from siliconsim.serving.kv_cache import KVLedger
from siliconsim.serving.metrics import weighted_percentile
from siliconsim.serving.step_model import quantize
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


def test_quantize_is_exact_for_small_and_close_for_large():
    assert quantize(17) == 17.0
    for x in (300.0, 4097.0, 123456.0):
        assert abs(quantize(x) - x) / x <= 1 / 256
