"""`siliconsim audit`: claims, resource use, side-by-side breakdown; fast."""

import json
import time

from siliconsim.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_json_shows_the_wse3_gap_between_claims_and_microarchitecture(capsys):
    code, out, _ = run(capsys, "audit", "--hardware", "cs-3", "--format", "json")
    assert code == 0
    claims = {c["claim"]: c for c in json.loads(out)["claims"]}
    flops = claims["peak fp16 FLOP/s"]
    assert flops["vendor"] == 125e15 and abs(flops["derived"] - 15.84e15) < 1e13
    assert 7.5 < flops["vendor_over_derived"] < 8.5
    assert abs(claims["memory bandwidth"]["derived"] - 900_000 * 24 * 1.1e9) < 1e9
    assert abs(claims["on-chip SRAM"]["derived"] - 900_000 * 48 * 1024) < 1


def test_audit_gpu_shows_dense_vs_sparse(capsys):
    code, out, _ = run(capsys, "audit", "--hardware", "h100-sxm", "--format", "json")
    claims = json.loads(out)["claims"]
    assert code == 0 and any(abs(c["vendor_over_derived"] - 2.0) < 0.01 for c in claims)


def test_audit_model_uses_a_tiny_fraction_of_wafer_sram_bandwidth(capsys):
    code, out, _ = run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-8b", "--tok-s", "1800", "--format", "json")
    dec = json.loads(out)["decode"]
    sram = dec["rows"][0]
    assert code == 0 and "SRAM" in sram["resource"]
    assert abs(sram["used_at_measured"] - sram["per_token"] * 1800) < 1
    assert sram["fraction_at_measured"] < 0.01  # ~0.13% of 21 PB/s
    assert dec["physical_bound_tok_s"] > dec["predicted_tok_s"]


def test_audit_vs_shows_the_memory_wall(capsys):
    code, out, _ = run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-8b", "--vs", "h100-sxm", "--format", "json")
    rows = {r["hardware"]: r for r in json.loads(out)["compare"]}
    assert code == 0
    assert rows["h100-sxm"]["dominant"] == "memory"
    assert rows["cs-3"]["dominant"] == "network"


def test_audit_table_and_csv_render(capsys):
    code, out, _ = run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-70b", "--vs", "h100-sxm")
    assert code == 0 and "headline claims" in out and "per-token decode time" in out
    code, out, _ = run(capsys, "audit", "-H", "groq-lpu", "-m", "llama-3.1-8b", "--dtype", "int8", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("section,")


def test_audit_unknown_hardware_is_one_line_error(capsys):
    code, _, err = run(capsys, "audit", "-H", "cs-9")
    assert code == 2 and err.count("\n") == 1


def test_audit_runs_well_under_a_second(capsys):
    run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-8b", "--vs", "h100-sxm")  # warm caches and imports
    t = time.perf_counter()
    run(capsys, "audit", "-H", "cs-3", "-m", "llama-3.1-70b", "--vs", "h100-sxm", "--tok-s", "450")
    assert time.perf_counter() - t < 1.0
