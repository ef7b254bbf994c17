"""Your own hardware (issue 15, item 1): chip files and ``--set`` what-ifs, in every command."""

import json
from pathlib import Path

import pytest

from siliconsim.cli.main import main
from siliconsim.hardware.catalog import DATA
from siliconsim.hardware.custom import resolve_chip

H100 = (DATA / "chips" / "h100-sxm.toml").read_text()
DOUBLE = "memory.hbm.bandwidth=6.7 TB/s"  # twice H100 SXM's 3.35 TB/s


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tpot(capsys, *hw):
    code, out, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "--batch", "1", *hw, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def chip_file(tmp_path: Path, text: str, name: str = "my-gpu.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_twice_the_hbm_bandwidth_speeds_batch1_decode_by_at_least_1_4x(capsys, tmp_path):
    """Issue 15 bar. Batch-1 decode of an 8B model is weight streaming, so doubling HBM bandwidth
    must cut TPOT a lot; the fixed per-step and per-kernel overheads keep it below 2x."""
    base = tpot(capsys, "-H", "h100-sxm")
    variant = chip_file(tmp_path, H100.replace('value = "3.35 TB/s"', 'value = "6.7 TB/s"'))
    by_file = tpot(capsys, "-H", variant)
    by_set = tpot(capsys, "-H", "h100-sxm", "--set", DOUBLE)
    assert base["tpot_s"] / by_file["tpot_s"] >= 1.4
    assert by_set["tpot_s"] == pytest.approx(by_file["tpot_s"], rel=1e-12)
    assert by_set["hardware"] == by_file["hardware"] == "h100-sxm*" and base["hardware"] == "h100-sxm"
    assert by_set["what_if"] == ["memory.hbm.bandwidth = 6.7 TB/s"] and base["what_if"] == []
    assert by_file["what_if"] == ["chip file my-gpu.toml"]


def test_a_new_chip_id_runs_on_its_own_priors_not_the_catalog_calibration(tmp_path):
    renamed = chip_file(tmp_path, H100.replace('id = "h100-sxm"', 'id = "my-gpu"'))
    mine, catalog = resolve_chip(str(renamed)), resolve_chip("h100-sxm")
    assert mine.id == "my-gpu" and mine.efficiency["memory"] == 0.82  # the file's stated prior
    assert catalog.efficiency["memory"] != 0.82  # the calibrated value


def test_a_chip_file_may_carry_its_own_system(tmp_path):
    text = H100.replace('system = "hgx-h100"\n', "") + (
        "\n[system]\nchips_per_node = { value = 4, basis = \"assumed\", source = \"what-if board\" }\n"
        "scale_up_domain = { value = 4, basis = \"assumed\", source = \"what-if board\" }\n"
        "scale_up_link = \"nvlink5\"\n"
        "host_power_per_chip = { value = \"500 W\", basis = \"assumed\", source = \"guess\" }\n"
        "host_price_per_chip = { value = \"10000 USD\", basis = \"assumed\", source = \"guess\" }\n")
    chip = resolve_chip(str(chip_file(tmp_path, text)))
    assert chip.system.chips_per_node == 4 and chip.system.scale_up.id == "nvlink5"


def test_set_overrides_an_efficiency_over_the_calibration():
    chip = resolve_chip("h100-sxm", ["efficiency.memory=0.5", "memory.hbm.capacity=141 GB"])
    assert chip.efficiency["memory"] == 0.5 and chip.tier("hbm").capacity_bytes == 141e9
    assert chip.provenance["memory.hbm.capacity"].basis == "assumed"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t + "\n[broken\n", "my-gpu.toml: malformed TOML"),
    (lambda t: t.replace('value = "3.35 TB/s"', 'value = "fast"'), "my-gpu.toml: memory.hbm.bandwidth.value"),
    (lambda t: t.replace('value = "3.35 TB/s"', 'value = "3.35 TB"'), "memory.hbm.bandwidth.value"),
    (lambda t: t.replace("[power]\n", "[power_]\n"), "my-gpu.toml: missing field 'power.tdp'"),
    (lambda t: t.replace('system = "hgx-h100"', 'system = "hgx-nope"'), "unknown system id 'hgx-nope'"),
])
def test_a_malformed_chip_file_exits_2_with_one_line(capsys, tmp_path, edit, message):
    path = chip_file(tmp_path, edit(H100))
    code, out, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("setting, message", [
    ("memory.hbm.bandwith=1 TB/s", "did you mean memory.hbm.bandwidth"),
    ("memory.hbm.bandwidth=13 GB", "is bytes, expected bytes_per_s"),
    ("memory.hbm.bandwidth", "expected KEY=VALUE"),
])
def test_a_bad_set_exits_2_with_one_line(capsys, setting, message):
    code, _, err = run(capsys, "estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--set", setting)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_compare_puts_the_what_if_beside_todays_parts(capsys):
    code, out, _ = run(capsys, "compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "h200", "--set", DOUBLE,
                       "--format", "json")
    rows = {r["hardware"]: r for r in json.loads(out)["results"]}
    assert code == 0 and set(rows) == {"h100-sxm", "h100-sxm*", "h200"}
    assert rows["h100-sxm*"]["tpot_s"] < rows["h200"]["tpot_s"] < rows["h100-sxm"]["tpot_s"]


@pytest.mark.parametrize("argv", [
    ("simulate", "-m", "llama-3.1-8b", "--workload", "code-completion", "--requests", "20"),
    ("train", "-m", "llama-3.1-8b", "--chips", "8", "--top", "1"),
    ("audit", "-m", "llama-3.1-8b"),
])
def test_every_command_takes_a_what_if(capsys, argv):
    code, out, err = run(capsys, *argv, "-H", "h100-sxm", "--set", DOUBLE, "--format", "json")
    assert code == 0, err
    assert "memory.hbm.bandwidth = 6.7 TB/s" in out
