"""Prefill on dataflow chips reads earlier KV once per query tile, not once per prompt token."""

import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.plans import plan_deployment


@pytest.mark.parametrize("hw", ["sn40l", "groq-lpu"])
def test_prefill_is_not_charged_a_kv_read_per_prompt_token(hw):
    dep = plan_deployment(load_model("llama-3.1-8b"), load_chip(hw), context_tokens=4096).deployment
    short = float(dep.step(Work(prefill_tokens=2048, prefill_context=16)).memory_s)
    long = float(dep.step(Work(prefill_tokens=2048, prefill_context=1024)).memory_s)
    # per-token KV reads would add 2048 x 1008 positions x 128 KiB = 270 GB; per-tile reads add ~2 GB
    kv_per_pos = dep.model.kv_bytes_per_token("bf16")
    assert long - short < 2048 / 128 * 1024 * kv_per_pos / dep.chip.tier("sram").bandwidth_bytes_per_s * 50
