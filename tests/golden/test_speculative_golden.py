"""Speculative decoding against a published batch-1 speedup.

Source: Li et al., EAGLE-3 (arXiv:2503.01840), section 4.3 / Table 4 (also the SGLang docs'
speculative-decoding page): SGLang on one H100, LLaMA-Instruct 3.1 8B, MT-bench, batch 1, EAGLE-3
as a chain of 3 drafts: 158.34 tok/s without speculation, 373.25 tok/s with it (2.36x).

The speedup ratio is compared, so the absolute decode model cancels out. Tolerance 20%: the
default acceptance comes from other chain measurements (vLLM, same model and benchmark), and the
modelled head reads the full 128k-token LM head where that EAGLE-3 head drafts over 32k tokens.
"""

import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.speculative import speculative_estimate
from siliconsim.validation.speculation import speculation_for

PUBLISHED_SPEEDUP = 373.25 / 158.34


def test_eagle3_defaults_give_the_papers_sglang_batch1_speedup():
    model, chip = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    sc = Scenario(1, 128, 512)  # MT-bench: short questions, answers of a few hundred tokens
    spec, _ = speculation_for("eagle3", model)
    plain = estimate(model, chip, sc, dtype="bf16")
    fast = speculative_estimate(model, chip, sc, spec, dtype="bf16")
    assert plain.tpot_s / fast.tpot_s == pytest.approx(PUBLISHED_SPEEDUP, rel=0.20)
