"""Speculative decoding in the closed loop (serving/speculative_loop.py): a decode step verifies
k drafted tokens per sequence, runs the drafter k times and emits (1 - a^(k+1)) / (1 - a) tokens."""

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Parallel, Work
from siliconsim.plans import fit_layout
from siliconsim.serving.closed_loop import closed_loop_point, simulate_closed_loop
from siliconsim.serving.disagg import Pools, disaggregated_point, pool_link
from siliconsim.serving.speculative_loop import speculative_deployment
from siliconsim.speculative import Speculation, draft_head
from siliconsim.validation.speculation import speculation_for

CTX = 921.6 * 1.5  # mean decode context of a 1k/1k run (I + O / 2)


def _r1():
    return fit_layout(load_model("deepseek-r1"), load_chip("h200"), Parallel(tp=8, ep=8), "fp8", "fp8", 2048.0)


def _mtp(dep, acceptance: float, k: int = 1):
    spec = Speculation("draft", k, acceptance, draft_head(dep.model, moe=True), colocated=True)
    out = speculative_deployment(dep, spec, 2048.0)
    assert not isinstance(out, str)
    return out


def _t(dep, **work) -> float:
    return float(np.asarray(dep.step(Work(**work)).latency_s))


def test_decode_step_by_hand_with_the_sourced_mtp_acceptance():
    """DeepSeek-V3 report (arXiv:2412.19437) section 5.4.3: one MTP module drafts the second token,
    accepted 85-90% of the time (0.875 in validation/data/speculation.toml). Per token: (verify of
    2 positions per sequence, at least the plain step, + one MTP-layer step) / (1 + 0.875)."""
    dep = _r1()
    spec, _ = speculation_for("mtp", dep.model)
    assert (spec.draft_len, spec.acceptance) == (1, 0.875)
    sd = speculative_deployment(dep, spec, 2048.0)
    for b in (1.0, 16.0, 128.0):
        verify = max(_t(dep, prefill_tokens=2 * b, prefill_context=CTX), _t(dep, decode_batch=b, decode_context=CTX))
        head = _t(sd.draft, decode_batch=b, decode_context=CTX)
        assert sd.draft.par == dep.par and sd.draft.model.n_layers == 1  # the MTP layer, on the target's chips
        assert _t(sd, decode_batch=b, decode_context=CTX) == pytest.approx((verify + head) / 1.875, rel=1e-12)


def test_prompt_tokens_are_charged_in_full():
    dep = _r1()
    sd = _mtp(dep, 0.875)
    assert _t(sd, prefill_tokens=1000.0, prefill_context=500.0) == _t(dep, prefill_tokens=1000.0, prefill_context=500.0)
    mixed = _t(sd, prefill_tokens=1000.0, prefill_context=500.0, decode_batch=32.0, decode_context=CTX)
    decode = _t(sd, decode_batch=32.0, decode_context=CTX)
    assert mixed > decode  # the prompt chunk is not amortised over the accepted tokens


@pytest.mark.parametrize("k", [1, 3])
def test_never_accepted_drafts_never_help(k):
    dep = _r1()
    sd = _mtp(dep, 0.0, k)
    for b in (1.0, 8.0, 64.0, 256.0):
        assert _t(sd, decode_batch=b, decode_context=CTX) > _t(dep, decode_batch=b, decode_context=CTX)
    for n in (1, 8, 64, 256):
        plain, spec = closed_loop_point(dep, n, 921.6, 921.6), closed_loop_point(sd, n, 921.6, 921.6)
        assert spec.output_tok_s < plain.output_tok_s and spec.tpot_s > plain.tpot_s


def test_accepted_drafts_speed_up_every_load_and_more_acceptance_more():
    dep = _r1()
    for n in (1, 16, 256):
        plain = closed_loop_point(dep, n, 921.6, 921.6).output_tok_s
        tput = [closed_loop_point(_mtp(dep, a), n, 921.6, 921.6).output_tok_s for a in (0.5, 0.875, 1.0)]
        assert plain < tput[1] and tput == sorted(tput)


@pytest.mark.parametrize("n", [4, 64])
def test_closed_form_matches_the_event_engine_with_speculation(n):
    """The engine steps the same speculative deployment (DeploymentStepModel calls its ``step``);
    tolerances as the plain closed loop's test in test_serving_sweeps.py: 6% on throughput and
    TPOT (0-2% apart here). TTFT is not compared: the engine emits one token per sequence per step,
    so the steps that carry a prompt are shortened by the amortised decode share too, and its
    TTFT comes out 10-30% short of the closed form's own prefill plus one decode step."""
    sd = _mtp(_r1(), 0.875)
    cf = closed_loop_point(sd, n, 921.6, 921.6)
    sim = simulate_closed_loop(sd, n, 921.6, 921.6)
    assert cf.output_tok_s == pytest.approx(sim.output_tok_s, rel=0.06)
    assert cf.tpot_s == pytest.approx(sim.tpot_s, rel=0.06)


def test_speculating_decode_pool_of_a_disaggregated_system():
    dep = _r1()
    pools = Pools(dep, 1, dep, 1, *pool_link(dep.chip, 16))
    plain = disaggregated_point(pools, 64, 921.6, 921.6)
    spec = disaggregated_point(Pools(dep, 1, _mtp(dep, 0.875), 1, pools.link, pools.link_scope), 64, 921.6, 921.6)
    assert spec.tpot_s < plain.tpot_s and spec.output_tok_s > plain.output_tok_s


def test_ngram_lookup_has_no_drafter_and_a_technique_the_model_lacks_says_why():
    dep = _r1()
    sd = speculative_deployment(dep, Speculation("ngram", 4, 0.5), 2048.0)
    assert sd.draft is None and "n-gram" in sd.describe() and "k=4" in sd.describe()
    spec, why = speculation_for("mtp", load_model("llama-3.1-8b"))
    assert spec is None and "no multi-token-prediction layer" in why
