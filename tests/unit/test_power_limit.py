"""The sustained clock of compute-bound work under a power limit (accounting.power.compute_clock),
the chip a power-limited run sees (power_limited), and MLPerf runs at a limit other than the TDP
(validation/data/submissions.toml power_limit_w)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconsim.accounting import default_assumptions
from siliconsim.accounting.power import cap_clock_exponent, compute_clock, power_limited
from siliconsim import hardware
from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import load_chip
from siliconsim.hardware.custom import resolve_chip
from siliconsim.validation.runner import run_case
from siliconsim.validation.suite import DATA, load_cases

A = default_assumptions()


def test_at_the_tdp_nothing_changes():
    for chip_id in ("h100-sxm", "h200", "b200", "mi300x"):
        chip = load_chip(chip_id)
        assert compute_clock(chip, chip.tdp_w, A) == pytest.approx(1.0)
        assert power_limited(chip, chip.tdp_w) is chip
    assert power_limited(load_chip("h200"), None) is load_chip("h200")


def test_below_the_tdp_the_cap_law_of_the_power_suite_holds():
    """((cap - idle) / (TDP - idle)) ** x for tensor-bound work, as before the full-clock draw existed."""
    chip = load_chip("h200")
    idle = A.idle_power_fraction * chip.tdp_w
    want = ((500 - idle) / (chip.tdp_w - idle)) ** cap_clock_exponent()
    assert compute_clock(chip, 500, A) == pytest.approx(want)


def test_above_the_tdp_the_clock_rises_to_the_full_clock_and_no_further():
    chip = load_chip("h200")
    assert chip.full_clock_power_w is not None and chip.full_clock_power_w > chip.tdp_w
    top = compute_clock(chip, chip.full_clock_power_w, A)
    assert top > 1.05
    assert compute_clock(chip, 2 * chip.full_clock_power_w, A) == pytest.approx(top)
    # a chip the catalog does not know to throttle at its TDP gains nothing from a higher limit
    b200 = load_chip("b200")
    assert b200.full_clock_power_w is None and compute_clock(b200, 1400, A) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(100, 1500), hi=st.floats(100, 1500), u=st.floats(0.05, 1.0))
def test_a_higher_limit_never_slows_compute(lo, hi, u):
    lo, hi = sorted((lo, hi))
    chip = load_chip("h100-sxm")
    assert compute_clock(chip, lo, A, u) <= compute_clock(chip, hi, A, u) + 1e-12


def test_power_limited_scales_only_the_compute_peaks_and_says_so():
    chip = load_chip("h200")
    fast = power_limited(chip, 1000)
    f = compute_clock(chip, 1000, A)
    assert fast.peak_flop_per_s("fp8") == pytest.approx(f * chip.peak_flop_per_s("fp8"))
    assert fast.bandwidth_bytes_per_s == chip.bandwidth_bytes_per_s and fast.id == chip.id
    assert "power limit 1000 W" in fast.what_if[-1]


def test_a_full_clock_draw_below_the_tdp_is_refused(tmp_path):
    src = (Path(hardware.__file__).parent / "data" / "chips" / "h200.toml").read_text(encoding="utf-8")
    bad = tmp_path / "h200.toml"
    bad.write_text(src.replace('full_clock = { value = "826 W"', 'full_clock = { value = "600 W"'), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"power.full_clock: 600 W, expected at least power.tdp \(700 W\)"):
        resolve_chip(str(bad), [])


def test_mlperf_runs_at_another_limit_are_predicted_on_the_chip_at_that_limit():
    """MLPerf v4.1 H200 CTS (1000 W), standard (700 W) and MaxQ (500 W) runs of llama2-70b Offline:
    the predictions keep the order of the measurements, each on its own limit."""
    cases = {c.id: c for c in load_cases(DATA / "dev.csv")}
    cts, std, maxq = (run_case(cases[i]) for i in ("M0318", "M0322", "M0330"))
    assert "power limit 1000 W" in cts.prediction.layout and "power limit 500 W" in maxq.prediction.layout
    assert "power limit" not in std.prediction.layout
    assert maxq.predicted < std.predicted < cts.predicted
    assert maxq.case.value < std.case.value < cts.case.value


def test_chip_power_above_the_tdp_runs_faster_and_draws_more():
    from siliconsim.accounting.power import chip_power
    from siliconsim.perf.step import StepCost
    chip = load_chip("h200")
    step = StepCost(0.08, 0.01, 0.0, 0.002, 0.092)  # a compute-bound decode step
    base, high, low = (chip_power(chip, step, A, lim) for lim in (None, 1000.0, 500.0))
    assert float(high.step.latency_s) < float(base.step.latency_s) < float(low.step.latency_s)
    assert float(low.power_w) <= 500 < float(base.power_w) <= chip.tdp_w < float(high.power_w) <= 1000
    b200 = load_chip("b200")  # no full-clock draw in the catalog: a higher limit changes nothing
    assert float(chip_power(b200, step, A, 1400.0).step.latency_s) == pytest.approx(float(step.latency_s))
