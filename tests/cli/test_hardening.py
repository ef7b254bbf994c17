"""Issue 16: every listed crash and wrongly accepted input is a one-line error with exit 2 (or a
documented warning); output files are safe; the machine interface is versioned."""

import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from siliconsim.cli.main import build_parser, main
from siliconsim.models.catalog import DATA as MODEL_DATA
from siliconsim.report.plots import bar_stacks


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refuses a bad option value this way
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> bool:
    return code == 2 and err.startswith("siliconsim: error: ") and err.count("\n") == 1 and "Traceback" not in err


def _config(tmp_path: Path, base: str, **changes) -> Path:
    doc = json.loads((MODEL_DATA / f"{base}.json").read_text(encoding="utf-8"))
    doc.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc), encoding="utf-8")  # json writes NaN/Infinity as the fuzzer found them
    return path


BAD_CONFIGS = [  # (base model, changes, words the error must contain)
    ("llama-3.1-8b", {"num_attention_heads": 0}, ["num_attention_heads", "0", ">= 1"]),
    ("llama-3.1-8b", {"num_key_value_heads": 0}, ["num_key_value_heads", "0", ">= 1"]),
    ("llama-3.1-8b", {"hidden_size": float("nan")}, ["hidden_size", "nan"]),
    ("llama-3.1-8b", {"hidden_size": float("inf")}, ["hidden_size", "inf"]),
    ("llama-3.1-8b", {"model_type": {"a": 1}}, ["model_type", "expected a string"]),
    ("llama-3.1-8b", {"model_type": ["llama"]}, ["model_type", "expected a string"]),
    ("llama-3.1-8b", {"head_dim": [128]}, ["head_dim", "[128]"]),
    ("llama-3.1-8b", {"head_dim": "128"}, ["head_dim", "'128'"]),
    ("llama-3.1-8b", {"head_dim": -128}, ["head_dim", "-128", ">= 1"]),
    ("qwen3-coder-30b-a3b", {"mlp_only_layers": 3}, ["mlp_only_layers", "3", "list"]),
    ("deepseek-r1", {"n_routed_experts": 0}, ["n_routed_experts", "0"]),
    ("mixtral-8x7b", {"num_local_experts": 0}, ["num_local_experts", "0"]),
    ("llama-3.1-8b", {"num_key_value_heads": 5}, ["num_key_value_heads = 5", "num_attention_heads = 32", "divisor"]),
    ("llama-3.1-8b", {"intermediate_size": 0}, ["intermediate_size", "0"]),
    ("mixtral-8x7b", {"num_experts_per_tok": 0}, ["num_experts_per_tok", "0"]),
    ("mixtral-8x7b", {"num_experts_per_tok": 9}, ["num_experts_per_tok = 9", "8 routed experts"]),
    ("llama-3.1-8b", {"vocab_size": 0}, ["vocab_size", "0"]),
]


@pytest.mark.parametrize("base, changes, words", BAD_CONFIGS, ids=[str(c[1]) for c in BAD_CONFIGS])
def test_bad_config_is_a_one_line_error_naming_field_and_value(capsys, tmp_path, base, changes, words):
    code, out, err = run(capsys, "estimate", "-m", _config(tmp_path, base, **changes), "-H", "h100-sxm")
    assert one_line_error(code, err) and out == ""
    assert "config.json" in err and all(w in err for w in words), err


def test_random_bytes_as_a_config_is_a_one_line_error(capsys, tmp_path):
    path = tmp_path / "noise.json"
    path.write_bytes(b"\xff" + os.urandom(4096))  # 0xff never occurs in UTF-8
    code, _, err = run(capsys, "estimate", "-m", path, "-H", "h100-sxm")
    assert one_line_error(code, err) and "noise.json: expected UTF-8 JSON text, found byte 0xff at offset 0" in err


def test_negative_seed_is_refused(capsys):
    for argv in (["simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--workload", "chat", "--requests", "5"],
                 ["compare", "--serve", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--requests", "5"]):
        code, out, err = run(capsys, *argv, "--seed", "-1")
        assert code == 2 and "--seed" in err and "-1" in err and out == ""


def test_plot_to_a_non_image_file_fails_before_anything_is_printed(capsys, tmp_path):
    for cmd in (["compare", "-H", "h100-sxm"], ["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm"]):
        code, out, err = run(capsys, *cmd, "--plot", tmp_path / "x.txt")
        assert one_line_error(code, err) and out == "" and "x.txt" in err and ".png" in err
    assert list(tmp_path.iterdir()) == []


def test_context_beyond_the_models_maximum_is_a_documented_warning(capsys):
    code, out, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--input-tokens", "5000000",
                         "--format", "json")
    doc = json.loads(out)
    assert code == 0 and err.startswith("siliconsim: warning: context of 5,000,128 tokens exceeds")
    assert doc["warnings"] and "131,072" in doc["warnings"][0]
    code, out, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json")
    assert code == 0 and err == "" and "warnings" not in json.loads(out)


@pytest.mark.parametrize("pue", ["0.5", "0.99", "4.5"])
def test_pue_outside_its_range_is_refused(capsys, pue):
    code, _, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--pue", pue)
    assert code == 2 and "--pue" in err and pue in err


def test_pue_of_one_is_accepted(capsys):
    assert run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--pue", "1")[0] == 0


def test_a_billion_replicas_is_refused_before_simulating(capsys):
    code, _, err = run(capsys, "simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--workload", "chat",
                       "--requests", "5", "--replicas", "1000000000")
    assert one_line_error(code, err) and "1,000,000,000 replicas" in err and "100,000" in err


def test_trace_time_of_1e300_is_refused(capsys, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n1e300,100,10\n", encoding="utf-8")
    code, _, err = run(capsys, "simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--trace", path)
    assert one_line_error(code, err) and "t.csv:3" in err and "1e300" in err


def test_trace_timestamp_offsets_are_honoured(tmp_path):
    from siliconsim.workloads.traces import read_trace

    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.5+05:00,100,10\n"
                    "2023-11-16 13:00:10Z,100,10\n2023-11-16 13:00:20,100,10\n", encoding="utf-8")
    rs = read_trace(str(path))  # 18:00:00.5+05:00 is 13:00:00.5 UTC: 9.5 s and 19.5 s before the others
    assert list(rs.arrival_s) == pytest.approx([0.0, 9.5, 19.5])


# ---- output files -------------------------------------------------------------------------
def _estimate_to(capsys, target) -> tuple[int, str]:
    code, _, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--format", "json", "-o", target)
    return code, err


def test_output_through_a_symlink_keeps_the_link(capsys, tmp_path):
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old", encoding="utf-8")
    link.symlink_to(real.name)
    code, _ = _estimate_to(capsys, link)
    assert code == 0 and link.is_symlink() and json.loads(real.read_text())["schema_version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_output_to_a_fifo_is_refused_and_the_fifo_kept(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = _estimate_to(capsys, fifo)
    assert one_line_error(code, err) and "pipe: is a FIFO" in err and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("target, kind", [("/dev/null", "character device"), (".", "directory")])
def test_output_to_a_device_or_directory_is_refused(capsys, tmp_path, target, kind):
    before = os.lstat(target).st_mode
    code, err = _estimate_to(capsys, target)
    assert one_line_error(code, err) and kind in err and os.lstat(target).st_mode == before


def test_new_output_files_follow_the_umask(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        code, _ = _estimate_to(capsys, tmp_path / "new.json")
    finally:
        os.umask(old)
    assert code == 0 and stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o644


def test_replaced_output_files_keep_their_mode(capsys, tmp_path):
    target = tmp_path / "kept.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    assert _estimate_to(capsys, target)[0] == 0 and stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_missing_folder_error_names_the_users_path(capsys, tmp_path):
    code, err = _estimate_to(capsys, tmp_path / "nodir" / "x.json")
    assert one_line_error(code, err) and f"{tmp_path / 'nodir' / 'x.json'}: folder" in err and ".tmp" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_write_removes_the_temp_file(tmp_path, signum):
    script = textwrap.dedent(f"""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job ignores it)
        from siliconsim.report.files import write_atomic
        def slow(fh):
            fh.write(b"partial")
            print("writing", flush=True)
            time.sleep(30)
        write_atomic({str(tmp_path / 'out.json')!r}, slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"writing\n"
    assert len(list(tmp_path.iterdir())) == 1  # the temp file exists while writing
    proc.send_signal(signum)
    proc.wait(timeout=20)
    assert proc.returncode != 0 and list(tmp_path.iterdir()) == []


# ---- machine interface and small things ---------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm"],
    ["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "h200"],
    ["simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--workload", "chat", "--requests", "10"],
    ["list", "models"],
])
def test_json_outputs_are_objects_with_schema_version(capsys, argv):
    code, out, _ = run(capsys, *argv, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and isinstance(doc, dict) and next(iter(doc)) == "schema_version" and doc["schema_version"] == 1
    if argv[0] in ("compare", "list"):
        assert isinstance(doc["results"], list) and doc["results"]


def test_kv_capacity_tokens_is_a_whole_number(capsys):
    for argv in (["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm"],
                 ["simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--workload", "chat", "--requests", "5"]):
        out = run(capsys, *argv, "--format", "json")[1]
        assert isinstance(json.loads(out)["kv_capacity_tokens"], int)


def test_goodput_without_an_slo_says_so(capsys, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n1,100,10\n", encoding="utf-8")
    out = run(capsys, "simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--trace", path)[1]
    assert "no SLO given" in out and "≤ –" not in out


def test_list_models_shows_the_served_precision_compare_uses(capsys):
    rows = {r["id"]: r for r in json.loads(run(capsys, "list", "models", "--format", "json")[1])["results"]}
    compared = json.loads(run(capsys, "compare", "-m", "gpt-oss-120b", "-H", "h100-sxm", "--format", "json")[1])
    assert rows["gpt-oss-120b"]["served_weights"] == compared["results"][0]["weights"] == "bf16+mxfp4"
    assert "bf16+mxfp4" in run(capsys, "list", "models")[1]


def test_every_option_has_help_text():
    missing = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {a.option_strings or a.dest}" for a in sub._actions if not a.help]
    assert missing == []


@pytest.mark.parametrize("columns, dropped", [(60, True), (80, True), (120, False), (200, False)])
def test_compare_table_fits_columns(capsys, monkeypatch, columns, dropped):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = run(capsys, "compare", "-H", "h100-sxm", "h200", "cs-3", "groq-lpu")[1]
    assert max(len(line) for line in out.splitlines()) <= columns
    assert ("Not shown, to fit" in out) == dropped and "1,315" in out  # numbers stay whole


def test_compare_plot_bars_follow_the_plotted_time_and_skip_empty_causes():
    labels, stacks = bar_stacks(["slow", "fast"], [{"compute_s": 0.0, "memory_s": 3e-3, "network_s": 1e-3},
                                                   {"compute_s": 0.0, "memory_s": 1e-3, "network_s": 0.0}])
    assert labels == ["fast", "slow"] and list(stacks) == ["memory_s", "network_s"]
    assert stacks["memory_s"] == pytest.approx([1.0, 3.0])


@pytest.mark.parametrize("extra, words", [
    (["--requests", "1000000000"], ["--requests 1000000000", "1,000,000,000 requests", "at most 1,000,000"]),
    (["--duration", "1e300"], ["--duration 1e+300 s", "at most 1,000,000"]),
    (["--requests", "10", "--series-points", "1000000000"], ["--series-points 1000000000", "100,000"]),
])
def test_unbounded_simulations_are_refused(capsys, extra, words):
    # like --replicas, these used to run out of memory or never finish
    code, _, err = run(capsys, "simulate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--workload", "chat", *extra)
    assert one_line_error(code, err) and all(w in err for w in words), err
