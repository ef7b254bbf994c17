"""Energy as meters count it: MLPerf Inference v4.1 power category, NVIDIA 8x H200 MaxQ (GPUs capped
at 500 W; 350 W for GPT-J), AC wall power from the calibrated analyzer logs (validation/data/power-dev.csv,
sources in its rows). Tolerances are issue 14's bars: median |error| <= 15% on system power and <= 20% on
energy per output token; the measured host draw (~2.35 kW before a run) is 38-49% of these readings, so a
GPU-only model would miss by that much and fail."""

import statistics

from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import load_cases


def _errors() -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in run_suite(load_cases("power")):
        assert r.covered, f"{r.case.id}: {r.reason}"
        out.setdefault(r.case.metric, []).append(abs(r.error_pct))
    return out


def test_power_suite_meets_the_issue_bars():
    err = _errors()
    assert len(err["system_power_w"]) == len(err["energy_j_per_output_token"]) == 6
    assert statistics.median(err["system_power_w"]) <= 15.0
    assert statistics.median(err["energy_j_per_output_token"]) <= 20.0


def test_capped_rows_run_slower_than_the_uncapped_prediction():
    for r in run_suite(load_cases("power")):
        if r.case.metric == "aggregate_output_tok_s":
            assert "slower" in r.prediction.layout and r.case.chip_power_limit_w in (350.0, 500.0)
