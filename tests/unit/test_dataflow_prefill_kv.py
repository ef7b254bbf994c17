"""Prefill on dataflow chips reads earlier KV once per query tile, not once per prompt token."""

import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.plans import plan_deployment


@pytest.mark.parametrize("hw", ["sn40l", "groq-lpu"])
def test_prefill_is_not_charged_a_kv_read_per_prompt_token(hw):
    dep = plan_deployment(load_model("llama-3.1-8b"), load_chip(hw), context_tokens=4096).deployment
    near = float(dep.step(Work(prefill_tokens=2048, prefill_context=16)).latency_s)
    far = float(dep.step(Work(prefill_tokens=2048, prefill_context=1024)).latency_s)
    # Reading 1,024 earlier positions per prompt token would be 270 GB of KV traffic, several times
    # the whole prefill's cost on SN40L; per 128-query tile it is ~2 GB, a few percent.
    assert far < 1.5 * near
