"""Issue 16: `calibrate --no-logo` never labels an in-sample figure as leave-one-group-out, and
`make accuracy` refuses to publish a held-out figure that was not computed. Uses a tiny
hand-made fit (no `make calibrate` run)."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from siliconsim.calibration.fit import GroupFit
from siliconsim.calibration.params import KEYS, fit_config
from siliconsim.calibration.run import Calibration
from siliconsim.calibration.write import write_calibration
from siliconsim.validation.runner import run_suite
from siliconsim.validation.suite import load_cases

ROOT = Path(__file__).resolve().parents[2]


def _accuracy_script():
    spec = importlib.util.spec_from_file_location("update_readme_accuracy", ROOT / "scripts" / "update_readme_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tiny(held_out: bool) -> Calibration:
    cfg = fit_config()
    group = next(g for g in cfg.groups if "h100-sxm" in g.chips)
    cases = [c for c in load_cases() if c.hardware == "h100-sxm"][:3]
    rows = run_suite(cases)
    fit = GroupFit(group, {k: 0.05 for k in KEYS}, tuple(c.id for c in cases), 0.1)
    return Calibration(cfg, {group.name: fit}, rows, rows, rows if held_out else None)


def test_no_logo_leaves_the_held_out_figures_as_they_were(tmp_path):
    residuals = tmp_path / "residuals.toml"
    residuals.write_text('[meta]\nlogo_median_ape_pct = 17.1\n', encoding="utf-8")
    before = residuals.read_bytes()
    write_calibration(_tiny(held_out=False), tmp_path / "cal", residuals)
    assert residuals.read_bytes() == before  # untouched
    overlays = sorted((tmp_path / "cal").glob("*.toml"))
    assert overlays
    for p in overlays:
        meta = tomllib.loads(p.read_text(encoding="utf-8"))["meta"]
        assert meta["logo_computed"] is False
        assert "leave-one-group-out not computed" in meta["notes"]
        assert "leave-one-group-out median" not in meta["notes"]


def test_full_run_writes_the_held_out_figure(tmp_path):
    residuals = tmp_path / "residuals.toml"
    write_calibration(_tiny(held_out=True), tmp_path / "cal", residuals)
    meta = tomllib.loads(residuals.read_text(encoding="utf-8"))["meta"]
    assert isinstance(meta["logo_median_ape_pct"], float)
    for p in (tmp_path / "cal").glob("*.toml"):
        m = tomllib.loads(p.read_text(encoding="utf-8"))["meta"]
        assert m["logo_computed"] is True and "leave-one-group-out median |error|" in m["notes"]


def test_make_accuracy_refuses_a_figure_that_was_not_computed(tmp_path):
    script = _accuracy_script()
    residuals = tmp_path / "residuals.toml"
    residuals.write_text('[meta]\nlogo_median_ape_pct = 17.1\n', encoding="utf-8")
    write_calibration(_tiny(held_out=False), tmp_path / "cal", residuals)
    with pytest.raises(SystemExit, match="without leave-one-group-out"):
        script.logo_meta(residuals, tmp_path / "cal")
    write_calibration(_tiny(held_out=True), tmp_path / "cal", residuals)
    assert isinstance(script.logo_meta(residuals, tmp_path / "cal")["logo_median_ape_pct"], float)
    residuals.write_text("[meta]\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no leave-one-group-out median"):
        script.logo_meta(residuals, tmp_path / "cal")


def test_the_committed_calibration_is_publishable():
    # the overlays in the repository come from a full run (no logo_computed = false)
    assert _accuracy_script().logo_meta()["logo_median_ape_pct"] > 0


def test_sweep_rows_get_their_own_held_out_figures(tmp_path):
    """Serving-sweep rows are scored apart: the dev headline ignores them and residuals.toml gains
    a [concurrency] table with per-metric held-out medians."""
    cfg = fit_config()
    group = next(g for g in cfg.groups if "h200" in g.chips)
    dev = [c for c in load_cases() if c.hardware == "h200"][:3]
    sweep = [c for c in load_cases("concurrency") if c.hardware == "h200"][:4]
    rows = run_suite(dev + sweep)
    fit = GroupFit(group, {k: 0.0 for k in KEYS}, tuple(c.id for c in dev + sweep), 0.1)
    cal = Calibration(cfg, {group.name: fit}, rows, rows, rows)
    residuals = tmp_path / "residuals.toml"
    write_calibration(cal, tmp_path / "cal", residuals)
    doc = tomllib.loads(residuals.read_text(encoding="utf-8"))
    assert doc["concurrency"]["rows"] == 4
    assert set(doc["concurrency"]["logo_by_metric_median_ape_pct"]) == {c.metric for c in sweep}
    # the sweeps' residuals have buckets of their own (error bars of `siliconsim curve`)
    metrics = {b["metric"] for b in doc["bucket"]}
    assert {c.metric + "@closed-loop" for c in sweep} <= metrics and {c.metric for c in dev} <= metrics
    dev_only = run_suite(dev)
    from siliconsim.validation.summary import summarize
    assert doc["meta"]["logo_median_ape_pct"] == pytest.approx(summarize(dev_only)["median_ape_pct"], abs=0.01)
    assert cal.summaries()["fitted"]["median_ape_pct"] == pytest.approx(summarize(dev_only)["median_ape_pct"])
