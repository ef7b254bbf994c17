"""Chip files and --set what-ifs in `curve` and `plan` too (issue 15: everywhere a hardware id is accepted)."""

import json

import pytest

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


def _estimate(capsys, *extra):
    code = main(["estimate", "-m", "llama-3.1-70b", "-H", "h200", "--chips", "1", "--dtype", "fp8", "--batch", "96",
                 "--input-tokens", "2000", "--output-tokens", "500", "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_estimate_at_a_power_limit_runs_compute_at_its_clock(capsys):
    """A 2,000-token prefill is compute-bound: 1000 W (above the H200's 700 W TDP and GH100's 826 W
    full-clock draw) runs it faster, 500 W slower; the decode step at batch 96 is memory-bound and
    keeps its time but for the share of its compute the roofline overlap leaves exposed (a few per cent);
    the limit is named among the what-ifs."""
    _, base = _estimate(capsys)
    _, high = _estimate(capsys, "--chip-power-limit-w", "1000")
    _, low = _estimate(capsys, "--chip-power-limit-w", "500")
    assert low["ttft_s"] > base["ttft_s"] > high["ttft_s"]
    assert high["tpot_s"] <= base["tpot_s"] <= low["tpot_s"] < 1.03 * high["tpot_s"]
    assert (low["ttft_s"] - high["ttft_s"]) / base["ttft_s"] > 10 * (low["tpot_s"] - high["tpot_s"]) / base["tpot_s"]
    assert "power limit 1000 W" in high["what_if"][0] and "power limit 500 W" in low["what_if"][0]


def test_compare_applies_the_power_limit_to_every_system(capsys):
    code = main(["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "mi300x", "--chip-power-limit-w", "600",
                 "--format", "json"])
    rows = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and all(any("power limit 600 W" in w for w in r["what_if"]) for r in rows)


def test_a_bad_power_limit_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:  # argparse's own exit
        main(["estimate", "-m", "llama-3.1-8b", "-H", "h200", "--chip-power-limit-w", "-5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--chip-power-limit-w" in err and "-5" in err and len(err.strip().splitlines()) == 1


def test_compare_serve_simulates_the_chips_at_the_power_limit(capsys):
    def p99_ttft(*extra):
        main(["compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--requests", "200", "--rate", "8",
              "--format", "json", *extra])
        return json.loads(capsys.readouterr().out)["results"][0]["p99_ttft_ms"]

    assert p99_ttft("--chip-power-limit-w", "500") > p99_ttft() > p99_ttft("--chip-power-limit-w", "1000")


def test_a_power_limit_below_idle_is_one_line(capsys):
    code = main(["estimate", "-m", "llama-3.1-8b", "-H", "h200", "--chip-power-limit-w", "100"])
    err = capsys.readouterr().err
    assert code == 2 and "100 W" in err and "idles at 175 W" in err and len(err.strip().splitlines()) == 1


def test_plan_power_limit_below_idle_is_one_line(capsys):
    code = main(["plan", "-m", "llama-3.1-8b", "-H", "h200", "--rate", "2", "--input-tokens", "500",
                 "--output-tokens", "100", "--no-simulate", "--chip-power-limit-w", "100"])
    err = capsys.readouterr().err
    assert code == 2 and "idles at 175 W" in err and len(err.strip().splitlines()) == 1
