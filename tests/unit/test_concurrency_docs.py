"""Issue 13, deliverable 4: the figures and tables `make accuracy` writes for the serving sweeps
(scripts/concurrency_figures.py, the sweep part of scripts/update_readme_accuracy.py). Runs on a
few rows of inferencex-dev.csv; no full suite run."""

import importlib.util
import math
import sys
from pathlib import Path

from dataclasses import replace

import pytest

from siliconsim.calibration.params import fit_config, overrides_for
from siliconsim.hardware.catalog import load_chip
from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import DATA, SUITES, load_cases

ROOT = Path(__file__).resolve().parents[2]


def _script(name):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return mod


@pytest.fixture(scope="module")
def figures():
    return _script("concurrency_figures")


@pytest.fixture(scope="module")
def accuracy():
    return _script("update_readme_accuracy")


@pytest.fixture(scope="module")
def rows():
    """Four 1k/1k sweeps: H200 TensorRT-LLM on TP8 EP1 (2 points) and TP8 EP8 (5), MI300X SGLang
    (5), and the MI300X points at 4 and 8 moved to a chip the catalog lacks (never predicted,
    whatever the model does)."""
    cases = [c for c in load_cases(DATA / SUITES["concurrency"]) if c.input_tokens == c.output_tokens
             and (c.hardware, c.engine) in (("h200", "trtllm"), ("mi300x", "sglang"))]
    unknown = [replace(c, id=f"Z{i:04d}", hardware="no-such-gpu") for i, c in enumerate(cases)
               if c.hardware == "mi300x" and c.concurrency in (4, 8)]
    return run_suite(cases + unknown)


def test_draws_one_png_per_model_hardware_precision_and_removes_stale_ones(figures, rows, tmp_path):
    (tmp_path / "old-figure.png").write_bytes(b"\x89PNG stale")
    written = figures.draw([r for r in rows if r.case.hardware != "mi300x"], tmp_path)  # two figures suffice
    names = sorted(p.name for p in written)
    assert names == ["deepseek-r1-h200-fp8.png", "deepseek-r1-no-such-gpu-fp8.png"]  # the latter: measured only
    assert figures.figure_links(rows, "img")[0] == "![deepseek-r1 on h200, fp8](img/deepseek-r1-h200-fp8.png)"
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # the stale PNG is gone, no temp files left
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_the_predicted_curve_is_what_validate_scores(figures, rows):
    # at a measured concurrency the curve's point is the row's own prediction
    thr = next(r for r in rows if r.covered and r.case.metric == figures.THROUGHPUT and r.case.hardware == "h200")
    user = next(r for r in rows if r.case.metric == figures.PER_USER and r.case.concurrency == thr.case.concurrency
                and figures.setup_key(r.case) == figures.setup_key(thr.case))
    (n, per_user, per_gpu), = figures.predicted_curve(thr.case, [thr.case.concurrency])
    assert n == thr.case.concurrency
    assert per_user == pytest.approx(user.predicted, rel=1e-12)
    assert per_gpu == pytest.approx(thr.predicted / thr.case.chips, rel=1e-12)
    # a setup that cannot be predicted gives no curve
    lost = next(r for r in rows if r.case.hardware == "no-such-gpu")
    assert not lost.covered and figures.predicted_curve(lost.case, [1, 4, 16]) == []


def test_sweep_table_one_line_per_sweep_with_signed_errors(figures, rows):
    lines = figures.sweep_table(rows, "img")
    sweeps = figures.sweeps(rows)
    assert len(lines) == 2 + len(sweeps) and len(sweeps) == 4
    missing, = [line for line in lines if "no-such-gpu" in line]
    assert "| 4, 8 | – | – | – | – | " in missing and "no-such-gpu" in missing.split("|")[-2]
    h200 = next(line for line in lines if "h200" in line and "TP8 EP8" in line)
    assert "(img/deepseek-r1-h200-fp8.png)" in h200 and "1k/1k" in h200 and "4, 8, 16, 32, 64" in h200


def test_labels(figures, rows):
    case = next(r.case for r in rows if r.case.hardware == "mi300x")
    assert figures.shape_label(case) == "1k/1k"  # 921.6 = 0.9 x 1024, the mean of uniform [0.8, 1.0] x nominal
    assert figures.layout_label(case) == "TP8 EP1, 8 GPUs"


def test_sweep_section_states_coverage_and_the_held_out_basis(accuracy, rows):
    text = "\n".join(accuracy.sweep_section([], rows))
    assert "| h200 · trtllm |" in text and "| mi300x · sglang |" in text and "| **all** |" in text
    coverage = text.split("Coverage: ")[1]
    # 14 points x 4 metrics; the two on the unknown chip are not predicted, with the catalog's reason
    assert coverage.startswith("48/56 rows predicted") and "(8 rows): " in coverage and "no-such-gpu" in coverage
    # `siliconsim calibrate` fits the sweeps too (cli.calibrate.CALIBRATION_SUITES), so the held-out figure refits
    assert "Sweep rows are among the calibration's fitted rows" in text
    assert "AIConfigurator" in text and any(f"({v})" in text for v in ("better", "worse", "level"))


def test_held_out_sweep_keeps_groups_the_fit_never_saw_and_refits_the_others(accuracy, rows):
    h200 = [r for r in rows if r.case.hardware == "h200" and r.covered]
    assert accuracy.sweep_held_out(h200, []) == h200
    # a calibration that fitted two sweep points of h200 trtllm: holding the group out refits hopper without them
    fit_cases = [r.case for r in h200 if r.case.metric == "aggregate_output_tok_s"][:2]
    other = [r for r in rows if r.case.hardware == "mi300x" and r.covered][:4]
    held = accuracy.sweep_held_out(h200 + other, fit_cases)
    assert held[len(h200):] == other  # mi300x: no fitted row of its own group
    assert all(h.case == r.case for h, r in zip(held, h200))
    assert any(not math.isclose(h.predicted, r.predicted, rel_tol=1e-9) for h, r in zip(held, h200))


def test_committed_fits_reproduce_the_committed_efficiencies(accuracy):
    cfg = fit_config()
    fits = accuracy.committed_fits(cfg)
    for group in cfg.groups:
        for chip, values in overrides_for(group, fits[group.name].theta).items():
            eff = load_chip(chip).efficiency
            for k, v in values.items():
                assert v == pytest.approx(eff[k], rel=5e-3), (chip, k)  # overlays keep 3 (times) to 4 significant digits


def test_id_list_joins_runs(accuracy):
    ids = ["X0425", "X0426", "X0427", "X0431", "M0001", "M0002"]
    assert accuracy._id_list(ids) == "X0425–X0427, X0431, M0001–M0002"


def test_update_refuses_before_writing_anything(accuracy, tmp_path, monkeypatch):
    readme, docs = tmp_path / "README.md", tmp_path / "page.md"
    readme.write_text(f"# r\n\n{accuracy.BEGIN}\nold\n{accuracy.END}\n", encoding="utf-8")
    docs.write_text(f"# d\n\n{accuracy.DOCS_BEGIN}\n{accuracy.DOCS_END}\n", encoding="utf-8")
    residuals = tmp_path / "residuals.toml"
    residuals.write_text("[meta]\n", encoding="utf-8")  # no held-out median: not computed
    monkeypatch.setattr(accuracy, "RESIDUALS_FILE", residuals)
    with pytest.raises(SystemExit, match="no leave-one-group-out median"):
        accuracy.update(readme, docs, tmp_path / "img")
    assert "old" in readme.read_text(encoding="utf-8") and not (tmp_path / "img").exists()


def test_replace_swaps_the_block_between_markers_or_appends_it(accuracy):
    text = f"a\n{accuracy.DOCS_BEGIN}\nold\n{accuracy.DOCS_END}\nb\n"
    new = f"{accuracy.DOCS_BEGIN}\nnew \\1 text\n{accuracy.DOCS_END}"
    assert accuracy._replace(text, accuracy.DOCS_BEGIN, accuracy.DOCS_END, new, "X") == f"a\n{new}\nb\n"
    assert accuracy._replace("a\n", accuracy.DOCS_BEGIN, accuracy.DOCS_END, new, "X") == f"a\n\n## X\n\n{new}\n"
