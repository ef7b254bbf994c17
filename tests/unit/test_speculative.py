"""Speculative decoding: Leviathan et al. expected tokens, verify and draft costs."""

import math

import pytest

from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.speculative import Speculation, draft_head, expected_tokens_per_step, speculative_estimate

SC = Scenario(1, 1000, 500)


def test_expected_tokens_per_step_matches_leviathan_eq1():
    assert expected_tokens_per_step(0.0, 4) == 1.0
    assert expected_tokens_per_step(1.0, 4) == 5.0
    assert expected_tokens_per_step(0.8, 4) == pytest.approx((1 - 0.8 ** 5) / 0.2)


@pytest.mark.parametrize("hw", ["cs-3", "h100-sxm", "groq-lpu", "sn40l"])
def test_ngram_speculation_speeds_up_every_family(hw):
    model, chip = load_model("llama-3.1-8b"), load_chip(hw)
    dtype = "int8" if hw == "groq-lpu" else None
    plain = estimate(model, chip, SC, dtype=dtype)
    spec = speculative_estimate(model, chip, SC, Speculation("ngram", 4, 0.8), dtype=dtype)
    x = spec.extras["speculative"]
    assert spec.tpot_s < plain.tpot_s
    assert spec.tpot_s == pytest.approx(x["verify_step_s"] / x["tokens_per_step"])
    assert x["extra_flop_per_output_token"] > 0 and x["draft_step_s"] == 0


def test_zero_acceptance_never_helps():
    model, chip = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    plain = estimate(model, chip, SC)
    spec = speculative_estimate(model, chip, SC, Speculation("ngram", 4, 0.0))
    assert spec.tpot_s >= plain.tpot_s


def test_draft_model_costs_k_draft_steps():
    model, chip = load_model("llama-3.1-70b"), load_chip("cs-3")
    sp = Speculation("draft", 3, 0.8, load_model("llama-3.2-1b"))
    est = speculative_estimate(model, chip, SC, sp)
    x = est.extras["speculative"]
    want = (x["verify_step_s"] + 3 * x["draft_step_s"]) / x["tokens_per_step"]
    assert est.tpot_s == pytest.approx(want) and x["draft_step_s"] > 0
    assert x["draft_weight_bytes"] > 0 and x["draft_deployment"]
    assert math.isfinite(est.output_tok_s_per_user)


def test_bad_speculation_inputs_are_rejected():
    with pytest.raises(InputError):
        Speculation("draft", 4, 0.7)
    with pytest.raises(InputError):
        Speculation("ngram", 0, 0.7)
    with pytest.raises(InputError):
        Speculation("ngram", 4, 1.5)


def test_colocated_head_shares_the_target_chips_where_the_family_can():
    gpu = speculative_estimate(load_model("llama-3.1-70b"), load_chip("h100-sxm"), SC,
                               Speculation("draft", 3, 0.8, draft_head(load_model("llama-3.1-70b")), colocated=True),
                               chips=4)
    assert gpu.extras["speculative"]["draft_chips"] == 4 and "target's chips" in gpu.extras["speculative"]["note"]
    wafer = speculative_estimate(load_model("llama-3.1-70b"), load_chip("cs-3"), SC,
                                 Speculation("draft", 3, 0.8, draft_head(load_model("llama-3.1-70b")), colocated=True))
    assert wafer.chips == 4 and wafer.extras["speculative"]["draft_chips"] == 1  # no PP4 layout of one layer
    assert "own smallest system" in wafer.extras["speculative"]["note"]
    assert math.isfinite(wafer.tpot_s) and wafer.tpot_s < estimate(load_model("llama-3.1-70b"), load_chip("cs-3"), SC).tpot_s
