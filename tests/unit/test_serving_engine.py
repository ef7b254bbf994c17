"""Engine behaviour on hand-checkable cases, with a deterministic LinearStepModel."""

import json

import numpy as np
import pytest

from siliconsim.errors import InputError
from siliconsim.serving import LinearStepModel, ServeConfig, simulate, summarize
from siliconsim.serving.engine import ARRIVAL, KICK, STEP_END
from siliconsim.workloads import make_requests

M = LinearStepModel()


def one(prompt, output, **cfg):
    return simulate(M, make_requests([0.0], [prompt], [output]), ServeConfig(**cfg))


def test_single_request_times_are_sums_of_step_times():
    r = one(1000, 4)
    prefill = M.step_time_s(1000, 500.0, 0, 0)
    decodes = [M.step_time_s(0, 0, 1, 1000 + k) for k in (1, 2, 3)]
    assert r.first_token_s[0] == pytest.approx(prefill)
    assert r.finish_s[0] == pytest.approx(prefill + sum(decodes))
    assert r.completed.all() and not r.rejected.any()
    # ITL samples: three gaps equal to the decode step times
    assert sorted(np.repeat(r.itl_s, r.itl_count)) == pytest.approx(sorted(decodes))


def test_one_output_token_finishes_at_prefill_end():
    r = one(50, 1)
    assert r.finish_s[0] == r.first_token_s[0] == pytest.approx(M.step_time_s(50, 25.0, 0, 0))
    assert r.itl_count.sum() == 0


def test_chunked_prefill_splits_by_token_budget():
    r = one(10000, 2, token_budget=4096)
    chunks = r.step_seqs[:3]
    assert list(chunks) == [1, 1, 1]
    expected = (M.step_time_s(4096, 2048.0, 0, 0) + M.step_time_s(4096, 4096 + 2048.0, 0, 0)
                + M.step_time_s(1808, 8192 + 904.0, 0, 0))
    assert r.first_token_s[0] == pytest.approx(expected)


def test_chunk_zero_runs_whole_prompt_in_one_step():
    r = one(10000, 2, token_budget=4096, chunk_tokens=0)
    assert r.first_token_s[0] == pytest.approx(M.step_time_s(10000, 5000.0, 0, 0))


def test_decode_and_prefill_share_a_step_under_chunked_scheduler():
    rs = make_requests([0.0, 0.001], [100, 100], [50, 5])
    r = simulate(M, rs, ServeConfig())
    # the second prompt is prefilled in a step that also decodes the first request
    assert 2 in set(r.step_seqs.tolist())
    assert r.completed.all()


def test_prefill_first_never_mixes_prefill_and_decode():
    rs = make_requests([0.0, 0.001, 0.002], [100, 100, 100], [50, 5, 5])
    r = simulate(M, rs, ServeConfig(scheduler="prefill-first"))
    assert r.completed.all()
    assert r.step_seqs.max() >= 2  # decode batches still form


def test_too_long_request_is_rejected_with_reason():
    small = LinearStepModel(kv_capacity_tokens=1000)
    rs = make_requests([0.0, 0.0], [900, 10], [200, 10])
    r = simulate(small, rs, ServeConfig())
    assert list(r.rejected) == [True, False]
    assert r.reasons == {"kv_capacity": 1}
    assert np.isnan(r.first_token_s[0]) and r.completed[1]


def test_kv_capacity_queues_then_preempts_and_everyone_finishes():
    small = LinearStepModel(kv_capacity_tokens=600)
    rs = make_requests([0.0, 0.0, 0.0], [200, 200, 200], [150, 150, 150])
    r = simulate(small, rs, ServeConfig())
    assert r.completed.all()
    assert r.preemptions.sum() >= 1
    assert r.step_kv_tokens.max() <= 600


def test_max_batch_caps_sequences_per_step():
    rs = make_requests(np.zeros(20), np.full(20, 10), np.full(20, 30))
    r = simulate(M, rs, ServeConfig(max_batch=4))
    assert r.step_seqs.max() == 4 and r.completed.all()


def test_round_robin_and_least_loaded_routing():
    rs = make_requests(np.zeros(6), np.full(6, 10), np.full(6, 5))
    rr = simulate(M, rs, ServeConfig(replicas=3, router="round-robin"))
    assert list(rr.replica) == [0, 1, 2, 0, 1, 2]
    rs2 = make_requests([0.0, 0.0, 1.0], [10, 10, 10], [1000, 5, 5])
    ll = simulate(M, rs2, ServeConfig(replicas=2, router="least-loaded"))
    assert ll.replica[2] == 1  # replica 0 is still busy with the long request


def test_disaggregation_pays_kv_transfer_between_first_and_second_token():
    rs = make_requests([0.0], [4000], [3])
    r = simulate(M, rs, ServeConfig(disaggregate=(1, 1)))
    prefill = M.step_time_s(4000, 2000.0, 0, 0)
    transfer = M.kv_transfer_s(4000)
    assert r.first_token_s[0] == pytest.approx(prefill)
    second = M.step_time_s(0, 0, 1, 4001)
    third = M.step_time_s(0, 0, 1, 4002)
    assert r.finish_s[0] == pytest.approx(prefill + transfer + second + third)
    assert r.replica[0] == 1 and r.roles == ("prefill", "decode")


def test_follow_up_turn_arrives_think_time_after_parent_finishes():
    rs = make_requests([0.0, 2.0], [1000, 1500], [5, 5], cached_tokens=[0, 1005], parent=[-1, 0])
    r = simulate(M, rs, ServeConfig())
    assert r.arrival_s[1] == pytest.approx(r.finish_s[0] + 2.0)
    # only the 495 new tokens are prefilled, attending to the cached prefix
    assert r.first_token_s[1] - r.arrival_s[1] == pytest.approx(M.step_time_s(495, 1005 + 247.5, 0, 0))


def test_same_time_events_run_in_priority_order():
    log = []
    rs = make_requests(np.zeros(5), np.full(5, 10), np.full(5, 3))
    simulate(M, rs, ServeConfig(replicas=2), event_log=log)
    assert log == sorted(log)
    first = [p for t, p, s in log if t == 0.0]
    assert first == sorted(first) and first[:5] == [ARRIVAL] * 5 and KICK in first
    assert STEP_END in {p for _, p, _ in log}


def test_same_inputs_give_identical_metrics():
    rs = make_requests(np.arange(50) * 0.01, np.arange(50) * 37 + 5, np.arange(50) % 7 + 1)
    a = json.dumps(summarize(simulate(M, rs, ServeConfig(replicas=2)), 0.3, 0.03), sort_keys=True)
    b = json.dumps(summarize(simulate(M, rs, ServeConfig(replicas=2)), 0.3, 0.03), sort_keys=True)
    assert a == b


@pytest.mark.parametrize("cfg, field", [
    (dict(scheduler="nope"), "--scheduler"), (dict(router="x"), "--router"), (dict(replicas=0), "--replicas"),
    (dict(chunk_tokens=-1), "--chunk"), (dict(disaggregate=(0, 1)), "--disaggregate")])
def test_bad_config_names_the_option(cfg, field):
    with pytest.raises(InputError, match=field):
        simulate(M, make_requests([0.0], [1], [1]), ServeConfig(**cfg))


def test_dispatch_window_holds_arrivals_until_the_window_passes():
    """AMD-harness batcher: an idle batcher sends at once; later arrivals wait for the window."""
    rs = make_requests([0.0, 0.05], [100, 100], [3, 3])
    r = simulate(M, rs, ServeConfig(dispatch_window_s=0.1))
    assert r.sched_s[0] == pytest.approx(0.0)
    assert r.sched_s[1] >= 0.1 - 1e-12  # held until 0.1 s after the first dispatch
    assert r.first_token_s[1] - r.arrival_s[1] >= 0.05
    assert r.completed.all()


def test_dispatch_sends_a_full_batch_early_to_one_replica():
    rs = make_requests([0.0, 0.01, 0.02], [100, 100, 100], [300, 3, 3])  # the first is still running at 0.02 s
    r = simulate(M, rs, ServeConfig(replicas=2, dispatch_window_s=1.0, dispatch_max_requests=2))
    assert r.sched_s[1] >= 0.02 and r.sched_s[2] >= 0.02 and r.sched_s[1] < 1.0
    assert r.replica[1] == r.replica[2] != r.replica[0]  # the batch went to the less loaded replica together


@pytest.mark.parametrize("cfg, field", [({"dispatch_window_s": -0.1}, "--dispatch-window-ms"),
                                        ({"dispatch_max_requests": 0}, "--dispatch-max")])
def test_bad_dispatch_options_name_the_option(cfg, field):
    with pytest.raises(InputError, match=field):
        ServeConfig(**cfg).check()
