"""The engine's decode runs (``Engine._decode_run``) change how fast a result is found, never the result.

Without an event log the engine ends a replica's decode-only steps, and starts the next ones, in one
handler call; with an event log every step end is an event of the loop, handled by
``_on_step_end`` alone. Both must give the same result to the last bit, over random workloads
(sessions with prefix-cached follow-up turns, preemption under a small KV cache, several replicas,
disaggregation, a dispatch window, both schedulers) and over a step model that interpolates a
non-linear cost (the inlined ``grid_bracket`` of the decode run). Tolerance: none.
"""

from dataclasses import fields, replace
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.serving import LinearStepModel, ServeConfig, simulate
from siliconsim.serving.engine import Engine
from siliconsim.serving.step_model import DeploymentStepModel
from siliconsim.workloads import make_requests


class _CurvedDeployment:
    """A deployment whose vectorized step time is not affine in the decode context (sqrt)."""

    kv_capacity_tokens, max_batch, kv_dtype = 6000.0, 48, "fp8"
    model = SimpleNamespace(kv_bytes=lambda tokens, dtype: tokens * 160e3)
    chip = SimpleNamespace(system=SimpleNamespace(scale_out=None, scale_up=None))  # the assumed KV link

    def step(self, work):
        from siliconsim.perf.step import StepCost
        t = (2e-3 + 1.5e-5 * work.prefill_tokens + 2e-5 * work.decode_batch
             + 3e-6 * np.sqrt(work.prefill_tokens * work.prefill_context + work.decode_batch * work.decode_context))
        return StepCost(t, 0.0, 0.0, 0.0, t)


@st.composite
def workloads(draw, max_n=30):
    n = draw(st.integers(1, max_n))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0005, 0.003, 0.02, 0.2]), min_size=n, max_size=n))
    inp = draw(st.lists(st.integers(1, 2500), min_size=n, max_size=n))
    out = draw(st.lists(st.integers(1, 400), min_size=n, max_size=n))
    follow = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    parent = [i - 1 if i and follow[i] else -1 for i in range(n)]  # chains of turns
    arrival = np.cumsum(gaps)
    think = draw(st.lists(st.sampled_from([0.0, 0.001, 0.05]), min_size=n, max_size=n))
    arrival = np.where(np.array(parent) >= 0, think, arrival)
    cached = [min(inp[i] - 1, inp[i] // 2) if parent[i] >= 0 else 0 for i in range(n)]
    return make_requests(arrival, inp, out, cached_tokens=cached, parent=parent)


configs = st.builds(
    ServeConfig,
    replicas=st.integers(1, 3),
    max_batch=st.sampled_from([None, 1, 5, 32]),
    token_budget=st.sampled_from([64, 512, 8192]),
    chunk_tokens=st.sampled_from([None, 0, 100]),
    scheduler=st.sampled_from(["chunked", "prefill-first"]),
    router=st.sampled_from(["round-robin", "least-loaded"]),
    disaggregate=st.sampled_from([None, None, (1, 1), (1, 2)]),
)


def _assert_identical(a, b):
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f.name
        else:
            assert x == y, f.name


@settings(max_examples=80, deadline=None)
@given(workloads(), configs, st.sampled_from([1e6, 5000.0, 2000.0]), st.sampled_from([0.0, 0.0, 0.004]),
       st.booleans())
def test_decode_runs_give_the_event_by_event_result(rs, cfg, cap, window, curved):
    cfg = replace(cfg, dispatch_window_s=window, dispatch_max_requests=4)
    if curved:
        run = lambda log: simulate(DeploymentStepModel(_CurvedDeployment()), rs, cfg, event_log=log)  # noqa: E731 (a fresh grid each)
    else:
        model = LinearStepModel(kv_capacity_tokens=cap, max_batch=64)
        run = lambda log: simulate(model, rs, cfg, event_log=log)  # noqa: E731
    _assert_identical(run(None), run([]))


class _Counting(Engine):
    handled = 0

    def _on_step_end(self, rep):
        type(self).handled += 1
        return super()._on_step_end(rep)


def test_a_decode_run_ends_many_steps_in_one_call_and_reports_progress_as_the_loop_does():
    rs = make_requests([0.0, 0.001, 0.5], [300, 200, 100], [5000, 300, 50])
    seen, seen_slow = [], []
    _Counting.handled = 0
    r = _Counting(LinearStepModel(), rs, ServeConfig(), progress=lambda done, total: seen.append((done, total))).run()
    slow = simulate(LinearStepModel(), rs, ServeConfig(), progress=lambda *a: seen_slow.append(a), event_log=[])
    _assert_identical(r, slow)
    assert r.step_s.size > 4096 and r.events == slow.events
    assert _Counting.handled < 10  # one call per prompt step, per arrival during a decode and per run
    assert seen == seen_slow == [(2, 3), (3, 3)]  # at event 4,096 (two requests done) and at the end
