"""CLI behaviour: output formats, exit codes, one-line errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from siliconsim.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_estimate_json_has_the_si_keys(capsys):
    code, out, _ = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json")
    assert code == 0
    rec = json.loads(out)
    for key in ("ttft_s", "tpot_s", "output_tok_s_per_user", "aggregate_output_tok_s", "chips", "feasible",
                "reason", "breakdown", "power_w", "energy_j_per_token", "usd_per_million_tokens"):
        assert key in rec
    assert set(rec["breakdown"]) == {"compute_s", "memory_s", "network_s", "overhead_s"}
    assert rec["feasible"] and rec["chips"] == 1 and 0 < rec["tpot_s"] < rec["ttft_s"]


def test_estimate_csv_has_a_header_and_one_row(capsys):
    code, out, _ = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and "breakdown.memory_s" in lines[0]


def test_estimate_infeasible_is_a_result_not_an_error(capsys):
    code, out, _ = run(capsys, "estimate", "-m", "llama-3.1-405b", "-H", "h100-sxm", "--chips", "1", "--format", "json")
    rec = json.loads(out)
    assert code == 0 and rec["feasible"] is False and "weights need" in rec["reason"]


def test_unknown_id_suggests_close_matches(capsys):
    code, _, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100")
    assert code == 2 and "unknown hardware id 'h100'" in err and "h100-sxm" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag,value", [("--batch", "0"), ("--batch", "-3"), ("--input-tokens", "abc"), ("--chips", "1.5")])
def test_bad_sizes_exit_2_with_one_line(capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and flag in err and len(err.strip().splitlines()) == 1


def test_malformed_config_names_the_file(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 4096,')
    code, _, err = run(capsys, "estimate", "-m", str(bad), "-H", "h100-sxm")
    assert code == 2 and "config.json" in err and "line" in err


def test_output_file_is_written_atomically(tmp_path, capsys):
    target = tmp_path / "est.json"
    code, out, _ = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json", "-o", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["feasible"]
    assert [p.name for p in tmp_path.iterdir()] == ["est.json"]


def test_list_models_json(capsys):
    code, out, _ = run(capsys, "list", "models", "--format", "json")
    ids = {r["id"] for r in json.loads(out)["results"]}
    assert code == 0 and {"llama-3.1-8b", "deepseek-r1", "gpt-oss-120b"} <= ids


def test_compare_has_one_row_per_system_and_sorts_feasible_first(capsys):
    code, out, _ = run(capsys, "compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "h200", "--format", "json")
    rows = json.loads(out)["results"]
    assert code == 0 and [r["hardware"] for r in rows] == ["h200", "h100-sxm"]  # more bandwidth, faster


def test_no_traceback_from_the_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "siliconsim.cli.main", "estimate", "-m", "nope", "-H", "h100-sxm"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_plots_are_written_as_png(tmp_path, capsys):
    curve, bars = tmp_path / "curve.png", tmp_path / "bars.png"
    assert main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--plot", str(curve)]) == 0
    assert main(["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--plot", str(bars)]) == 0
    capsys.readouterr()
    for p in (curve, bars):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.png", "curve.png"]


def test_compare_prices_cost_at_the_busiest_batch_meeting_the_slo(capsys):
    code, out, _ = run(capsys, "compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json", "--slo", "chat")
    rec = json.loads(out)["results"][0]
    assert code == 0 and rec["loaded"]["batch"] > 1 and "chat SLO" in rec["loaded"]["note"]
    # the chat SLO (MLPerf Llama-2-70B server: p99 TPOT 200 ms) holds at the priced batch: closed-form p99 <= limit
    assert rec["loaded"]["tpot_s"] * 1.16 <= 0.2
    assert rec["loaded"]["aggregate_output_tok_s"] > rec["aggregate_output_tok_s"]
    code, out, _ = run(capsys, "compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json",
                       "--pricing", "hyperscaler", "--slo", "chat")
    hyper = json.loads(out)["results"][0]
    assert hyper["usd_per_million_tokens"] < rec["usd_per_million_tokens"]  # 1.17 USD/h rented < capex default


def test_compare_warns_when_cost_is_over_ten_times_a_list_price(capsys):
    # 100 USD per chip-hour: about 50x Groq's list price for gpt-oss-120b
    code, _, err = run(capsys, "compare", "-m", "gpt-oss-120b", "-H", "groq-lpu", "--format", "json", "--pricing", "100")
    assert code == 0 and "Groq's list price 0.6 USD/Mtok" in err and "warning" in err
    code, _, err = run(capsys, "compare", "-m", "gpt-oss-120b", "-H", "groq-lpu", "--format", "json")
    assert code == 0 and "warning" not in err  # capex pricing at its KV-sized deployment: within 10x


def test_compare_sizes_an_sram_resident_system_for_its_kv_cache(capsys):
    """The fewest Groq chips that hold gpt-oss-120b (315) leave SRAM for two users' KV cache; compare
    prices the cheapest of 1-2x that size, and says so."""
    code, out, _ = run(capsys, "compare", "-m", "gpt-oss-120b", "-H", "groq-lpu", "h100-sxm", "--format", "json")
    rows = {r["hardware"]: r for r in json.loads(out)["results"]}
    groq, h100 = rows["groq-lpu"], rows["h100-sxm"]
    assert code == 0 and "sized at" in groq["loaded"]["note"] and groq["chips"] > 315
    assert groq["loaded"]["batch"] > 10 and "sized at" not in h100["loaded"]["note"] and h100["chips"] == 1
    code, out, _ = run(capsys, "estimate", "-m", "gpt-oss-120b", "-H", "groq-lpu", "--input-tokens", "2048",
                       "--output-tokens", "28", "--slo", "code-completion", "--format", "json")
    smallest = json.loads(out)
    assert groq["usd_per_mtok_blended"] < smallest["usd_per_mtok_blended"]


def test_compare_serve_reports_tail_latency_and_goodput(capsys):
    code, out, _ = run(capsys, "compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "h200",
                       "--requests", "120", "--format", "json", "--dtype", "fp8")
    rows = json.loads(out)["results"]
    assert code == 0 and {r["hardware"] for r in rows} == {"h100-sxm", "h200"}
    for r in rows:
        assert r["feasible"] and r["p99_ttft_ms"] >= r["mean_ttft_ms"] > 0
        assert 0 <= r["request_goodput"] <= r["request_throughput"]
    # same seed, same answer
    run(capsys, "compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--requests", "50", "--format", "json")
    code2, a, _ = run(capsys, "compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--requests", "50", "--format", "json")
    _, b, _ = run(capsys, "compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--requests", "50", "--format", "json")
    assert a == b


def test_speculative_decoding_is_off_by_default_and_speeds_up_when_on(capsys):
    base = ["estimate", "-m", "llama-3.1-70b", "-H", "h100-sxm", "--chips", "4", "--format", "json"]
    _, plain, _ = run(capsys, *base)
    code, spec, _ = run(capsys, *base, "--speculative", "ngram", "--acceptance", "0.8")
    plain, spec = json.loads(plain), json.loads(spec)
    assert "speculative" not in plain
    assert code == 0 and spec["output_tok_s_per_user"] > 1.5 * plain["output_tok_s_per_user"]
    assert spec["speculative"]["tokens_per_step"] > 2


def test_speculative_flag_rejects_unknown_kinds(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--speculative", "magic"])
    assert exc.value.code == 2 and "--speculative" in capsys.readouterr().err


def test_estimates_carry_error_bars_marked_by_validation_coverage(capsys):
    _, out, _ = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json")
    bars = json.loads(out)["error_bars"]
    for key in ("ttft_s", "tpot_s", "output_tok_s_per_user", "aggregate_output_tok_s"):
        assert bars[key]["basis"] == "validated" and bars[key]["n"] >= 5
    tpot = json.loads(out)["tpot_s"]
    assert bars["tpot_s"]["low"] < tpot < bars["tpot_s"]["high"]
    _, out, _ = run(capsys, "estimate", "-m", "qwen3-coder-30b-a3b", "-H", "h100-sxm", "--format", "json")
    assert json.loads(out)["error_bars"]["tpot_s"]["basis"] == "extrapolated"  # model not in the suite


def test_estimate_prices_the_slo_batch_on_the_chips_it_was_found_on(capsys):
    """On 330 Groq chips the SLO's busiest batch fits the KV cache the deployment counts; pricing it must
    not re-plan (the planner's stricter fit found no layout, and the row crashed)."""
    code, out, err = run(capsys, "estimate", "-m", "gpt-oss-120b", "-H", "groq-lpu", "--chips", "330",
                         "--input-tokens", "2048", "--output-tokens", "28", "--slo", "code-completion", "--format", "json")
    rec = json.loads(out)
    assert code == 0 and "Traceback" not in err and rec["chips"] == 330 and rec["priced_batch"] > 1
