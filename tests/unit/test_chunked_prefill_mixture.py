"""The closed-form continuous-batching steady state (``serving.approx.continuous_batching``):
prompt work rides on a share of the steps, a chunk at a time, once fewer than one chunk arrives
per step (Sarathi-Serve chunked prefill: a step carries a whole prompt, or what the token budget
leaves beside the decode batch)."""

from __future__ import annotations

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.serving.approx import continuous_batching, serving_constants


def _dep(model: str, chip: str):
    return estimate(load_model(model), load_chip(chip), Scenario(1, 2048, 28)).deployment


def test_a_sparse_prompt_load_rides_on_a_share_of_the_steps():
    """gpt-oss-120b on one H200, 2048 in / 28 out, batch 4: 293 prompt tokens arrive per step,
    so one step in seven carries a whole 2048-token prompt; the mean step lies between a decode
    step and that mixed step, weighted so, and is far below a step carrying 293 prompt tokens every
    time (each of which would touch most of the 128 experts)."""
    dep = _dep("gpt-oss-120b", "h200")
    c = continuous_batching(dep, np.array([4.0]), 2048, 28)
    plain = float(dep.step(Work(decode_batch=4, decode_context=2062)).latency_s)
    whole = float(dep.step(Work(prefill_tokens=2048, prefill_context=1024, decode_batch=4,
                                decode_context=2062)).latency_s)
    share = 4 * 2048 / 28 / 2048
    assert float(c.step_s[0]) == pytest.approx(share * whole + (1 - share) * plain, rel=1e-9)
    thin = float(dep.step(Work(prefill_tokens=4 * 2048 / 28, prefill_context=1024, decode_batch=4,
                               decode_context=2062)).latency_s)
    assert float(c.step_s[0]) < 0.6 * thin  # 13 ms against 26 ms
    assert float(c.ttft_mean_s[0]) > whole  # its own prompt's step, after the step in flight


def test_a_busy_prompt_load_rides_on_every_step():
    """At a batch past the output length (one or more prompts arrive per step) every step carries
    the steady load B*I/O, and TTFT is the residual plus the own prompt's step, which carries the
    prompt itself on top of the load that arrived meanwhile (Poisson arrivals: the others are
    independent of it), in pieces of what the token budget leaves beside the batch."""
    dep = _dep("llama-3.1-8b", "h100-sxm")
    b = np.array([64.0])
    c = continuous_batching(dep, b, 1024, 32)
    load = 64 * 1024 / 32
    t = float(dep.step(Work(prefill_tokens=load, prefill_context=512, decode_batch=64,
                            decode_context=1040)).latency_s)
    assert float(c.step_s[0]) == pytest.approx(t, rel=1e-12)
    room = serving_constants()["prefill_token_budget"] - 64
    ahead = load + 1024  # 3072 tokens: one piece within the budget
    assert ahead <= room
    own = float(dep.step(Work(prefill_tokens=ahead, prefill_context=512, decode_batch=64,
                              decode_context=1040)).latency_s)
    assert own > t
    # the prompts compete for the room beside the batch: 2 arrive per step for 7.9 prompt slots,
    # an M/D/c queue (Sakasegawa, halved for deterministic service) well short of saturation
    a, slots, rho = load / 1024, room / 1024, load / room
    queue = 0.5 * rho ** np.sqrt(2 * (slots + 1)) / (1 - rho) / a * t
    assert 0 < queue < 0.01 * t
    assert float(c.ttft_mean_s[0]) == pytest.approx(0.5 * t + queue + own, rel=1e-12)
    big = continuous_batching(dep, np.array([224.0]), 1024, 32)  # 7168 tokens arrive per step: two pieces
    room = serving_constants()["prefill_token_budget"] - 224
    ahead = 224 * 1024 / 32 + 1024
    assert ahead > room
    full = float(dep.step(Work(prefill_tokens=room, prefill_context=512, decode_batch=224,
                               decode_context=1040)).latency_s)
    step = float(big.step_s[0])
    a, slots, rho = 7168 / 1024, room / 1024, 7168 / room
    queue = 0.5 * rho ** np.sqrt(2 * (slots + 1)) / (1 - rho) / a * step
    assert float(big.ttft_mean_s[0]) == pytest.approx(0.5 * step + queue + ahead / room * full, rel=1e-9)
    assert bool(c.ok[0]) == (load + 64 <= serving_constants()["prefill_token_budget"])


def test_a_token_budget_near_saturation_queues_prompts():
    """The same load under a budget that leaves little room beside the batch (2048 prompt tokens per
    step against 2112 of room): prompts wait many steps for room, and the step stays the same."""
    dep = _dep("llama-3.1-8b", "h100-sxm")
    b = np.array([64.0])
    roomy = continuous_batching(dep, b, 1024, 32)
    tight = continuous_batching(dep, b, 1024, 32, token_budget=2176)
    assert float(tight.step_s[0]) == pytest.approx(float(roomy.step_s[0]), rel=1e-12)
    assert bool(tight.ok[0]) and float(tight.ttft_mean_s[0]) > 3 * float(roomy.ttft_mean_s[0])
    assert not bool(continuous_batching(dep, b, 1024, 32, token_budget=2048).ok[0])  # no room for the load
    # the queue's tail is exponential: near saturation nearly every prompt waits (P(wait) = 0.91 by
    # Sakasegawa), and the 99th percentile of the wait is ln(100 P) / P mean waits (5.0), so p99 TTFT
    # is far above 2.1 x the mean
    q = float(tight.queue_s[0])
    assert q > 0.5 * float(tight.ttft_mean_s[0])
    rho, slots = 2048 / 2112, 2112 / 1024
    waits = rho ** np.sqrt(2 * (slots + 1))
    assert 0.85 < waits < 0.95
    assert float(tight.queue_p99_s[0]) == pytest.approx(np.log(100 * waits) / waits * q, rel=1e-9)
    ratio = serving_constants()["p99_over_mean_ttft"]
    assert float(tight.ttft_p99_s[0]) > ratio * float(tight.ttft_mean_s[0])
    assert float(roomy.ttft_p99_s[0]) == pytest.approx(ratio * float(roomy.ttft_mean_s[0]), rel=0.01)


def test_the_main_job_finds_a_batch_on_every_gpu():
    """README's first command: gpt-oss-120b code completion (p99 TTFT 300 ms, TPOT 30 ms) is
    met on an H100 or H200 at some batch above one (it serves at ~3 ms per token at batch 1)."""
    from siliconsim.planner.compare import compare

    rows = compare(load_model("gpt-oss-120b"), ["h100-sxm", "h200"], Scenario(1, 2048, 28), slo="code-completion")
    for row in rows:
        assert "the busiest meeting" in row.note and row.loaded.scenario.batch > 1, row.note


def test_a_pipeline_keeps_one_micro_batch_per_stage_in_flight():
    """TP1 x PP2 (Cisco's MLPerf layout for Llama-2-70B on H100): each micro-batch's token takes the
    whole traversal, and the other stage works on the other micro-batch meanwhile, so the replica emits
    twice a micro-batch's tokens per step; the micro-batches share the replica's KV cache."""
    from siliconsim.perf.step import Parallel
    from siliconsim.plans import default_kv_dtype, fit_layout

    model, chip = load_model("llama-2-70b"), load_chip("h100-sxm")
    dep = fit_layout(model, chip, Parallel(tp=1, pp=2), "fp8", default_kv_dtype("fp8"), 600)
    b = np.array([128.0])
    c = continuous_batching(dep, b, 300, 293)
    assert float(c.output_tok_s[0]) == pytest.approx(2 * 128 / float(c.step_s[0]), rel=1e-12)
    from siliconsim.serving.approx import batch_grid

    assert batch_grid(dep, 600).max() <= dep.kv_capacity_tokens / 600 / 2 + 1


@pytest.mark.parametrize("chip, model", [("groq-lpu", "llama-3.1-8b"), ("cs-3", "llama-3.1-70b")])
def test_a_layer_or_wafer_pipeline_is_not_counted_twice(chip, model):
    """A Groq layer pipeline (pp = its chips) or a CS-3 wafer pipeline already cuts the step's batch
    into micro-batches over its stages (``perf.dataflow.pipeline_cost``, the wafer regions): the
    replica emits the batch's tokens once per step and the whole KV cache holds that one batch."""
    from siliconsim.serving.approx import batch_grid

    dep = estimate(load_model(model), load_chip(chip), Scenario(1, 1000, 200), dtype="int8" if chip == "groq-lpu"
                   else "bf16").deployment
    assert dep.par.pp > 1 and dep.microbatches_in_flight == 1
    b = np.array([4.0])
    c = continuous_batching(dep, b, 1000, 200)
    assert float(c.output_tok_s[0]) == pytest.approx(4 / float(c.step_s[0]), rel=1e-12)
    cap = min(dep.kv_capacity_tokens / 1200, dep.max_batch)
    if cap >= 2:
        assert batch_grid(dep, 1200).max() == pytest.approx(np.floor(cap))
