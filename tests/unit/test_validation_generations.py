"""Software generations (validation/data/generations.toml): the loader, which rows ran one, how a
generation changes a chip, and that the calibration fits its rows apart from the chip families."""

import math
from dataclasses import replace

import pytest

from siliconsim.calibration.fit import fit_rows
from siliconsim.calibration.generations import fit_generation, generation_rows
from siliconsim.calibration.params import fit_config
from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.collectives import allreduce_s
from siliconsim.validation.generations import (GENERATIONS_FILE, calibrated, calibrated_toml, generation_of,
                                               generations, nccl, on_generation)
from siliconsim.validation.runner import run_case
from siliconsim.validation.suite import load_cases

GOOD = ('[generations.g]\nengine = "trtllm"\nversions = "v0"\nwhy = "old"\n'
        'kv_reads_per_query_head = { value = true, basis = "datasheet", source = "kernel notes" }\n'
        '[generations.g.prior_sigma]\ncompute = 0.5\n')


def _load(tmp_path, text):
    path = tmp_path / "generations.toml"
    path.write_text(text, encoding="utf-8")
    return generations.__wrapped__(path)


def _rows():
    return {c.id: c for c in load_cases("dev") if "138f96d45f" in c.source_url}


def test_shipped_generations_load_with_their_sources():
    gens = generations(GENERATIONS_FILE)
    assert sorted(gens) == ["trtllm-0.5", "trtllm-0.6"]
    assert all(g.kv_reads_per_query_head and g.engine == "trtllm" for g in gens.values())
    v05, v06 = gens["trtllm-0.5"], gens["trtllm-0.6"]
    assert set(v05.prior_sigma) == {"compute", "kernel_overhead"} and v05.prior_of("kernel_overhead") == 4.0
    assert set(v06.prior_sigma) == {"kv_memory"} and v06.prior_of("kernel_overhead") == 1.0
    assert v05.nccl_allreduce and v06.nccl_allreduce  # the documented builds leave --use_custom_all_reduce off
    # NCCL 2.18.3 tuning.cc, ring / LL128 on NVLink: baseLat 14 us, hwLat 1.9 us per step
    assert (nccl(GENERATIONS_FILE).base_latency_s, nccl(GENERATIONS_FILE).step_latency_s) == pytest.approx((14e-6, 1.9e-6))


def test_loader_names_the_field_and_value(tmp_path):
    assert _load(tmp_path, GOOD)["g"].prior_sigma == {"compute": 0.5}
    with pytest.raises(CatalogError, match=r"generations.g.prior_sigma.memory: expected one of compute"):
        _load(tmp_path, GOOD + "memory = 0.3\n")
    with pytest.raises(CatalogError, match=r"generations.g.prior_sigma.compute: .* positive width, got -1"):
        _load(tmp_path, GOOD.replace("compute = 0.5", "compute = -1"))
    with pytest.raises(CatalogError, match=r"generations.g: unknown field 'clock'"):
        _load(tmp_path, GOOD.replace('engine = "trtllm"', 'engine = "trtllm"\nclock = 1'))
    with pytest.raises(CatalogError, match=r"kv_reads_per_query_head.value: expected true or false, got 'yes'"):
        _load(tmp_path, GOOD.replace("value = true", 'value = "yes"'))
    ring = GOOD.replace('versions = "v0"', 'versions = "v0"\nnccl_allreduce = { value = true, basis = "datasheet", '
                                           'source = "build flags" }')
    with pytest.raises(CatalogError, match=r"generations.toml: lacks the \[nccl\] table"):
        _load(tmp_path, ring)
    nccl_table = '[nccl]\nbase_latency = { value = "14 us", basis = "datasheet", source = "tuning.cc" }\n'
    with pytest.raises(CatalogError, match=r"nccl.step_latency: expected a table"):
        _load(tmp_path, nccl_table + ring)
    with pytest.raises(CatalogError, match=r"nccl.step_latency.value: '-2 us', expected a finite quantity >= 0"):
        _load(tmp_path, nccl_table + 'step_latency = { value = "-2 us", basis = "datasheet", source = "x" }\n' + ring)
    loaded = _load(tmp_path, nccl_table + 'step_latency = { value = "2 us", basis = "datasheet", source = "x" }\n' + ring)
    assert loaded["g"].nccl_allreduce


def test_rows_of_the_2023_performance_document_ran_its_generations():
    rows = _rows()
    assert sorted(rows) == ["M0220", "M0221", "M0226", "M0228", "M0229", "M0234"]
    assert {i: generation_of(c).id for i, c in rows.items()} == {
        "M0220": "trtllm-0.6", "M0221": "trtllm-0.6",  # the throughput tables, 'updated for v0.6.1'
        "M0226": "trtllm-0.5", "M0228": "trtllm-0.5", "M0229": "trtllm-0.5", "M0234": "trtllm-0.5"}  # low latency
    newer = replace(rows["M0228"], source_url=rows["M0228"].source_url.replace("138f96d45f", "0123456789"))
    assert generation_of(newer) is None
    assert generation_of(next(c for c in load_cases("dev") if c.id == "M0192")) is None  # perf-overview: current


def test_a_generation_scales_the_chip_and_repeats_gqa_kv_reads_per_query_head():
    gen = generations(GENERATIONS_FILE)["trtllm-0.5"]
    chip = load_chip("h100-sxm")
    llama70 = load_model("llama-2-70b")  # 64 query heads over 8 KV heads
    old = on_generation(chip, llama70, gen, {"compute": 0.5, "kernel_overhead": 4.0})
    assert old.efficiency["compute"] == pytest.approx(0.5 * chip.efficiency["compute"])
    assert old.efficiency["kernel_overhead"] == pytest.approx(4.0 * chip.efficiency["kernel_overhead"])
    assert old.efficiency["kv_memory"] == pytest.approx(chip.efficiency.get("kv_memory", 1.0) / 8)
    mha = load_model("llama-2-7b")  # as many KV heads as query heads: nothing to repeat
    plain = on_generation(chip, mha, gen, {})
    assert plain.efficiency.get("kv_memory", 1.0) == chip.efficiency.get("kv_memory", 1.0)
    assert plain.efficiency["kernel_overhead"] == pytest.approx(4.0 * chip.efficiency["kernel_overhead"])  # prior


def test_a_generation_that_all_reduced_through_nccl_pays_its_ring():
    """NCCL's model for a ring all-reduce among n GPUs: base + 2(n-1) hops, then the same wire time."""
    gen = generations(GENERATIONS_FILE)["trtllm-0.5"]
    chip = load_chip("h100-sxm")
    old = on_generation(chip, load_model("llama-2-70b"), gen, {})
    now, then = chip.system.scale_up, old.system.scale_up
    assert now.algorithm == "oneshot" and then.algorithm == "ring"
    size = 128 * 8192 * 2.0  # a 128-token prefill's activations of Llama-2-70B in 16-bit: 2 MiB
    for n in (2, 4, 8):
        extra = allreduce_s(then, n, size) - allreduce_s(now, n, size)
        assert extra == pytest.approx(14e-6 + 2 * (n - 1) * 1.9e-6 - now.latency_s)
    assert allreduce_s(then, 1, size) == 0.0  # one GPU has nothing to reduce
    plain = on_generation(chip, load_model("llama-2-70b"), replace(gen, nccl_allreduce=False), {})
    assert plain.system.scale_up == now


def test_generation_rows_are_fitted_apart_from_the_chip_families():
    rows = [c for c in _rows().values() if generation_of(c).id == "trtllm-0.5"]
    results = [run_case(c, software={}) for c in rows]
    assert fit_rows(results) == []  # none of them pulls the Hopper fit
    assert [c.id for c in generation_rows(results)] == [c.id for c in rows]
    gen = generations(GENERATIONS_FILE)["trtllm-0.5"]
    prior = math.sqrt(sum(r.log_error ** 2 for r in results) / len(results))
    fit = fit_generation(gen, rows, {}, replace(fit_config(), max_iterations=3))
    assert fit.rms_log_error < prior  # the fit can only lower the residual it minimises with its prior
    assert set(fit.multipliers) == {"compute", "kernel_overhead"}


def test_the_calibrated_file_round_trips(tmp_path):
    path = tmp_path / "generations_calibrated.toml"
    path.write_text(calibrated_toml({"g-0.5": {"compute": 0.7, "kernel_overhead": 3.0}}, {"g-0.5": ("M1", "M2")},
                                    {"g-0.5": 0.12}, "2026-11-27"), encoding="utf-8")
    assert calibrated.__wrapped__(path) == {"g-0.5": {"compute": 0.7, "kernel_overhead": 3.0}}  # a dotted id stays one key
    assert calibrated.__wrapped__(tmp_path / "absent.toml") == {}
    path.write_text('[generations.g]\ncompute = { value = -1 }\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"generations_calibrated.toml: generations.g.compute"):
        calibrated.__wrapped__(path)
