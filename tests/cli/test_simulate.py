"""`siliconsim simulate`: exit codes, JSON keys, determinism, one-line errors."""

import json

import pytest

from siliconsim.cli.main import main

BASE = ["simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_preset_json_has_vllm_metric_names_and_simulator_figures(capsys):
    code, out, _ = run(capsys, *BASE, "--workload", "code-completion", "--requests", "200", "--rate", "4",
                       "--format", "json", "--timing")
    assert code == 0
    rec = json.loads(out)
    m = rec["metrics"]
    for key in ("mean_ttft_ms", "p50_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms",
                "p99_itl_ms", "mean_e2el_ms", "request_throughput", "output_throughput", "request_goodput",
                "mean_queue_ms", "mean_batch", "mean_kv_occupancy"):
        assert key in m
    assert m["completed"] == 200 and m["slo_ttft_ms"] == 300.0
    assert set(rec["timeseries"]) == {"t_s", "running", "kv_occupancy"}
    for key in ("events", "wall_s", "events_per_s", "simulated_per_wall"):
        assert key in rec["simulator"]
    assert rec["workload"]["source"] == "code-completion"


def test_same_seed_gives_byte_identical_json(capsys):
    argv = [*BASE, "--workload", "chat", "--requests", "150", "--format", "json", "--seed"]
    _, a, _ = run(capsys, *argv, "3")
    _, b, _ = run(capsys, *argv, "3")
    _, c, _ = run(capsys, *argv, "4")
    assert a == b and a != c
    assert "wall_s" not in json.loads(a)["simulator"]  # wall-clock figures only with --timing
    assert "wall_s" not in json.loads(a)["simulator"]


def test_trace_with_rate_disaggregation_and_csv(capsys, tmp_path):
    code, out, _ = run(capsys, *BASE, "--trace", "azure-code", "--requests", "100", "--rate", "5",
                       "--disaggregate", "1:1", "--slo-ttft-ms", "1000", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and "p99_ttft_ms" in lines[0] and "slo_ttft_ms" in lines[0]


def test_table_output_to_file(capsys, tmp_path):
    pytest.importorskip("rich")
    path = tmp_path / "out.txt"
    code, _, _ = run(capsys, *BASE, "--workload", "agentic-coding", "--requests", "40", "--output", str(path))
    text = path.read_text()
    assert code == 0 and "TTFT (ms)" in text and "events/s" in text


def test_bad_trace_line_exits_2_with_one_line(capsys, tmp_path):
    bad = tmp_path / "trace.csv"
    bad.write_text("arrival_s,input_tokens,output_tokens\n0.0,100,10\n0.5,abc,10\n")
    code, out, err = run(capsys, *BASE, "--trace", str(bad))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "trace.csv:3" in err and "abc" in err


@pytest.mark.parametrize("argv, needle", [
    (["--workload", "nope"], "unknown workload preset id 'nope'"),
    (["--workload", "chat", "--chunk", "-1"], "--chunk"),
    (["--trace", "/no/such/file.csv"], "named traces"),
])
def test_bad_inputs_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, *BASE, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bad_disaggregate_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*BASE, "--workload", "chat", "--disaggregate", "2-1"])
    assert exc.value.code == 2 and "P:D" in capsys.readouterr().err


def test_dispatch_window_holds_requests_and_is_recorded(capsys):
    argv = [*BASE, "--workload", "chat", "--requests", "150", "--rate", "4", "--format", "json"]
    _, plain, _ = run(capsys, *argv)
    code, held, _ = run(capsys, *argv, "--dispatch-window-ms", "300", "--dispatch-max", "8")
    assert code == 0
    rec = json.loads(held)
    assert rec["config"]["dispatch_window_s"] == pytest.approx(0.3) and rec["config"]["dispatch_max_requests"] == 8
    assert rec["metrics"]["mean_ttft_ms"] > json.loads(plain)["metrics"]["mean_ttft_ms"]


def test_negative_dispatch_window_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exc:  # argparse rejects it before the command runs
        main([*BASE, "--workload", "chat", "--dispatch-window-ms", "-5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--dispatch-window-ms" in err and "Traceback" not in err
