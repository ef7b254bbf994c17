import pytest

from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.plans import plan_deployment


def test_smallest_feasible_size_is_chosen():
    plan = plan_deployment(load_model("llama-3.1-70b"), load_chip("h100-sxm"), dtype="fp8", context_tokens=4096)
    assert plan.feasible
    # 70.6 GB of fp8 weights + 2.1 GB of activations fit the 77.3 GB usable of one 80 GiB GPU, with room for
    # a 4k-token KV cache (vLLM serves Llama-3.1-70B FP8 on one H100 with a short max_model_len)
    assert plan.deployment.par.chips == 1


def test_infeasible_plan_names_the_shortfall():
    plan = plan_deployment(load_model("llama-3.1-70b"), load_chip("h100-sxm"), chips=1, dtype="bf16")
    assert not plan.feasible
    assert plan.reason.startswith("weights need 141.") and "> 77.3 GB usable" in plan.reason


def test_kv_cache_shortfall_is_reported():
    plan = plan_deployment(load_model("llama-3.1-8b"), load_chip("h100-sxm"), chips=1, dtype="bf16",
                           context_tokens=131072, batch=16)
    assert not plan.feasible and plan.reason.startswith("KV cache needs")


@pytest.mark.parametrize("kw", [{"context_tokens": 0}, {"batch": -1}, {"chips": 0}])
def test_bad_sizes_rejected(kw):
    with pytest.raises(InputError):
        plan_deployment(load_model("llama-3.1-8b"), load_chip("h100-sxm"), **kw)
