"""`siliconsim plan`: formats, the bar case, bad input, SIGKILL and resume, executor equivalence."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from siliconsim.cli.main import main

SMALL = ["plan", "-m", "llama-3.1-8b", "--input-tokens", "1024", "--output-tokens", "128", "--rate", "5",
         "--ttft-p99-ms", "1000", "--tpot-p99-ms", "50", "-H", "h100-sxm", "mi300x", "--max-chips", "16"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_json_is_an_object_with_the_promised_keys(capsys):
    code, out, _ = run(capsys, *SMALL, "--no-simulate", "--format", "json")
    rec = json.loads(out)
    assert code == 0 and rec["schema_version"] == 1
    for key in ("hardware", "chips", "replicas", "layout", "usd_per_mtok_input", "usd_per_mtok_output",
                "usd_per_mtok_blended", "p99_ttft_s", "p99_tpot_s", "power_w", "energy_j_per_output_token"):
        assert key in rec["best"]
    assert rec["pareto"] and isinstance(rec["alternatives"], list) and rec["infeasible"] == []
    assert any("pricing" in a for a in rec["assumptions"])


def test_plan_bar_llama70b_code_completion_six_systems(capsys):
    """Issue 14's bar: 20 req/s, p99 TTFT <= 500 ms and TPOT <= 25 ms across six kinds of hardware."""
    code, out, _ = run(capsys, "plan", "-m", "llama-3.1-70b", "--workload", "code-completion", "--rate", "20",
                       "--ttft-p99-ms", "500", "--tpot-p99-ms", "25", "-H", "h200", "b200", "mi300x", "groq-lpu",
                       "cs-3", "tpu-v6e", "--format", "json")
    rec = json.loads(out)
    best = rec["best"]
    assert code == 0 and best["simulated"]["simulated"] and best["simulated"]["meets_slo"]
    assert best["p99_ttft_s"] <= 0.5 and best["p99_tpot_s"] <= 0.025
    assert best["closed_form"]["p99_ttft_s"] <= 0.5 and best["closed_form"]["p99_tpot_s"] <= 0.025
    assert sum(1 for p in rec["pareto"] if p["front"] == "throughput" and p["hardware"] == best["hardware"]) >= 3
    assert rec["infeasible"] and all(x["reason"] for x in rec["infeasible"])


def test_plan_with_nothing_feasible_shows_every_reason_then_exits_2(capsys):
    code, out, err = run(capsys, *SMALL, "--tpot-p99-ms", "0.1", "--no-simulate", "--format", "json")
    rec = json.loads(out)
    assert code == 2 and rec["best"] is None and rec["pareto"] == []
    assert {x["hardware"] for x in rec["infeasible"]} == {"h100-sxm", "mi300x"}
    assert all("TPOT" in x["reason"] for x in rec["infeasible"]) and err.count("\n") == 1


def test_plan_plot_is_a_png(capsys, tmp_path):
    path = tmp_path / "fronts.png"
    assert run(capsys, *SMALL, "--no-simulate", "--plot", str(path))[0] == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_table_and_csv(capsys, tmp_path):
    code, out, _ = run(capsys, *SMALL, "--no-simulate")
    assert code == 0 and "best" in out and "assumptions" in out and "$/Mtok" in out
    path = tmp_path / "plan.csv"
    code, out, _ = run(capsys, *SMALL, "--no-simulate", "--format", "csv", "-o", str(path))
    lines = path.read_text().splitlines()
    assert code == 0 and out == "" and lines[0].startswith("role,hardware") and lines[1].startswith("best,")


@pytest.mark.parametrize("argv, message", [
    (["--rate", "0"], "--rate"),
    (["--pricing", "free"], "--pricing"),
    (["-H", "h100-sxmm"], "h100-sxm"),
    (["--input-tokens", "10"], "--output-tokens"),
    (["-m", "no-such-model"], "no-such-model"),
    (["--objective", "speed"], "--objective"),
    (["--resume", "/nonexistent/ck.jsonl"], "no such checkpoint"),
])
def test_plan_bad_input_is_one_line_exit_2(argv, message):
    base = ["plan", "-m", "llama-3.1-8b", "--rate", "5", "--no-simulate"]
    proc = subprocess.run([sys.executable, "-m", "siliconsim.cli.main", *base, *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert message in proc.stderr


SWEEP = ["plan", "-m", "llama-3.1-70b", "--input-tokens", "2048", "--output-tokens", "128", "--rate", "10",
         "--ttft-p99-ms", "2000", "--tpot-p99-ms", "100", "-H", "h200", "b200", "mi300x", "tpu-v6e", "gaudi3", "mi355x",
         "--max-chips", "2048", "--no-simulate",
         "--format", "json"]


def _cli(*argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "siliconsim.cli.main", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_keeps_every_finished_point_and_gives_the_same_answer(tmp_path):
    ck = tmp_path / "sweep.jsonl"
    proc = _cli(*SWEEP, "--checkpoint", str(ck))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if ck.exists() and ck.read_bytes().count(b"\n") >= 65:  # the header and at least one finished chunk
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the sweep finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [ln for ln in ck.read_bytes().split(b"\n")[1:-1]]  # complete lines (a torn tail has no newline)
    assert before
    resumed = _cli(*SWEEP, "--resume", str(ck))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = set(ck.read_bytes().split(b"\n")[1:-1])
    assert all(json.loads(ln)["key"] and ln in after for ln in before if ln.endswith(b"}"))
    fresh = _cli(*SWEEP)
    ref, _ = fresh.communicate(timeout=300)
    a, b = json.loads(out), json.loads(ref)
    assert a["best"] == b["best"] and a["pareto"] == b["pareto"] and a["infeasible"] == b["infeasible"]


def test_ray_and_local_executors_give_byte_identical_best_and_pareto():
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'siliconsim[ray]'); not installed here")
    argv = [*SMALL, "--no-simulate", "--format", "json"]
    local = subprocess.run([sys.executable, "-m", "siliconsim.cli.main", *argv], capture_output=True, text=True)
    ray = subprocess.run([sys.executable, "-m", "siliconsim.cli.main", *argv, "--executor", "ray", "--workers", "2"],
                         capture_output=True, text=True)
    assert local.returncode == 0 and ray.returncode == 0, ray.stderr
    a, b = json.loads(local.stdout), json.loads(ray.stdout)
    assert json.dumps(a["best"]) == json.dumps(b["best"]) and json.dumps(a["pareto"]) == json.dumps(b["pareto"])


def test_local_worker_processes_give_byte_identical_json():
    argv = [sys.executable, "-m", "siliconsim.cli.main", *SMALL, "--no-simulate", "--format", "json"]
    one = subprocess.run(argv, capture_output=True, text=True)
    two = subprocess.run([*argv, "--workers", "2"], capture_output=True, text=True)
    assert one.returncode == 0 and one.stdout == two.stdout
