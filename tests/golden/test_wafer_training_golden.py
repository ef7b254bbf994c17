"""Golden: the Cerebras rows of the training suite (T0200-T0204), predicted through the runner.

Source: Argonne ALCF AI-testbed logs (argonne-lcf/user-guides example-programs.md at commits
f044e99c, ba547969, a8a674de, 8570ee46; AIaccelerators-SC23-tutorial gpt-j.md): GPT-J 6B on one
and two CS-2 under releases R1.7.1, R1.8.0, R1.9.2, R2.0.3, and LLaMA 7B on one CS-2 under R2.1.1.

Two parameters are fitted (one mesh fraction per CS-2 release line, R1 and R2) on these five
rows. Bar (issue 12): all predicted, median |error| <= 15%. Per-row tolerance: R2 rows within
10% (two rows, one parameter); R1 rows within 25%, because one factor spans three releases
whose measured per-system throughput differs by 44% (28.2k tokens/s per CS-2 at R1.7.1 vs
40.6k at R1.9.2) on the same hardware and job, which no per-line factor can resolve.
"""

import statistics

import pytest

from siliconsim.calibration.wafer_training import fit_lines
from siliconsim.training.wafer import wafer_data
from siliconsim.validation.training_runner import predict_training_case
from siliconsim.validation.training_suite import load_training_cases

CEREBRAS = ("T0200", "T0201", "T0202", "T0203", "T0204")


@pytest.fixture(scope="module")
def results():
    cases = [c for c in load_training_cases() if c.id in CEREBRAS]
    assert len(cases) == 5
    return {c.id: predict_training_case(c) for c in cases}


def test_all_five_predicted_with_median_error_within_15pct(results):
    assert all(r.covered for r in results.values()), {k: r.reason for k, r in results.items()}
    assert statistics.median(abs(r.error_pct) for r in results.values()) <= 15.0


@pytest.mark.parametrize("row,tol", [("T0203", 10), ("T0204", 10), ("T0200", 25), ("T0201", 25), ("T0202", 25)])
def test_each_row_within_its_tolerance(results, row, tol):
    assert abs(results[row].error_pct) <= tol


def test_rows_run_at_their_published_batch_per_system(results):
    lay = results["T0201"].estimate.layout
    assert lay.dp == 2 and lay.microbatch == 65 and lay.accumulation == 1 and lay.line == "R1"
    assert results["T0204"].estimate.layout.microbatch == 99  # fits the wafer SRAM, as the log ran it


def test_stored_fractions_are_the_fit():
    fits, _ = fit_lines(load_training_cases())
    stored = {f"{s.chip}.{s.line}": s.fraction for s in wafer_data().lines}
    assert len(fits) == 2  # at most one parameter per wafer generation and release line
    for f in fits:
        assert stored[f.key] == pytest.approx(f.fraction, rel=1e-3), "rerun scripts/fit_wafer_training.py --write"


def test_scaling_64_cs3_at_fixed_batch_per_system():
    """Bar: 64 CS-3 give >= 0.9 x 64 x one system's tokens/s with the batch per system held;
    on failure the message names the term that grew."""
    from siliconsim.hardware.catalog import load_chip
    from siliconsim.models.catalog import load_model
    from siliconsim.training import TrainingJob, plan_training

    def est(n):
        return plan_training(TrainingJob(model=load_model("llama-3.1-70b"), chip=load_chip("cs-3"), chips=n,
                                         seq_len=4096, global_batch=8 * n)).best

    one, many = est(1), est(64)
    grew = max(one.breakdown.as_dict(), key=lambda k: many.breakdown.as_dict()[k] - one.breakdown.as_dict()[k])
    assert many.tokens_per_s >= 0.9 * 64 * one.tokens_per_s, f"limited by {grew}"
