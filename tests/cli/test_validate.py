"""`siliconsim validate` and `siliconsim calibrate --help`: formats, schema, one-line errors."""

import json
from pathlib import Path

from siliconsim.cli.main import main
from siliconsim.validation.suite import DEFAULT_SUITE


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _subset(tmp_path: Path, ids: set[str], edit=None) -> Path:
    lines = DEFAULT_SUITE.read_text(encoding="utf-8").splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",", 1)[0] in ids]
    if edit:
        keep = [edit(ln) for ln in keep]
    path = tmp_path / "cases.csv"
    path.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return path


def test_json_has_rows_and_summary_schema(capsys, tmp_path):
    cases = _subset(tmp_path, {"M0148", "M0299", "M0300", "M0301"})
    code, out, _ = run(capsys, "validate", "--cases", str(cases), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [r["id"] for r in doc["rows"]] == ["M0148", "M0299", "M0300", "M0301"]
    for r in doc["rows"]:
        assert {"id", "predicted", "measured", "error_pct", "status", "reason"} <= set(r)
        assert r["status"] == "predicted" and r["predicted"] > 0
        assert abs(r["error_pct"] - 100 * (r["predicted"] / r["measured"] - 1)) < 1e-6
    s = doc["summary"]
    for key in ("median_ape_pct", "mean_ape_pct", "coverage_pct", "by_vendor", "by_metric", "by_scenario",
                "by_trust", "by_speculative", "exceeds_bound", "not_predicted"):
        assert key in s
    assert s["coverage_pct"] == 100.0 and set(s["by_metric"]) == {"aggregate_output_tok_s", "ttft_mean_ms",
                                                                   "tpot_mean_ms"}


def test_unknown_hardware_is_a_one_line_error_not_zero_coverage(capsys, tmp_path):
    # issue 16: this used to exit 0 with 0% coverage; the library still lists such rows (test_validation)
    cases = _subset(tmp_path, {"M0148", "M0299"}, lambda ln: ln.replace(",h100-sxm,", ",h100-nvl,"))
    code, out, err = run(capsys, "validate", "--cases", str(cases), "--format", "json")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "cases.csv: row M0148, column hardware: unknown hardware id 'h100-nvl'" in err


def test_random_bytes_suite_is_one_line_error(capsys, tmp_path):
    path = tmp_path / "noise.csv"
    header = DEFAULT_SUITE.read_text(encoding="utf-8").splitlines()[0].encode()
    for raw in (bytes(range(128, 256)) * 64, header + b"\n" + bytes(range(128, 256)) * 64, b"a\0b\n" * 10):
        path.write_bytes(raw)
        code, _, err = run(capsys, "validate", "--cases", str(path))
        assert code == 2 and err.count("\n") == 1 and "noise.csv" in err, err


def test_malformed_row_names_row_and_column(capsys, tmp_path):
    cases = _subset(tmp_path, {"M0148"}, lambda ln: ln.replace(",h100-sxm,1,", ",h100-sxm,two,"))
    code, _, err = run(capsys, "validate", "--cases", str(cases))
    assert code == 2
    assert "line 2 (M0148), column chips" in err and err.count("\n") == 1


def test_csv_and_table_formats(capsys, tmp_path):
    cases = _subset(tmp_path, {"M0148"})
    code, out, _ = run(capsys, "validate", "--cases", str(cases), "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("id,") and len(out.splitlines()) == 2
    code, out, _ = run(capsys, "validate", "--cases", str(cases))
    assert code == 0 and "headline" in out and "M0148" in out


def test_missing_file_is_one_line_error(capsys, tmp_path):
    code, _, err = run(capsys, "validate", "--cases", str(tmp_path / "nope.csv"))
    assert code == 2 and err.startswith("siliconsim: error:")
