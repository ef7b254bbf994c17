"""Training invariants (hypothesis): ZeRO-3 memory never grows with DP, more link bandwidth never
slows a step, the pipeline bubble shrinks with more micro-batches, faster chips never slow it."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings, strategies as st

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.training import TrainingJob
from siliconsim.training.job import Layout
from siliconsim.training.memory import training_memory
from siliconsim.training.params import efficiency, framework
from siliconsim.training.step import step_breakdown

MODELS = ("llama-3.1-8b", "llama-3.1-70b", "gpt3-175b", "qwen3-30b-a3b")
CHIPS = ("h100-sxm", "a100-sxm-80gb", "b200", "tpu-v5p", "mi300x")
FW = framework("megatron-core")


def _job(model: str, chip: str, chips: int, batch: int, seq: int = 4096, **kw) -> TrainingJob:
    return TrainingJob(model=load_model(model), chip=load_chip(chip), chips=chips, seq_len=seq, global_batch=batch, **kw)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(MODELS), k=st.integers(0, 6), tp=st.sampled_from([1, 2, 4, 8]))
def test_more_dp_never_raises_memory_under_zero3(model, k, tp):
    small, big = 2 ** k, 2 ** (k + 1)
    a = training_memory(_job(model, "h100-sxm", tp * small, 1024), Layout(tp=tp, dp=small, zero=3), 1e15, True)
    b = training_memory(_job(model, "h100-sxm", tp * big, 1024), Layout(tp=tp, dp=big, zero=3), 1e15, True)
    assert b.used_bytes <= a.used_bytes * (1 + 1e-12)


def _lay(tp: int, pp: int, dp: int, zero: int, mb: int, ep: int = 1) -> Layout:
    return Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=zero, microbatch=mb)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(MODELS), chip=st.sampled_from(CHIPS), tp=st.sampled_from([1, 2, 4, 8]),
       pp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2, 8, 32]), zero=st.sampled_from([0, 1, 2, 3]),
       scale=st.floats(1.0, 8.0))
def test_more_link_bandwidth_never_slows_a_step(model, chip, tp, pp, dp, zero, scale):
    job = _job(model, chip, tp * pp * dp, 8 * dp)
    lay = _lay(tp, pp, dp, zero, 1, ep=min(dp, 8) if job.model.is_moe else 1)
    fast = dataclasses.replace(job, chip=job.chip.scaled(link_bandwidth=scale))
    eff = efficiency(chip)
    assert step_breakdown(fast, lay, eff, FW).step_time_s <= step_breakdown(job, lay, eff, FW).step_time_s * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(MODELS), chip=st.sampled_from(CHIPS), pp=st.sampled_from([2, 4, 8]),
       m=st.integers(1, 64), more=st.integers(1, 64))
def test_bubble_share_shrinks_with_more_microbatches(model, chip, pp, m, more):
    """1F1B bubble (P-1)/m of the ideal time (Narayanan et al. SC'21 §2.2)."""
    eff = efficiency(chip)

    def share(microbatches: int) -> float:
        b = step_breakdown(_job(model, chip, pp, microbatches), _lay(1, pp, 1, 1, 1), eff, FW)
        return b.pp_bubble_s / b.step_time_s

    assert share(m + more) < share(m)


@settings(max_examples=30, deadline=None)
@given(model=st.sampled_from(MODELS), chip=st.sampled_from(CHIPS), flops=st.floats(1.0, 4.0), bw=st.floats(1.0, 4.0))
def test_faster_chips_never_slow_a_step(model, chip, flops, bw):
    job = _job(model, chip, 8, 64)
    lay = _lay(8 if not job.model.is_moe else 1, 1, 1 if not job.model.is_moe else 8, 1, 1,
               ep=8 if job.model.is_moe else 1)
    fast = dataclasses.replace(job, chip=job.chip.scaled(flops=flops, bandwidth=bw))
    eff = efficiency(chip)
    assert step_breakdown(fast, lay, eff, FW).step_time_s <= step_breakdown(job, lay, eff, FW).step_time_s * (1 + 1e-12)
