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
