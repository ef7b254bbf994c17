"""The published-measurement suite as a regression gate (thresholds in validation/data/thresholds.toml).

Source of every row: src/siliconsim/validation/data/dev.csv (each row cites its source_url).
Tolerance: the headline median |error| of the calibrated model plus a margin; see thresholds.toml.
"""

import functools

import pytest

from siliconsim.hardware.catalog import read_toml
from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import DATA, load_cases
from siliconsim.validation.summary import summarize


@functools.cache
def _summary():
    return summarize(run_suite(load_cases()))


def _gate(key: str) -> float:
    return float(read_toml(DATA / "thresholds.toml")["gate"][key]["value"])


def test_median_error_does_not_regress():
    s = _summary()
    assert s["median_ape_pct"] <= _gate("median_ape_pct"), (
        f"headline median |error| {s['median_ape_pct']:.1f}% > gate {_gate('median_ape_pct')}%")


def test_coverage_bar():
    assert _summary()["coverage_pct"] >= _gate("min_coverage_pct")


def test_rows_past_a_bound_are_few_and_listed():
    s = _summary()
    assert 100.0 * len(s["exceeds_bound"]) / s["rows"] <= _gate("max_exceeds_bound_pct")
    assert all(x["likely_cause"] and x["reason"] for x in s["exceeds_bound"])


def test_no_row_is_dropped_silently():
    s = _summary()
    assert s["headline_rows"] + len(s["exceeds_bound"]) + len(s["not_predicted"]) == s["rows"]
    assert all(x["reason"] for x in s["not_predicted"])


@pytest.mark.parametrize("metric", ["aggregate_output_tok_s", "tpot_mean_ms"])
def test_each_major_metric_is_predicted_within_a_factor_two_on_median(metric):
    g = _summary()["by_metric"][metric]
    assert g["median_ape_pct"] < 50


@functools.cache
def _sweeps():
    from siliconsim.validation.summary import summarize_concurrency

    return summarize_concurrency(run_suite(load_cases("concurrency")))


@pytest.mark.parametrize("metric", ["aggregate_output_tok_s", "output_tok_s_per_user", "tpot_median_ms",
                                    "ttft_median_ms"])
def test_serving_sweeps_do_not_regress(metric):
    """The InferenceX sweeps (inferencex-dev.csv; each row cites its GitHub Actions run): in-sample
    median |error| per metric within the gate of thresholds.toml [gate_concurrency]."""
    gate = float(read_toml(DATA / "thresholds.toml")["gate_concurrency"][metric]["value"])
    got = _sweeps()["by_metric"][metric]["median_ape_pct"]
    assert got <= gate, f"{metric}: median |error| {got:.1f}% > gate {gate}%"


def test_serving_sweeps_coverage():
    gate = float(read_toml(DATA / "thresholds.toml")["gate_concurrency"]["min_coverage_pct"]["value"])
    assert _sweeps()["coverage_pct"] >= gate
