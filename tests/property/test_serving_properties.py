"""Invariants of the serving simulator over random request sets and configurations."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.serving import LinearStepModel, ServeConfig, simulate
from siliconsim.workloads import make_requests

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def request_sets(draw, max_n=25):
    n = draw(st.integers(1, max_n))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0005, 0.003, 0.02, 0.2]), min_size=n, max_size=n))
    inp = draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n))
    out = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    return make_requests(np.cumsum(gaps), inp, out)


configs = st.builds(
    ServeConfig,
    replicas=st.integers(1, 3),
    max_batch=st.sampled_from([None, 1, 3, 16]),
    token_budget=st.sampled_from([64, 512, 8192]),
    chunk_tokens=st.sampled_from([None, 0, 100]),
    scheduler=st.sampled_from(["chunked", "prefill-first"]),
    router=st.sampled_from(["round-robin", "least-loaded"]),
    disaggregate=st.sampled_from([None, None, (1, 1), (2, 1)]),
)
windows = st.sampled_from([0.0, 0.0, 0.004, 0.05])
capacities = st.sampled_from([1e6, 4000.0, 1500.0])


@SETTINGS
@given(request_sets(), configs, capacities, windows, st.sampled_from([1, 2, 96]))
def test_every_request_settles_once_in_causal_order(rs, cfg, cap, window, dispatch_max):
    cfg = replace(cfg, dispatch_window_s=window, dispatch_max_requests=dispatch_max)
    log = []
    r = simulate(LinearStepModel(kv_capacity_tokens=cap), rs, cfg, event_log=log)
    # completed xor rejected, and every rejection has a reason
    assert np.all(r.completed ^ r.rejected)
    assert sum(r.reasons.values()) == int(r.rejected.sum())
    ok = r.completed
    assert np.all(r.arrival_s[ok] <= r.first_token_s[ok])
    assert np.all(r.first_token_s[ok] <= r.finish_s[ok])
    assert np.all(r.arrival_s[ok] <= r.sched_s[ok])
    rejected_fit = (r.input_tokens + r.output_tokens - 1 > cap)
    assert np.array_equal(r.rejected, rejected_fit)
    # the clock never goes backwards; same-time events run by priority, then by scheduling order
    assert log == sorted(log)
    # every emitted token after the first is one ITL sample; KV never exceeds capacity
    assert int(r.itl_count.sum()) == int((r.output_tokens[ok] - 1).sum())
    assert r.step_kv_tokens.size == 0 or r.step_kv_tokens.max() <= cap


@SETTINGS
@given(request_sets(max_n=15), st.sampled_from([1.5, 2.0, 10.0]), configs, capacities)
def test_a_faster_chip_never_worsens_mean_latency(rs, speed, cfg, cap):
    slow = simulate(LinearStepModel(kv_capacity_tokens=cap), rs, cfg)
    fast = simulate(LinearStepModel(kv_capacity_tokens=cap, speed=speed), rs, cfg)
    ok = slow.completed  # rejection depends on capacity only, so the same requests complete
    assert np.array_equal(ok, fast.completed)
    if ok.any():
        e2el = lambda r: float(np.mean(r.finish_s[ok] - r.arrival_s[ok]))  # noqa: E731
        assert e2el(fast) <= e2el(slow) * (1 + 1e-12)


@settings(max_examples=20, deadline=None)
@given(request_sets(), configs)
def test_same_inputs_same_results(rs, cfg):
    a, b = simulate(LinearStepModel(), rs, cfg), simulate(LinearStepModel(), rs, cfg)
    assert np.array_equal(a.finish_s, b.finish_s, equal_nan=True) and a.events == b.events


@given(st.lists(st.tuples(st.integers(1, 4000), st.integers(1, 5000)), min_size=1, max_size=60))
@SETTINGS
def test_length_biased_context_is_the_mean_context_over_decode_steps(pairs):
    """Every decode step of every sequence counted once (sequence i decodes at contexts I_i .. I_i +
    L_i - 1): their mean is the length-biased context E[I L]/E[L] + E[L^2]/(2 E[L]), less half a token."""
    from siliconsim.perf.step import length_biased_context

    inp, out = (np.array(x, dtype=float) for x in zip(*pairs))
    steps = sum(i * n + n * (n - 1) / 2 for i, n in zip(inp, out))
    exact = steps / out.sum()
    weighted, mean, cv = (inp * out).sum() / out.sum(), out.mean(), out.std() / out.mean()
    assert length_biased_context(weighted, mean, cv) - 0.5 == pytest.approx(exact, rel=1e-9, abs=1e-6)
    if np.all(out == out[0]):
        assert length_biased_context(weighted, mean, cv) == pytest.approx(weighted + mean / 2)
