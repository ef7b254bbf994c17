"""`siliconsim report` (issue 15, item 2): one self-contained HTML file with the JSON behind it."""

import json
import re
from html.parser import HTMLParser

import pytest

from siliconsim.cli.main import main
from siliconsim.validation.suite import DEFAULT_SUITE

pytest.importorskip("matplotlib")


class _Refs(HTMLParser):
    """Every attribute that could make a browser fetch something, and the embedded record."""

    def __init__(self):
        super().__init__()
        self.fetching, self.record, self._in_record, self.svgs = [], None, False, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag in ("link", "img", "iframe", "object", "embed") or (tag == "script" and "src" in a):
            self.fetching.append((tag, a))
        for key in ("src", "href", "xlink:href"):
            if key in a and not a[key].startswith("#"):
                self.fetching.append((tag, a))
        self._in_record = tag == "script" and a.get("id") == "siliconsim-record"

    def handle_data(self, data):
        if self._in_record:
            self.record = json.loads(data)
            self._in_record = False


def report(capsys, tmp_path, *argv):
    out = tmp_path / "report.html"
    code = main(["report", *argv, "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    text = out.read_text()
    refs = _Refs()
    refs.feed(text)
    return text, refs


def test_compare_report_is_one_offline_file_with_its_json(capsys, tmp_path):
    argv = ("compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "cs-3", "--set", "memory.hbm.bandwidth=6.7 TB/s")
    text, refs = report(capsys, tmp_path, *argv)
    assert refs.fetching == [] and not re.search(r"url\((?!#)|@import|https?://(?!www\.w3\.org/)", text)
    assert refs.svgs == 3  # decode breakdown, prefill breakdown, roofline
    main(list(argv) + ["--format", "json"])
    direct = json.loads(capsys.readouterr()[0])
    assert refs.record == direct
    assert {r["hardware"] for r in refs.record["results"]} == {"h100-sxm", "h100-sxm*", "cs-3"}
    for label in ("milliseconds (per output token)", "arithmetic intensity (FLOP/byte)", "TPOT (ms)", "siliconsim 0."):
        assert label in text
    assert "memory.hbm.bandwidth = 6.7 TB/s" in text


def test_train_report_draws_the_step_breakdown(capsys, tmp_path):
    text, refs = report(capsys, tmp_path, "train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "8", "--top", "2")
    assert refs.svgs == 1 and "seconds per optimizer step" in text and "pipeline bubble" in text
    assert refs.record["best"]["hardware"] == "h100-sxm"


def test_validate_report_has_a_scatter_with_error_band(capsys, tmp_path):
    cases = tmp_path / "cases.csv"
    cases.write_text("".join(DEFAULT_SUITE.read_text().splitlines(keepends=True)[:8]))
    text, refs = report(capsys, tmp_path, "validate", "--cases", str(cases))
    assert refs.svgs == 1 and "predicted vs measured" in text and "prediction = measurement" in text
    assert len(refs.record["rows"]) == 7


def test_embedded_json_cannot_close_its_script():
    from siliconsim.report.html import embedded_json

    text = embedded_json({"note": "</script><script>alert(1)</script>"})
    assert "</" not in text and json.loads(text)["note"].startswith("</script>")


def test_report_of_a_failing_command_is_one_line(capsys, tmp_path):
    code = main(["report", "compare", "-m", "llama-3.1-8b", "-H", "no-such-chip", "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr()[1]
    assert code == 2 and err.count("\n") == 1 and "unknown hardware id" in err
    assert not (tmp_path / "r.html").exists()


def test_plan_report_draws_each_systems_front(capsys, tmp_path):
    text, refs = report(capsys, tmp_path, "plan", "-m", "llama-3.1-8b", "--rate", "5", "-H", "h100-sxm", "b200",
                        "--no-simulate")
    assert refs.svgs == 1 and "Pareto front per system" in text and "cost out ($/Mtok)" in text
    assert refs.record["best"]["hardware"] in ("h100-sxm", "b200")


def test_plan_front_keeps_only_plans_no_other_beats_on_both():
    from siliconsim.report.figures import _front

    plans = [{"tok_s_per_user": t, "usd_per_mtok_output": c} for t, c in ((10, 1), (20, 3), (15, 4), (30, 2), (5, 0.5))]
    assert [(p["tok_s_per_user"], p["usd_per_mtok_output"]) for p in _front(plans)] == [(5, 0.5), (10, 1), (30, 2)]


def test_curve_report_draws_throughput_against_interactivity(capsys, tmp_path):
    text, refs = report(capsys, tmp_path, "curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "b200", "--concurrency", "1,8")
    assert refs.fetching == [] and refs.svgs == 1
    assert "output tokens/s per chip" in text and "output tokens/s per user (1/TPOT)" in text
    assert {r["hardware"] for r in refs.record["results"]} == {"h100-sxm", "b200"}
