"""MLPerf submitters' launch settings (validation/data/submissions.toml): the loader, matching a row
to its result, and their effect on a Server row (batch cap, token budget, instance size)."""

from dataclasses import replace

import pytest

from siliconsim.errors import CatalogError
from siliconsim.validation.runner import run_case
from siliconsim.validation.submissions import SUBMISSIONS_FILE, submission_for, submissions
from siliconsim.validation.suite import load_cases
from siliconsim.validation.workload import lengths

SRC = 'basis = "datasheet", source = "configs/X/Server/llama2-70b.py: max_num_tokens 3584"'
GOOD = ('[[submissions]]\nresults = "v5.1/closed/NVIDIA/SYS_TRT"\nbenchmark = "llama2-70b-99"\nscenario = "Server"\n'
        f'engine = "trtllm"\ntp = {{ value = 1, {SRC} }}\ntoken_budget = {{ value = 3584, {SRC} }}\n'
        f'kv_memory_fraction = {{ value = 0.95, {SRC} }}\nchunked_prefill = {{ value = true, {SRC} }}\n')


def _load(tmp_path, text):
    path = tmp_path / "submissions.toml"
    path.write_text(text, encoding="utf-8")
    return submissions.__wrapped__(path)


def test_shipped_entries_load_and_cite_a_config_file_at_a_commit():
    loaded = submissions(SUBMISSIONS_FILE)
    assert len(loaded) >= 2
    for s in loaded.values():
        assert s.engine in ("trtllm", "vllm") and len(s.results.split("/")) == 4


def test_loader_names_the_field_and_value(tmp_path):
    s = next(iter(_load(tmp_path, GOOD).values()))
    assert (s.tp, s.token_budget, s.kv_memory_fraction, s.chunked_prefill, s.max_batch) == (1, 3584, 0.95, True, None)
    with pytest.raises(CatalogError, match=r"submissions\[0\].engine: expected one of trtllm, vllm, got 'sglang'"):
        _load(tmp_path, GOOD.replace('"trtllm"', '"sglang"'))
    with pytest.raises(CatalogError, match=r"submissions\[0\].token_budget: expected a whole number >= 1, got 0.5"):
        _load(tmp_path, GOOD.replace("value = 3584", "value = 0.5"))
    with pytest.raises(CatalogError, match=r"kv_memory_fraction: expected a fraction in \(0, 1\], got 1.5"):
        _load(tmp_path, GOOD.replace("value = 0.95", "value = 1.5"))
    with pytest.raises(CatalogError, match=r"results: expected round/division/submitter/system"):
        _load(tmp_path, GOOD.replace("v5.1/closed/NVIDIA/SYS_TRT", "NVIDIA/SYS_TRT"))
    with pytest.raises(CatalogError, match=r"appears twice"):
        _load(tmp_path, GOOD + GOOD)
    with pytest.raises(CatalogError, match=r"unknown field 'batch'"):
        _load(tmp_path, GOOD + "batch = 3\n")


def _row(rid):
    return next(c for c in load_cases("dev") if c.id == rid)


def test_a_row_finds_its_result_by_address():
    server = _row("M0422")  # B200 llama2-70b Server, MLPerf v5.1 NVIDIA
    s = submission_for(server)
    assert s is not None and (s.token_budget, s.max_batch, s.instance_chips) == (3584, 2048, 1)
    assert submission_for(replace(server, source_url="https://example.org/elsewhere")) is None


def test_the_settings_bound_the_server_operating_point():
    """With NVIDIA's published settings (TP1 instances, 3584 tokens per step, KV 0.95 of free memory)
    the token budget bounds the batch: B + B I / O <= 3584 allows about 1,980 requests per GPU at
    the dataset's 222-token prompts and the row's 274-token outputs, and the TPOT limit picks ~1,770
    within it, against the ~1,528 the measured throughput and TPOT imply (99,123 tok/s x 123.3 ms /
    8 GPUs); TTFT then includes the queue for the budget's little spare room."""
    row = _row("M0422")
    with_settings = run_case(row)
    assert "3584 tokens/step" in with_settings.prediction.layout
    batch = float(with_settings.prediction.layout.split("at batch ")[1].split(";")[0])
    ln = lengths(row)
    assert 1450 <= batch <= 3584 / (1 + ln.input_tokens / ln.output_tokens)
    plain = run_case(replace(row, source_url="https://example.org/elsewhere"))
    assert "tokens/step" not in plain.prediction.layout
    ttft = _row("M0423")
    assert run_case(ttft).predicted > run_case(replace(ttft, source_url="https://example.org/x")).predicted


def test_attention_dp_settings_apply_per_rank():
    """NVIDIA's DeepSeek-R1 configs run 'TP8' as data-parallel attention with 8 expert-parallel ranks,
    and their gpu_batch_size and max_num_tokens apply per attention rank (code/llmlib/config.py)."""
    from siliconsim.validation.scenarios import submission_stack

    row = _row("M0415")  # B200 DeepSeek-R1 Server, MLPerf v5.1 NVIDIA
    s = submission_for(row)
    assert (s.tp, s.ep, s.attention_dp, s.per_instance, s.chunked_prefill) == (8, 8, True, 8, False)
    stack = submission_stack(s)
    assert (stack.max_batch, stack.token_budget, stack.replica_chips) == (512 * 8, 3456 * 8, 8)
    assert "DP8-attn EP8" in run_case(row).prediction.layout
    dense = submission_for(_row("M0422"))
    assert dense.per_instance == 1 and submission_stack(dense).token_budget == 3584


def test_a_harness_batcher_applies_only_where_the_submission_ran_it():
    """AMD's v4.1 harness passed --enable-batcher (the 0.3 s dispatch window of serving.toml's
    amd-vllm-harness stack) with one vLLM engine per GPU; its v5.1 hydra harness leaves the batcher
    off and runs vLLM's multi-step scheduler (num_scheduler_steps 9) instead."""
    from siliconsim.serving.approx import stack_for
    from siliconsim.validation.scenarios import submission_stack

    v41 = submission_for(_row("M0259"))
    st41 = submission_stack(v41, stack_for("mi300x", "server"))
    assert v41.harness_batcher and st41.dispatched and st41.replica_chips == 1 and st41.max_batch == 1024
    v51 = submission_for(_row("M0342"))
    st51 = submission_stack(v51, stack_for("mi300x", "server"))
    assert v51.harness_batcher is False and not st51.dispatched
    assert (st51.replica_chips, st51.max_batch, st51.token_budget, st51.admission_steps) == (1, 650, 40960, 9.0)
    assert "new requests every 9 decode steps" in run_case(_row("M0343")).prediction.layout


def test_multi_step_scheduling_holds_a_prompt_for_the_next_scheduling_point():
    from siliconsim.hardware.catalog import load_chip
    from siliconsim.inference import Scenario, estimate
    from siliconsim.models.catalog import load_model
    from siliconsim.serving.approx import continuous_batching
    import numpy as np

    dep = estimate(load_model("llama-3.1-8b"), load_chip("h100-sxm"), Scenario(1, 1024, 256)).deployment
    b = np.array([64.0])
    once = continuous_batching(dep, b, 1024, 256)
    nine = continuous_batching(dep, b, 1024, 256, admission_steps=9)
    assert float(nine.step_s[0]) == float(once.step_s[0])
    assert float(nine.ttft_mean_s[0] - once.ttft_mean_s[0]) == pytest.approx(4.0 * float(once.step_s[0]), rel=1e-9)


def test_a_power_limit_is_read_and_checked(tmp_path):
    text = GOOD + 'power_limit_w = { value = "500 W", basis = "datasheet", source = "configs/X/Offline: power_limit = 500" }\n'
    s = next(iter(_load(tmp_path, text).values()))
    assert s.power_limit_w == 500 and not s.empty
    with pytest.raises(CatalogError, match=r"power_limit_w: expected a power > 0 W, got 0"):
        _load(tmp_path, text.replace('"500 W"', '"0 W"'))
