"""`siliconsim curve` with disaggregated pools (--prefill-chips/--decode-chips) and speculative
decoding (--speculative/--draft-tokens)."""

import json

import pytest

from siliconsim.cli.main import main

BASE = ["curve", "-m", "deepseek-r1", "-H", "h200", "--concurrency", "1,64", "--format", "json"]


def _points(capsys, *extra: str) -> list[dict]:
    assert main([*BASE, *extra]) == 0
    return json.loads(capsys.readouterr().out)["results"]


def test_disaggregated_curve_counts_both_pools_and_mtp_speeds_it_up(capsys):
    agg = _points(capsys)
    dis = _points(capsys, "--prefill-chips", "8", "--decode-chips", "8")
    mtp = _points(capsys, "--prefill-chips", "8", "--decode-chips", "8", "--speculative", "mtp")
    deeper = _points(capsys, "--prefill-chips", "8", "--decode-chips", "8", "--speculative", "mtp", "--draft-tokens", "3")
    assert [p["chips"] for p in dis] == [16, 16] and "8P8D" in dis[0]["layout"]
    assert all(p["feasible"] for p in agg + dis + mtp + deeper)
    # the decode pool decodes only: at 64 in flight its TPOT is below the aggregated replica's
    assert dis[1]["tpot_s"] < agg[1]["tpot_s"]
    # per chip, twice the chips for about the same decode work
    assert dis[1]["output_tok_s_per_chip"] < agg[1]["output_tok_s_per_chip"]
    assert "speculative k=1" in mtp[0]["layout"] and "speculative k=3" in deeper[0]["layout"]
    for a, b, c in zip(dis, mtp, deeper):
        assert a["output_tok_s_per_user"] < b["output_tok_s_per_user"] < c["output_tok_s_per_user"]


def test_drafts_never_accepted_are_slower_than_plain_decoding(capsys):
    plain = _points(capsys)
    never = _points(capsys, "--speculative", "mtp", "--acceptance", "0")
    assert "acceptance 0 (1.00 tok/step" in never[0]["layout"]
    for a, b in zip(plain, never):
        assert b["output_tok_s_per_user"] < a["output_tok_s_per_user"]
        assert b["output_tok_s_per_chip"] < a["output_tok_s_per_chip"]


def test_table_caption_names_the_modes(capsys):
    assert main(["curve", "-m", "deepseek-r1", "-H", "h200", "--concurrency", "4", "--prefill-chips", "8",
                 "--decode-chips", "8", "--speculative", "mtp"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "disaggregated (serving/disagg.py)" in out and "mtp (serving/speculative_loop.py)" in out


@pytest.mark.parametrize("extra, message", [
    (["--prefill-chips", "8"], "--prefill-chips and --decode-chips go together"),
    (["--draft-tokens", "2"], "--draft-tokens needs --speculative TECH"),
    (["--acceptance", "0.5"], "--acceptance needs --speculative TECH"),
    (["--speculative", "mtp", "--acceptance", "1.5"], "expected a fraction between 0 and 1"),
    (["--prefill-chips", "1", "--decode-chips", "1"], "decode pool: weights need"),
])
def test_bad_combinations_are_one_line_errors(capsys, extra, message):
    try:
        code = main([*BASE, *extra])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_technique_the_model_lacks_is_an_error(capsys):
    try:
        code = main(["curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--concurrency", "4", "--speculative", "mtp"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "no multi-token-prediction layer" in err
