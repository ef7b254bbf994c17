"""`siliconsim curve`: the throughput-interactivity trade-off over a concurrency sweep."""

import json

from siliconsim.cli.main import main


def test_curve_json_trades_interactivity_for_throughput(capsys):
    code = main(["curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "b200", "--concurrency", "1,8,64", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["schema_version"] == 1
    for hw in ("h100-sxm", "b200"):
        pts = [r for r in doc["results"] if r["hardware"] == hw]
        assert [p["concurrency"] for p in pts] == [1, 8, 64]
        per_user = [p["output_tok_s_per_user"] for p in pts]
        per_chip = [p["output_tok_s_per_chip"] for p in pts]
        assert per_user == sorted(per_user, reverse=True) and per_chip == sorted(per_chip)
        for p in pts:
            r = p["output_tok_s_per_chip_range"]
            assert r["low"] < p["output_tok_s_per_chip"] < r["high"]


def test_curve_plot_and_bad_concurrency(tmp_path, capsys):
    path = tmp_path / "c.png"
    assert main(["curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--concurrency", "1,4", "--plot", str(path)]) == 0
    assert path.stat().st_size > 1000
    try:
        code = main(["curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--concurrency", "0,x"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "--concurrency" in err and len(err.strip().splitlines()) == 1


def _json(capsys, argv):
    code = main(["curve", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_curve_engine_runs_as_launched_on_the_published_layout(capsys):
    """--engine sglang on B200 FP4 TP8 EP8 takes InferenceX's launch settings per concurrency: the
    script raises SGLang's polling interval from 10 to 30 decode steps at concurrency 16, so TTFT jumps
    there while TPOT barely moves (measured in inferencex-dev.csv: 190 -> 325 ms at 1k/1k)."""
    argv = ["-m", "deepseek-r1", "-H", "b200", "--dtype", "fp4", "--tp", "8", "--ep", "8", "--concurrency", "8,16"]
    code, doc = _json(capsys, [*argv, "--engine", "sglang"])
    assert code == 0
    c8, c16 = doc["results"]
    assert "sglang as launched" in c8["layout"] and "TP8 EP8" in c8["layout"]
    assert c16["ttft_s"] - c8["ttft_s"] > 0.08 and c16["tpot_s"] < 1.5 * c8["tpot_s"]
    code, plain = _json(capsys, argv)  # the same layout without the engine's settings
    assert code == 0 and "as launched" not in plain["results"][0]["layout"]
    assert plain["results"][1]["ttft_s"] - plain["results"][0]["ttft_s"] < c16["ttft_s"] - c8["ttft_s"]


def _error(capsys, argv):
    try:
        code = main(["curve", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_curve_layout_and_engine_options_say_what_is_missing(capsys):
    base = ["-m", "deepseek-r1", "-H", "b200", "--dtype", "fp4"]
    assert "--engine needs --tp N" in _error(capsys, [*base, "--engine", "sglang"])
    assert "--ep needs --tp N" in _error(capsys, [*base, "--ep", "8"])
    assert "--chips 4 and --tp 8" in _error(capsys, [*base, "--tp", "8", "--chips", "4"])
    err = _error(capsys, ["-m", "llama-3.1-8b", "-H", "h100-sxm", "--tp", "1", "--engine", "trtllm"])
    assert "no published launch settings for h100-sxm" in err and "engines.toml" in err
    assert "invalid choice" in _error(capsys, [*base, "--tp", "8", "--engine", "vllm"])
