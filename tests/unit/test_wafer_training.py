"""Weight-streaming training on CS-2/CS-3 (training/wafer.py) and its store catalog."""

import pytest

from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.hardware.stores import load_memoryx, load_swarmx
from siliconsim.models.catalog import load_model
from siliconsim.perf.ops import model_flop_per_token
from siliconsim.training import Pins, TrainingJob, plan_training
from siliconsim.training.step import StepBreakdown
from siliconsim.training.wafer import WAFER_PARTS, mesh_flop_per_s, software_line, units


def _job(model="llama-3.1-70b", chip="cs-3", chips=1, seq=4096, batch=8, framework=""):
    return TrainingJob(model=load_model(model), chip=load_chip(chip), chips=chips, seq_len=seq, global_batch=batch,
                       framework=framework)


def test_breakdown_has_the_standard_keys_and_the_wafer_parts():
    est = plan_training(_job()).best
    d = est.breakdown.as_dict()
    assert set(StepBreakdown.__dataclass_fields__) <= set(d) and set(WAFER_PARTS) <= set(d)
    assert est.step_time_s == pytest.approx(sum(d.values()))
    assert d["tp_comm_s"] == d["pp_bubble_s"] == d["dp_comm_s"] == 0.0  # data parallel only, sync is in the tree


def test_units_follow_the_operator_list():
    m = load_model("llama-3.1-70b")
    us = units(m, 4096)
    assert sum(u.params for u in us) == pytest.approx(m.total_params, rel=1e-3)
    assert sum(u.flop_fwd for u in us) * 3 == pytest.approx(model_flop_per_token(m, 4096), rel=1e-6)
    moe = load_model("mixtral-8x7b")
    biggest = max(u.params for u in units(moe, 4096))
    assert biggest < moe.total_params / moe.n_layers / 4  # one expert's weights, not the whole MoE layer


def test_mesh_rate_comes_from_the_pe_array_not_the_headline():
    cs3 = load_chip("cs-3")
    rate = mesh_flop_per_s(cs3, "bf16")
    # 883,350 programmable PEs x 4 FMAC/cycle (24 B/cycle over 2 B operand + 2 x 2 B accumulator) x 2 x 1.1 GHz
    assert rate == pytest.approx(883_350 * 4 * 2 * 1.1e9)
    assert rate < cs3.peak_flop_per_s("bf16") < cs3.headline_flop_per_s["bf16"]


def test_memoryx_too_small_is_infeasible_with_numbers():
    res = plan_training(_job("llama-3.1-405b"), memoryx_bytes=1.5e12)
    assert res.best is None
    reason = res.infeasible[0].reason
    assert "MemoryX 1.5 TB" in reason and "6.49 TB" in reason and "16 B" in reason


def test_default_memoryx_is_the_smallest_option_holding_the_model():
    assert plan_training(_job("llama-3.1-405b")).best.layout.memoryx_bytes == 12e12
    assert plan_training(_job("llama-3.1-8b")).best.layout.memoryx_bytes == 1.5e12


def test_sequence_too_long_for_wafer_sram_says_so():
    res = plan_training(_job("llama-3.1-405b", seq=131072, batch=1))
    assert res.best is None and "activation checkpoints" in res.infeasible[0].reason


def test_pinned_microbatch_that_does_not_fit_is_infeasible():
    res = plan_training(_job(batch=64), Pins(microbatch=64))
    assert res.best is None and "micro-batch 64" in res.infeasible[0].reason


def test_large_per_system_share_runs_as_micro_batches():
    est = plan_training(_job(batch=64)).best
    assert est.layout.accumulation > 1 and est.layout.microbatch * est.layout.accumulation >= 64


def test_cluster_limit_is_the_swarmx_limit():
    assert load_swarmx("swarmx-cs2").max_systems == 192 and load_swarmx("swarmx-cs3").max_systems == 2048
    res = plan_training(_job("gpt-j-6b", "cs-2", chips=256, seq=2048, batch=256))
    assert res.best is None and "192" in res.infeasible[0].reason


def test_only_microbatch_can_be_pinned():
    with pytest.raises(InputError, match="data parallel"):
        plan_training(_job(), Pins(tp=2))


def test_software_line_from_release_text():
    cs2 = load_chip("cs-2")
    assert software_line(cs2, "Cerebras SW R1.7.1 (PyTorch appliance mode)").line == "R1"
    assert software_line(cs2, "Cerebras SW R2.0.3").line == "R2"
    assert software_line(cs2, "").line == "R2"  # the newest line by default


def test_memoryx_options_are_sorted_and_sourced():
    mx = load_memoryx("memoryx-cs3")
    assert mx.capacity_options_bytes == (1.5e12, 12e12, 1.2e15)
    assert mx.smallest_holding(2e12) == 12e12 and mx.smallest_holding(2e15) is None
    assert all(s.source for s in mx.provenance.values())


def test_cs3_keeps_both_io_figures_and_uses_the_docs_one():
    import tomllib
    from siliconsim.hardware.catalog import DATA

    doc = tomllib.loads((DATA / "stores" / "swarmx-cs3.toml").read_text())["swarmx"]
    assert doc["used"] == "bandwidth_per_system"
    assert doc["bandwidth_per_system"]["value"] == "195 GB/s" and doc["bandwidth_per_system_alt"]["value"] == "150 GB/s"
    assert load_swarmx("swarmx-cs3").bandwidth_per_system_bytes_per_s == 195e9


def test_swarmx_depth_grows_with_log_n():
    sx = load_swarmx("swarmx-cs3")
    assert [sx.depth(n) for n in (1, 4, 5, 16, 64, 2048)] == [1, 1, 2, 2, 3, 6]


def test_hbm_path_unchanged_by_the_wafer_family():
    est = plan_training(TrainingJob(model=load_model("llama-3.1-8b"), chip=load_chip("h100-sxm"), chips=8,
                                    seq_len=4096, global_batch=64), keep=1).best
    assert type(est.breakdown) is StepBreakdown and "weight_stream_s" not in est.breakdown.as_dict()


def test_dense_layers_stream_whole_and_huge_moe_layers_in_chunks():
    from siliconsim.training.wafer import stream_units

    cs3 = load_chip("cs-3")
    dense = load_model("llama-3.1-70b")
    assert len(stream_units(cs3, dense, 4096)) == dense.n_layers + 2
    moe = load_model("gpt4-class-moe")  # 15.3B parameters per layer: 92 GB double-buffered
    pieces = stream_units(cs3, moe, 8192)
    assert len(pieces) > moe.n_layers + 2 and sum(p.opens_layer for p in pieces) == moe.n_layers + 2
    assert sum(p.params for p in pieces) == pytest.approx(moe.total_params, rel=1e-3)
    assert plan_training(_job("gpt4-class-moe", chips=64, seq=8192, batch=64)).best is not None


def test_wafer_training_is_16_bit():
    with pytest.raises(InputError, match="16-bit"):
        plan_training(_job().with_(dtype="fp8"))
    assert plan_training(_job(), Pins(recompute="full", dp=1)).best is not None
    with pytest.raises(InputError, match="recompute=none"):
        plan_training(_job(), Pins(recompute="none"))
