"""CLI: `train` on wafer-scale clusters, `compare --train`, `audit --training`."""

import json

import pytest

from siliconsim.cli.main import main
from siliconsim.planner.compare_train import TRAIN_SYSTEMS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_on_cs2_json_has_the_standard_keys_and_the_wafer_parts(capsys):
    code, out, _ = run(capsys, "train", "-m", "gpt-j-6b", "-H", "cs-2", "--chips", "2", "--seq-len", "2048",
                       "--global-batch", "130", "--format", "json")
    rec = json.loads(out)["best"]
    assert code == 0 and rec["layout"]["mode"] == "weight_streaming" and rec["layout"]["dp"] == 2
    for key in ("compute_s", "memory_s", "tp_comm_s", "dp_comm_s", "cp_comm_s", "ep_comm_s", "pp_bubble_s",
                "optimizer_s", "overhead_s", "weight_stream_s", "grad_reduce_s", "step_bubble_s"):
        assert key in rec["breakdown"]
    assert 0.0 < rec["sync_share"] < 0.05 and rec["mfu"] < rec["hfu"]


def test_train_memoryx_too_small_reports_the_numbers(capsys):
    code, out, _ = run(capsys, "train", "-m", "llama-3.1-405b", "-H", "cs-3", "--chips", "4", "--memoryx-tb", "1.5",
                       "--format", "json")
    rec = json.loads(out)
    assert code == 0 and rec["best"] is None and "> MemoryX 1.5 TB" in rec["infeasible"][0]["reason"]


@pytest.mark.parametrize("argv,needle", [
    (["train", "-m", "llama-3.1-8b", "-H", "cs-3", "--chips", "4", "--tp", "2"], "data parallel"),
    (["train", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--chips", "8", "--memoryx-tb", "2"], "--memoryx-tb"),
    (["compare", "--train", "-m", "llama-3.1-8b"], "--tokens"),
    (["compare", "--train", "-m", "llama-3.1-8b", "--tokens", "1e12", "--rental-tier", "gold"], "rental tier"),
    (["audit", "-H", "cs-3", "--training"], "--model"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bad_numbers_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--train", "--tokens", "-5"])
    assert exc.value.code == 2 and "--tokens" in capsys.readouterr().err


def test_compare_train_covers_every_default_system(capsys):
    code, out, _ = run(capsys, "compare", "--train", "-m", "llama-3.1-8b", "--tokens", "1e12", "--deadline-days", "30",
                       "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and [r["hardware"] for r in rows] == list(TRAIN_SYSTEMS)
    for r in rows:
        assert r["meets_target"] or r["reason"]
        if r["meets_target"]:
            assert r["days"] <= 30 and 0 < r["mfu"] < 1 and 0 <= r["sync_share"] < 1 and r["energy_mwh"] > 0
    cs3 = rows[0]
    assert cs3["layout"].startswith("weight streaming") and cs3["rental_source"].startswith("prices.csv R016")


def test_compare_train_chip_budget_and_csv(capsys):
    code, out, _ = run(capsys, "compare", "--train", "-m", "llama-3.1-8b", "--tokens", "1e12", "--chips-budget", "64",
                       "-H", "cs-3", "h100-sxm", "--usd-per-chip-hour", "2", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3 and "cost_rented_usd" in lines[0]
    assert all(",64," in line for line in lines[1:])


def test_compare_train_power_budget_stays_within_it(capsys):
    code, out, _ = run(capsys, "compare", "--train", "-m", "llama-3.1-8b", "--tokens", "1e12", "--power-budget-mw",
                       "2", "-H", "cs-3", "b200", "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and all(r["power_w"] <= 2e6 for r in rows)


def test_compare_train_table_and_plot(tmp_path, capsys):
    plot = tmp_path / "train.png"
    code, out, _ = run(capsys, "compare", "--train", "-m", "llama-3.1-8b", "--tokens", "1e12", "-H", "cs-3", "h200",
                       "--plot", str(plot))
    assert code == 0 and "sync & data movement" in out and plot.stat().st_size > 0


def test_audit_training_on_cs3(capsys):
    code, out, _ = run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-8b", "--training", "--format", "json")
    rec = json.loads(out)["training"]
    shares = sum(r["fraction_of_peak"] for r in rec["rows"])
    assert code == 0 and rec["feasible"] and shares == pytest.approx(1.0, abs=0.02)
    assert rec["mfu_of_headline"] < rec["mfu"] and rec["mesh_flop_per_s"] < rec["dense_peak_flop_per_s"]
