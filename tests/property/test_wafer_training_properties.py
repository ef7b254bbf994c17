"""Invariants of weight-streaming training (hypothesis): per-system traffic does not grow with the
number of systems; tokens/s grows near-linearly with systems at a fixed batch per system until
the SwarmX tree latency binds; a smaller batch per system exposes weight streaming."""

from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.training import TrainingJob, plan_training
from siliconsim.training.wafer import traffic_per_system_bytes

MODELS = ("gpt-j-6b", "llama-3.1-8b", "llama-3.1-70b")


def _est(model, chip, n, per_system, seq):
    job = TrainingJob(model=load_model(model), chip=load_chip(chip), chips=n, seq_len=seq, global_batch=per_system * n)
    return plan_training(job).best


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(("cs-2", "cs-3")), st.integers(1, 4), st.sampled_from((1, 2, 8, 64, 192)))
def test_per_system_traffic_is_independent_of_system_count(model, chip, per_system, n):
    one, many = _est(model, chip, 1, per_system, 2048), _est(model, chip, n, per_system, 2048)
    assert traffic_per_system_bytes(many) == traffic_per_system_bytes(one) > 0


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from((2, 16, 64, 512, 2048)))
def test_tokens_per_s_near_linear_at_a_large_batch_per_system(model, n):
    one, many = _est(model, "cs-3", 1, 8, 4096), _est(model, "cs-3", n, 8, 4096)
    assert many.tokens_per_s >= 0.99 * n * one.tokens_per_s


def test_swarmx_latency_binds_at_a_tiny_batch_per_system():
    ests = [_est("gpt-j-6b", "cs-3", n, 1, 128) for n in (1, 16, 256, 2048)]
    eff = [e.tokens_per_s / e.job.chips / ests[0].tokens_per_s for e in ests]
    assert eff[0] == 1.0 and eff[1] > eff[2] > eff[3] and eff[3] < 0.97  # the tree grows one level per 4x
    grow = [e.breakdown.weight_stream_s + e.breakdown.grad_reduce_s + e.breakdown.step_bubble_s for e in ests]
    assert grow == sorted(grow) and ests[-1].step_time_s - ests[0].step_time_s == __import__("pytest").approx(
        grow[-1] - grow[0])  # all of the loss is exposed streaming


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(("cs-2", "cs-3")))
def test_smaller_batch_per_system_exposes_weight_streaming(model, chip):
    big, small = _est(model, chip, 4, 8, 4096), _est(model, chip, 4, 1, 512)
    share = lambda e: e.breakdown.weight_stream_s / e.step_time_s  # noqa: E731
    assert share(small) > 0.2 > 0.05 > share(big)
