"""`siliconsim train` and the training part of `siliconsim validate`: formats, keys, one-line errors."""

import json
import subprocess
import sys

import pytest

from siliconsim.cli.main import main

BREAKDOWN = {"compute_s", "memory_s", "tp_comm_s", "dp_comm_s", "cp_comm_s", "ep_comm_s", "pp_bubble_s",
             "optimizer_s", "overhead_s"}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_has_the_si_keys(capsys):
    code, out, _ = run(capsys, "train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "64", "--seq-len", "8192",
                       "--tokens", "1e12", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    best = doc["best"]
    assert doc["schema_version"] == 1 and best["feasible"]
    for key in ("step_time_s", "tokens_per_s", "mfu", "hfu", "time_to_train_s", "energy_j", "cost_usd",
                "memory_per_chip_bytes", "layout", "breakdown", "feasible", "reason"):
        assert key in best
    assert set(best["breakdown"]) == BREAKDOWN
    assert sum(best["breakdown"].values()) == pytest.approx(best["step_time_s"])
    assert 0.2 < best["mfu"] <= best["hfu"] < 1.0
    assert best["time_to_train_s"] == pytest.approx(1e12 / best["tokens_per_s"])
    lay = best["layout"]
    assert lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"] == 64


def test_train_table_and_csv(capsys):
    code, out, _ = run(capsys, "train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "8")
    assert code == 0 and "MFU / HFU" in out and "next best layouts" in out
    code, out, _ = run(capsys, "train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "8", "--format", "csv")
    assert code == 0 and "breakdown.pp_bubble_s" in out.splitlines()[0] and len(out.strip().splitlines()) >= 2


def test_train_pinned_layout_and_lora(capsys):
    code, out, _ = run(capsys, "train", "-m", "llama-2-70b+lora", "-H", "h100-sxm", "--chips", "8", "--seq-len", "4096",
                       "--global-batch", "8", "--tp", "4", "--pp", "2", "--dp", "1", "--format", "json")
    best = json.loads(out)["best"]
    assert code == 0 and best["lora_rank"] == 16 and best["layout"]["tp"] == 4 and best["layout"]["pp"] == 2


def test_train_infeasible_pinned_layout_is_a_result(capsys):
    code, out, _ = run(capsys, "train", "-m", "llama-3.1-405b", "-H", "h100-sxm", "--chips", "8", "--tp", "8", "--pp",
                       "1", "--dp", "1", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["best"] is None and "per chip >" in doc["infeasible"][0]["reason"]


def test_train_plot(tmp_path, capsys):
    path = tmp_path / "b.png"
    code, _, _ = run(capsys, "train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "8", "--plot", str(path))
    assert code == 0 and path.stat().st_size > 1000


@pytest.mark.parametrize("argv,needle", [
    (["--chips", "8", "--global-batch", "12", "--dp", "8"], "global batch 12 is not divisible by DP 8"),
    (["--chips", "8", "--tp", "2", "--pp", "2", "--dp", "4"], "= 16 chips, but the job has 8"),
    (["--chips", "8", "--ep", "2"], "EP 2 applies only to MoE models"),
    (["--chips", "8", "--tp", "3"], "does not divide"),
    (["--chips", "8", "--framework", "nope"], "unknown framework id 'nope'"),
    (["--chips", "0"], "expected a number > 0"),
    (["--chips", "8", "--fsdp", "--zero", "1"], "--fsdp means ZeRO stage 3"),
])
def test_train_bad_input_is_one_line_exit_2(capsys, argv, needle):
    try:
        code = main(["train", "-m", "llama-3.1-8b", "-H", "h100-sxm", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_train_no_traceback_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "siliconsim.cli.main", "train", "-m", "llama-3.1-8b", "-H", "h100-sxm",
                           "--chips", "6", "--tp", "4"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_validate_runs_the_training_suite_and_a_models_dir(capsys, tmp_path):
    suite = tmp_path / "mine.csv"
    src = open(__import__("siliconsim.validation.training_suite", fromlist=["x"]).DEFAULT_TRAINING_SUITE,
               encoding="utf-8").read().splitlines()
    keep = [src[0]] + [ln for ln in src[1:] if ln.startswith(("T0011,", "T0027,"))]
    suite.write_text("\n".join(keep).replace("megatron-22b", "my-22b") + "\n", encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    from siliconsim.models.catalog import DATA
    (models / "my-22b.json").write_text((DATA / "megatron-22b.json").read_text(), encoding="utf-8")
    code, out, _ = run(capsys, "validate", "--cases", str(suite), "--models", str(models), "--format", "json")
    doc = json.loads(out)
    rows = {r["id"]: r for r in doc["training"]["rows"]}
    assert code == 0 and "summary" not in doc  # only a training suite was given
    assert rows["T0011"]["status"] == "predicted" and rows["T0027"]["status"] == "predicted"
