"""Submitter serving stacks (serving.toml [stacks.*]) in the closed form: AMD's MLPerf harness batcher (a
dispatch window in seconds) and Intel's TGI-Gaudi (one TP8 replica, a batch cap, a window in decode steps)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.plans import plan_deployment
from siliconsim.validation.runner import run_case
from siliconsim.serving.approx import Stack, operating_point, serving_constants, stack_for
from siliconsim.validation.suite import load_cases

INPUT, OUTPUT = 300.0, 293.0  # llama2-70b MLPerf: dataset mean prompt (datasets.toml), run's mean output


@pytest.fixture(scope="module")
def dep():
    return plan_deployment(load_model("llama-2-70b"), load_chip("mi300x"), chips=1, dtype="fp8",
                           context_tokens=INPUT + OUTPUT).deployment


def test_stack_applies_to_amd_server_rows_only():
    amd = stack_for("mi300x", "server")
    assert amd is not None and amd.window_s == pytest.approx(0.3) and amd.max_requests == 96
    assert stack_for("mi325x", "server") == amd
    assert stack_for("mi325x", "interactive") is None  # a 0.3 s window cannot meet a 450 ms p99 TTFT
    assert stack_for("h200", "server") is None


def test_intel_stack_fixes_the_replica_and_counts_its_window_in_steps():
    intel = stack_for("gaudi2", "server")
    assert intel is not None and intel.dispatched
    assert (intel.replica_chips, intel.max_batch, intel.window_steps, intel.window_s) == (8, 768, 7, 0.0)


def _check_limits_and_littles_law(op, ttft_limit_s, tpot_limit_s):
    k = serving_constants()
    assert op.feasible
    assert k["p99_over_mean_tpot"] * op.tpot_mean_s <= tpot_limit_s * (1 + 1e-9)
    assert op.ttft_p99_s <= ttft_limit_s * (1 + 1e-9) and op.ttft_p99_s > op.ttft_mean_s
    # Little's law: B sequences in flight, each emitting one token per TPOT
    assert op.output_tok_s == pytest.approx(op.batch / op.tpot_mean_s, rel=1e-6)


def test_dispatched_point_meets_limits_and_littles_law(dep):
    op = operating_point(dep, INPUT, OUTPUT, 2.0, 0.2, stack_for("mi300x", "server"), replicas=8)
    _check_limits_and_littles_law(op, 2.0, 0.2)


def test_dispatched_p99_ttft_is_bounded_waits_plus_a_poisson_burst(dep):
    """The dispatched p99 TTFT: the wait in the window and the step in flight are uniform (p99 0.99 of
    their span) and the burst a prompt rides in is Poisson (p99 k + 2.33 sqrt(k)): well under the
    published 2.1 x mean of continuous batching, about 1.6 x as AMD's v4.1 runs measured (1604 / 1006 ms)."""
    op = operating_point(dep, INPUT, OUTPUT, 100.0, 0.2, stack_for("mi300x", "server"), replicas=8)
    assert op.feasible and 1.2 < op.ttft_p99_s / op.ttft_mean_s < 2.0


def test_more_replicas_mean_bigger_bursts_and_longer_ttft(dep):
    """With the TTFT limit out of the way, TTFT grows with the replicas one window feeds in turn."""
    stack = stack_for("mi300x", "server")
    one = operating_point(dep, INPUT, OUTPUT, 100.0, 0.2, stack, replicas=1)
    eight = operating_point(dep, INPUT, OUTPUT, 100.0, 0.2, stack, replicas=8)
    assert eight.ttft_mean_s > one.ttft_mean_s + 0.1
    assert one.ttft_mean_s >= 0.5 * stack.window_s  # at least the mean wait in the window


def test_window_prefill_pause_makes_tpot_longer_than_decode_alone(dep):
    """Bursts pause decoding, so at the same TPOT limit the dispatched stack decodes fewer sequences."""
    plain = operating_point(dep, INPUT, OUTPUT, 100.0, 0.2)
    dispatched = operating_point(dep, INPUT, OUTPUT, 100.0, 0.2, stack_for("mi300x", "server"), replicas=1)
    assert dispatched.feasible and plain.feasible
    assert dispatched.ttft_mean_s > plain.ttft_mean_s


@settings(max_examples=20, deadline=None)
@given(window_s=st.floats(0.01, 1.0), replicas=st.integers(1, 16), max_requests=st.integers(1, 256))
def test_any_dispatched_point_meets_its_limits(dep, window_s, replicas, max_requests):
    op = operating_point(dep, INPUT, OUTPUT, 2.0, 0.2, Stack("t", window_s, max_requests), replicas)
    if op.feasible:
        _check_limits_and_littles_law(op, 2.0, 0.2)


@settings(max_examples=20, deadline=None)
@given(steps=st.integers(1, 30), max_batch=st.integers(8, 4096), replicas=st.integers(1, 8))
def test_any_step_window_point_meets_its_limits_and_batch_cap(dep, steps, max_batch, replicas):
    op = operating_point(dep, INPUT, OUTPUT, 2.0, 0.2, Stack("t", window_steps=steps, max_batch=max_batch), replicas)
    if op.feasible:
        _check_limits_and_littles_law(op, 2.0, 0.2)
        assert op.batch <= max_batch


def test_batch_cap_alone_keeps_continuous_batching_under_the_cap(dep):
    free = operating_point(dep, INPUT, OUTPUT, 2.0, 0.2)
    capped = operating_point(dep, INPUT, OUTPUT, 2.0, 0.2, Stack("t", max_batch=free.batch / 2))
    assert capped.feasible and capped.batch <= free.batch / 2
    assert capped.output_tok_s < free.output_tok_s


def test_a_fixed_replica_size_that_does_not_divide_the_row_is_a_reason_not_a_guess():
    from dataclasses import replace

    case = replace({c.id: c for c in load_cases()}["M0251"], chips=4)
    row = run_case(case)
    assert not row.covered and "8-chip replicas" in row.reason


def test_golden_intel_gaudi2_server_with_its_tgi_stack():
    """MLPerf Inference v4.0 closed, Intel HLS-Gaudi2 (8 cards) llama2-70b-99.9 Server: 6287.47 output tok/s,
    mean TTFT 472.4 ms, mean TPOT 114.0 ms (https://github.com/mlcommons/inference_results_v4.0/tree/main/closed/
    Intel-HabanaLabs/results/HLS-Gaudi2-PT/llama2-70b-99.9/Server). The layout search alone chose 8 x TP1 and was
    +80% on throughput and -45% on TTFT; the stack is TGI-Gaudi as Intel ran it. Throughput bound 35%: it
    was +17% on an assumed 300-token OpenOrca prompt and is +31% on the dataset's derived 222 tokens
    (validation/data/datasets.toml), still well inside the +80% of the layout search alone."""
    cases = {c.id: c for c in load_cases()}
    rows = {i: run_case(cases[i]) for i in ("M0251", "M0252", "M0253")}
    assert all(r.covered and "TP8" in r.prediction.layout for r in rows.values())
    assert abs(rows["M0251"].error_pct) < 35.0  # throughput
    assert abs(rows["M0253"].error_pct) < 30.0  # TPOT
    assert abs(rows["M0252"].error_pct) < 45.0  # TTFT


def test_golden_amd_server_mean_ttft():
    """MLPerf Inference v4.1 closed, AMD 8xMI300X_2xEPYC-9374F llama2-70b Server: mean TTFT 1006.3 ms
    (p99 1604 ms), https://github.com/mlcommons/inference_results_v4.1/tree/main/closed/AMD/results.
    Continuous batching put it at ~1.5 decode steps (-77%); the harness's dispatch window explains it."""
    case = {c.id: c for c in load_cases()}["M0260"]
    row = run_case(case)
    assert row.covered and "dispatch window" in row.prediction.layout
    assert abs(row.error_pct) < 45.0


def test_closed_form_agrees_with_the_simulator_with_a_dispatch_window(dep):
    """The dispatched closed form against the discrete-event simulator running the same harness:
    batcher window, prefill-first engines, 8 data-parallel replicas, at the closed form's rate."""
    import numpy as np

    from siliconsim.serving import DeploymentStepModel, ServeConfig, simulate
    from siliconsim.serving.metrics import latencies_s
    from siliconsim.workloads.requests import make_requests

    # a 60 ms TPOT limit keeps the batch (~120) small enough for 3,000 requests to span several
    # request lifetimes, so the simulated run reaches the steady state the closed form describes
    stack, replicas, n = stack_for("mi300x", "server"), 8, 3000
    op = operating_point(dep, INPUT, OUTPUT, 2.0, 0.06, stack, replicas)
    rate = op.output_tok_s * replicas / OUTPUT
    arrivals = np.cumsum(np.random.default_rng(1).exponential(1.0 / rate, n))
    rs = make_requests(arrivals, np.full(n, int(INPUT)), np.full(n, int(OUTPUT)))
    cfg = ServeConfig(replicas=replicas, max_batch=2048, token_budget=49152, scheduler="prefill-first",
                      dispatch_window_s=stack.window_s, dispatch_max_requests=int(stack.max_requests))
    lat = latencies_s(simulate(DeploymentStepModel(dep), rs, cfg))
    steady = slice(n // 3, None)
    assert float(np.mean(lat["ttft"][steady])) == pytest.approx(op.ttft_mean_s, rel=0.25)
    assert float(np.nanmean(lat["tpot"][steady])) == pytest.approx(op.tpot_mean_s, rel=0.25)


@pytest.mark.parametrize("edit, bad, where", [
    ('chips = ["mi300x", "mi325x", "mi355x"]', "chips = 3", "amd-vllm-harness.chips"),
    ('dispatch_window_s = { value = "0.3 s"', 'dispatch_window_s = { value = "-1 s"', "amd-vllm-harness.dispatch_window_s"),
    ("dispatch_window_steps = { value = 7,", "dispatch_window_steps = { value = 0,", "intel-tgi-harness.dispatch_window_steps"),
    ("replica_chips = { value = 8,", "replica_chips = { value = 2.5,", "intel-tgi-harness.replica_chips"),
    ("dispatch_window_steps = { value = 7,", 'dispatch_window_s = { value = "1 s", basis = "assumed", source = "x" }\n'
     'dispatch_window_steps = { value = 7,',
     "intel-tgi-harness: expected dispatch_window_s or dispatch_window_steps")])
def test_malformed_stack_names_file_and_field(tmp_path, monkeypatch, edit, bad, where):
    from siliconsim.errors import CatalogError
    from siliconsim.serving import approx as serving_approx

    text = (serving_approx.DATA / "serving.toml").read_text(encoding="utf-8")
    assert edit in text
    (tmp_path / "serving.toml").write_text(text.replace(edit, bad), encoding="utf-8")
    monkeypatch.setattr(serving_approx, "DATA", tmp_path)
    serving_approx._stacks.cache_clear()
    try:
        with pytest.raises(CatalogError, match=rf"serving.toml: stacks.{where}"):
            serving_approx._stacks()
    finally:
        serving_approx._stacks.cache_clear()
