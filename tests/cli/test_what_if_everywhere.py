"""Chip files and --set what-ifs in `curve` and `plan` too (issue 15: everywhere a hardware id is accepted)."""

import json

from siliconsim.cli.main import main


def test_curve_what_if_is_faster_with_more_bandwidth(capsys):
    code = main(["curve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--set", "memory.hbm.bandwidth=6.7 TB/s",
                 "--concurrency", "1", "--format", "json"])
    rows = {r["hardware"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert code == 0 and rows["h100-sxm*"]["output_tok_s_per_user"] > 1.4 * rows["h100-sxm"]["output_tok_s_per_user"]


def test_plan_takes_a_what_if_variant(capsys):
    code = main(["plan", "-m", "llama-3.1-8b", "--input-tokens", "1024", "--output-tokens", "256", "--rate", "2",
                 "-H", "h100-sxm", "--set", "memory.hbm.bandwidth=6.7 TB/s", "--ttft-p99-ms", "1000",
                 "--tpot-p99-ms", "50", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    hardware = {p["hardware"] for p in doc["pareto"]}
    assert code == 0 and {"h100-sxm", "h100-sxm*"} <= hardware


def test_plan_bad_set_key_is_one_line(capsys):
    code = main(["plan", "-m", "llama-3.1-8b", "--rate", "2", "--input-tokens", "100", "--output-tokens", "10",
                 "-H", "h100-sxm", "--set", "memory.hbm.bandwith=6.7 TB/s"])
    err = capsys.readouterr().err
    assert code == 2 and "bandwith" in err and len(err.strip().splitlines()) == 1
