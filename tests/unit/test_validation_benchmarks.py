"""Documented benchmark methods (validation/data/benchmarks.toml): the loader, which rows match,
and the effect of a whole-instance benchmark on an offline row."""

from dataclasses import replace

import pytest

from siliconsim.errors import CatalogError
from siliconsim.validation.benchmarks import BENCHMARKS_FILE, benchmark_of, benchmarks
from siliconsim.validation.runner import run_case
from siliconsim.validation.suite import load_cases

SRC = 'basis = "datasheet", source = "perf-overview.md table header"'
GOOD = ('[b]\nsources = ["https://example.org/*/perf.md"]\nscenarios = ["offline"]\n'
        f'instance = {{ value = "whole", {SRC} }}\n')


def _load(tmp_path, text):
    path = tmp_path / "benchmarks.toml"
    path.write_text(text, encoding="utf-8")
    return benchmarks.__wrapped__(path)


def test_shipped_file_loads_and_every_entry_cites_its_source():
    loaded = benchmarks(BENCHMARKS_FILE)
    assert [b.name for b in loaded] == ["trtllm-perf-overview", "trtllm-2023-low-latency", "trtllm-2023-throughput"]
    assert loaded[0].whole_instance and loaded[0].scenarios == {"offline"} and not loaded[0].generation
    assert loaded[0].requests_for(128, 4096) == 1500
    assert (loaded[1].generation, loaded[1].scenarios) == ("trtllm-0.5", {"single_stream"})
    assert (loaded[2].generation, loaded[2].scenarios) == ("trtllm-0.6", {"concurrency"})


def test_loader_names_the_field_and_value(tmp_path):
    assert _load(tmp_path, GOOD)[0].sources == ("https://example.org/*/perf.md",)
    with pytest.raises(CatalogError, match=r"benchmarks.toml: b.instance.value: 'split' is not one of whole"):
        _load(tmp_path, GOOD.replace('value = "whole"', 'value = "split"'))
    with pytest.raises(CatalogError, match=r"b.scenarios: 'batch' is not one of"):
        _load(tmp_path, GOOD.replace('["offline"]', '["batch"]'))
    with pytest.raises(CatalogError, match=r"b.sources: expected a non-empty list of strings"):
        _load(tmp_path, GOOD.replace('["https://example.org/*/perf.md"]', "[]"))
    with pytest.raises(CatalogError, match=r"b: unknown field 'replicas'"):
        _load(tmp_path, GOOD + "replicas = 2\n")
    with pytest.raises(CatalogError, match=r"b.instance"):
        _load(tmp_path, GOOD.replace(f', {SRC}', ""))  # no basis or source
    assert _load(tmp_path, GOOD + f'generation = {{ value = "old", {SRC} }}\n')[0].generation == "old"
    one = _load(tmp_path, GOOD + f'requests = {{ value = [[128, 128, 3000]], {SRC} }}\n')[0]
    assert one.requests_for(128, 128) == 3000 and one.requests_for(128, 2048) is None
    with pytest.raises(CatalogError, match=r"b.requests.value: expected \[\[input tokens, output tokens, requests\]"):
        _load(tmp_path, GOOD + f'requests = {{ value = [[128, 0, 3000]], {SRC} }}\n')
    with pytest.raises(CatalogError, match=r"b.generation.value: expected a generation id, got 3"):
        _load(tmp_path, GOOD + f'generation = {{ value = 3, {SRC} }}\n')


def _perf_overview_row():
    return next(c for c in load_cases("dev") if c.id == "M0192")  # Qwen3-235B FP4, B200 'TP8', 128/128


def test_perf_overview_rows_match_and_others_do_not():
    row = _perf_overview_row()
    assert "perf-overview.md" in row.source_url and benchmark_of(row).name == "trtllm-perf-overview"
    assert benchmark_of(replace(row, source_url="https://example.org/x ; " + row.source_url)) is not None
    assert benchmark_of(replace(row, scenario="server")) is None
    mlperf = next(c for c in load_cases("dev") if c.scenario == "offline" and "mlcommons" in c.source_url)
    assert benchmark_of(mlperf) is None


def test_a_whole_instance_row_runs_on_one_replica_of_its_chips():
    row = _perf_overview_row()
    whole = run_case(row)
    assert whole.prediction.layout.startswith("8× b200 (")  # one 8-chip instance, not "k× n× b200"
    split = run_case(replace(row, source_url="https://example.org/elsewhere"))
    # the planner alone splits 8 chips into smaller replicas, which the source's 'TP8' column rules out;
    # for a 235B MoE at 128/128 the split is the faster layout, so the whole instance predicts less
    assert split.prediction.layout != whole.prediction.layout and whole.predicted < split.predicted


def test_perf_overview_moe_rows_run_attention_dp_with_experts_over_the_instance():
    """The performance overview runs MoE models with enable_attention_dp and --ep: Llama-4-Maverick on
    8 H100 is then KV-bound (each rank keeps all 8 KV heads of its own sequences), where the planner's
    TP8 EP8 split the KV by heads and held twice the batch; the measured 10,829 tok/s (128/2048) sides
    with the documented layout."""
    bench = benchmarks(BENCHMARKS_FILE)[0]
    assert bench.moe_attention_dp
    row = next(c for c in load_cases("dev") if c.id == "M0171")
    documented = run_case(row)
    assert documented.prediction.layout.startswith("8× h100-sxm (DP8-attn EP8")
    planner = run_case(replace(row, source_url="https://example.org/elsewhere"))
    assert "DP8-attn" not in planner.prediction.layout
    assert abs(documented.error_pct) < abs(planner.error_pct)
    dense = run_case(next(c for c in load_cases("dev") if c.id == "M0109"))  # Llama-3.1-405B: TP as before
    assert "DP" not in dense.prediction.layout


def test_moe_attention_dp_must_be_a_sourced_boolean(tmp_path):
    with pytest.raises(CatalogError, match=r"b.moe_attention_dp.value: expected true or false, got 'yes'"):
        _load(tmp_path, GOOD + f'moe_attention_dp = {{ value = "yes", {SRC} }}\n')
    assert _load(tmp_path, GOOD + f"moe_attention_dp = {{ value = true, {SRC} }}\n")[0].moe_attention_dp


def test_perf_overview_rows_run_their_documented_requests_in_waves():
    """perf-overview.md runs 1,500 requests of exactly 128/4096 tokens: Llama-4-Maverick on 8 H200 with
    attention DP holds about 1,370 of them at once, so the run is two waves (the steady state would
    be one full batch after another); the measured 24,616 tok/s sides with the waves."""
    row = next(c for c in load_cases("dev") if c.id == "M0173")
    assert benchmark_of(row).requests_for(row.input_tokens, row.output_tokens) == 1500
    waves = run_case(row)
    assert "1500 requests in waves of" in waves.prediction.layout
    steady = run_case(replace(row, input_tokens=129))  # no documented request count: the steady state
    assert "requests in waves" not in steady.prediction.layout
    assert waves.predicted < 0.85 * steady.predicted and abs(waves.error_pct) < abs(steady.error_pct)
