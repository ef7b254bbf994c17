"""Validation internals: suite parsing, lengths, scenarios, serving approximation, bounds, error bars."""

import math
from dataclasses import replace

import pytest

from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.plans import plan_deployment
from siliconsim.validation import errorbars
from siliconsim.validation.bounds import bound
from siliconsim.validation.runner import run_case
from siliconsim.validation.scenarios import offline, predict
from siliconsim.serving.approx import operating_point, serving_constants
from siliconsim.validation.suite import DEFAULT_SUITE, load_cases
from siliconsim.validation.workload import lengths


@pytest.fixture(scope="module")
def cases():
    return {c.id: c for c in load_cases()}


def test_suite_loads_every_row_with_trust_tags(cases):
    assert len(cases) == 279
    assert {c.trust for c in cases.values()} == {"mlperf", "vendor-benchmark", "independent", "vendor-claim", "academic"}


def test_bad_cell_names_file_line_id_and_column(tmp_path):
    lines = DEFAULT_SUITE.read_text(encoding="utf-8").splitlines()
    bad = lines[1].replace(",single_stream,", ",batch,")
    path = tmp_path / "x.csv"
    path.write_text("\n".join([lines[0], bad]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x.csv line 2 \(M0001\), column scenario"):
        load_cases(path)


def test_mlperf_rows_take_the_dataset_mean_input(cases):
    ln = lengths(cases["M0299"])  # llama2-70b server, input empty
    # OpenOrca's per-sample token lengths: mean prompt 222.3, output-weighted prompt 199.5, output cv 0.787
    assert ln.input_tokens == 222.3 and ln.output_tokens == cases["M0299"].output_tokens
    assert ln.decode_context_tokens == pytest.approx(199.5 + ln.output_tokens * (1 + 0.787 ** 2) / 2)
    assert "llama2-70b" in ln.assumption and "cv 0.79" in ln.assumption
    fixed = lengths(cases["M0148"])  # fixed-length row: nothing assumed, equal lengths
    assert fixed.assumption == "" and fixed.decode_context_tokens is None


def test_offline_layout_search_is_at_least_the_smallest_replica(cases):
    c = cases["M0298"]  # 8x H100, llama-2-70b offline
    model, chip, ln = load_model(c.model), load_chip(c.hardware), lengths(c)
    best = offline(c, model, chip, ln).value
    one = offline(replace(c, chips=None), model, chip, ln)
    per_chip_smallest = one.value / int(one.layout.split("×")[0])
    assert best >= per_chip_smallest * 8 * 0.999


def test_server_operating_point_meets_the_p99_limits(cases):
    c = cases["M0299"]
    model, chip, ln = load_model(c.model), load_chip(c.hardware), lengths(c)
    dep = plan_deployment(model, chip, chips=2, dtype="fp8", context_tokens=ln.input_tokens + ln.output_tokens).deployment
    op = operating_point(dep, ln.input_tokens, ln.output_tokens, 2.0, 0.2)
    k = serving_constants()
    assert op.feasible and k["p99_over_mean_tpot"] * op.tpot_mean_s <= 0.2 + 1e-12
    assert k["p99_over_mean_ttft"] * op.ttft_mean_s <= 2.0 + 1e-12
    tight = operating_point(dep, ln.input_tokens, ln.output_tokens, 0.45, 0.04)
    assert tight.output_tok_s < op.output_tok_s and tight.batch < op.batch


def test_every_metric_maps_to_a_positive_prediction(cases):
    for cid in ("M0148", "M0299", "M0300", "M0301", "M0226", "M0220"):
        c = cases[cid]
        p = predict(c, load_model(c.model), load_chip(c.hardware), lengths(c))
        assert p.covered and p.value > 0, cid


def test_unknown_model_is_a_reason_not_a_crash(cases):
    r = run_case(replace(cases["M0148"], model="llama-9-1t"))
    assert not r.covered and "llama-9-1t" in r.reason and r.status == "not-predicted"


def test_throughput_bound_is_an_upper_bound_on_the_prediction(cases):
    for cid in ("M0148", "M0298", "M0421"):
        c = cases[cid]
        r = run_case(c)
        assert r.bound is not None and r.bound.upper and r.predicted <= r.bound.value


def test_time_bounds_are_lower_bounds(cases):
    c = cases["M0301"]  # tpot_mean_ms
    b = bound(c, load_model(c.model), load_chip(c.hardware), lengths(c), 8)
    assert b is not None and not b.upper and 0 < b.value < c.value


def test_error_interval_validated_and_extrapolated():
    errorbars.clear_cache()
    iv = errorbars.interval("h200", "hbm", "llama-2-70b", "aggregate_output_tok_s")
    assert iv.basis == "validated" and iv.n >= 5 and iv.low_factor <= 1.0 <= iv.high_factor
    lo, hi = iv.bounds(1000.0)
    assert lo <= hi
    ex = errorbars.interval("tpu-v6e", "hbm", "llama-2-70b", "aggregate_output_tok_s")
    assert ex.basis == "extrapolated" and math.isfinite(ex.low_factor)
    assert errorbars.interval("h200", "hbm", "qwen3-coder-30b-a3b", "tpot_s").basis == "extrapolated"
