"""Speculative decoding on any execution family (off unless asked for).

A drafter proposes ``k`` tokens; the target verifies them in one step of ``k + 1`` positions per
sequence and keeps the accepted prefix plus one token of its own. With a per-token acceptance
rate ``a`` (i.i.d.), the expected tokens per target step is ``(1 - a**(k+1)) / (1 - a)``
(Leviathan, Kalman & Matias, "Fast Inference from Transformers via Speculative Decoding",
ICML 2023, eq. 1).

- Verify step: ``k + 1`` tokens per sequence attending to the context. HBM engines run it as a
  short prefill chunk (weights read once, KV read once per tile); SRAM machines (wafer,
  dataflow) map it like decode at batch ``b * (k + 1)`` (GEMV-shaped mesh/pipeline mapping).
  A verify step never costs less than the plain decode step it replaces (the HBM prefill path
  reads the KV cache once per 128-query tile, which undercounts it for a 5-token chunk).
- Draft cost: ``k`` decode steps of the draft model on its own smallest deployment of the same
  hardware (a separate replica, stated in the result), or zero for n-gram / prompt lookup. A
  ``colocated`` drafter (an EAGLE or MTP head, built by ``draft_head``) reads the target's hidden
  states, so it runs on the target's chips instead (its weights are not added to their memory fit).
- Effective TPOT = (verify + k * draft step) / expected tokens per step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Estimate, Scenario, estimate
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.step import StepCost, Work
from siliconsim.plans import Deployment, Plan, plan_deployment


@dataclass(frozen=True)
class Speculation:
    """How tokens are drafted: ``method`` "ngram" (prompt lookup, free) or "draft" (a model)."""

    method: str = "ngram"
    draft_len: int = 4
    acceptance: float = 0.7
    draft_model: ModelSpec | None = None
    colocated: bool = False  # the drafter runs on the target's chips (EAGLE/MTP heads), not its own replica

    def __post_init__(self) -> None:
        if self.method not in ("ngram", "draft"):
            raise InputError(f"speculative method: {self.method!r} is not one of ngram, draft")
        if self.method == "draft" and self.draft_model is None:
            raise InputError("speculative method 'draft' needs a draft model")
        if int(self.draft_len) != self.draft_len or self.draft_len < 1:
            raise InputError(f"draft_len: expected a whole number >= 1, got {self.draft_len!r}")
        if not 0.0 <= self.acceptance <= 1.0:
            raise InputError(f"acceptance: expected a fraction between 0 and 1, got {self.acceptance!r}")


def expected_tokens_per_step(acceptance: float, draft_len: int) -> float:
    """Leviathan et al. 2023, eq. 1: ``(1 - a**(k+1)) / (1 - a)``; ``k + 1`` when ``a == 1``."""
    if acceptance >= 1.0:
        return float(draft_len + 1)
    return (1.0 - acceptance ** (draft_len + 1)) / (1.0 - acceptance)


def verify_work(dep: Deployment, batch: float, context: float, draft_len: int) -> Work:
    """The target step that checks ``draft_len`` drafted tokens of each of ``batch`` sequences."""
    positions = batch * (draft_len + 1)
    if dep.family.name == "hbm":
        return Work(prefill_tokens=positions, prefill_context=context)
    return Work(decode_batch=positions, decode_context=context)


def draft_head(model: ModelSpec, moe: bool = False) -> ModelSpec:
    """A one-layer drafter that reads ``model``'s hidden states and carries its vocabulary head.

    ``moe=False``: an EAGLE-style head, one dense decoder layer of the target's width and dense MLP
    width (EAGLE-3, Li et al. 2025, arXiv:2503.01840, section 3.1: fusion FC + one decoder layer +
    LM head; the 3d x d fusion layer is left out). ``moe=True``: DeepSeek-V3's MTP module
    (arXiv:2412.19437, section 2.2), one copy of the target's MoE layer. A target without a layer
    of the asked kind gives its last layer. Attention spans the full context.
    """
    same = [g for g in model.groups if g.moe == moe] or list(model.groups)
    layer = replace(same[-1], count=1, window=None)
    kind = "mtp" if moe else "eagle"
    return replace(model, id=f"{model.id}:{kind}-head", n_layers=1, groups=(layer,), mtp_layers=0)


def _plan_draft(spec: Speculation, chip: Chip, sc: Scenario, dtype: str | None, chips: int) -> Plan:
    """A head shares the target's chips where the family can lay one layer out on them (HBM tensor
    parallel); on a pipeline of wafers or SRAM chips it cannot, and takes its own smallest system."""
    def on(n: int | None) -> Plan:
        return plan_deployment(spec.draft_model, chip, chips=n, dtype=dtype,  # type: ignore[arg-type]
                               context_tokens=sc.context_tokens, batch=sc.batch)

    shared = on(chips) if spec.colocated else None
    return shared if shared is not None and shared.feasible else on(None)


def _draft(spec: Speculation, chip: Chip, sc: Scenario, dtype: str | None,
           chips: int) -> tuple[StepCost | None, Deployment | None, str]:
    if spec.method == "ngram":
        return None, None, ""
    plan = _plan_draft(spec, chip, sc, dtype, chips)
    if not plan.feasible:
        return None, None, f"draft model: {plan.reason}"
    dep = plan.deployment
    step = dep.step(Work(decode_batch=sc.batch, decode_context=sc.input_tokens + sc.output_tokens / 2))  # type: ignore[union-attr]
    return step, dep, ""


def speculative_estimate(model: ModelSpec, chip: Chip, scenario: Scenario, spec: Speculation, *,
                         chips: int | None = None, dtype: str | None = None, kv_dtype: str | None = None,
                         replicas: int = 1) -> Estimate:
    """Like ``inference.estimate`` with speculative decoding: ``tpot_s`` is the effective time per
    output token and ``decode`` the effective step per token; ``extras["speculative"]`` holds
    the verify and draft steps, tokens per step, and the extra FLOP and memory."""
    base = estimate(model, chip, scenario, chips=chips, dtype=dtype, kv_dtype=kv_dtype, replicas=replicas)
    if not base.feasible:
        return base
    dep = base.deployment
    assert dep is not None and base.decode is not None
    draft_step, draft_dep, why = _draft(spec, chip, scenario, dtype or model.native_dtype, dep.par.chips)
    if why:
        return replace(base, tpot_s=float("nan"), extras={"speculative": {"reason": why}})
    k = int(spec.draft_len)
    ctx = scenario.input_tokens + scenario.output_tokens / 2
    verify = dep.step(verify_work(dep, scenario.batch, ctx, k))
    floor = base.decode.latency_s  # checking k + 1 positions never costs less than decoding one
    verify = verify if float(np.mean(verify.latency_s)) >= float(np.mean(floor)) else base.decode
    tokens = expected_tokens_per_step(spec.acceptance, k)
    per_step = verify if draft_step is None else verify.plus(draft_step.scaled(k))
    effective = per_step.scaled(1.0 / tokens)
    extras = {"speculative": _extras(model, spec, base, verify, draft_step, draft_dep, tokens, ctx)}
    return replace(base, tpot_s=float(effective.latency_s), decode=effective, extras=extras)


def _extras(model: ModelSpec, spec: Speculation, base: Estimate, verify: StepCost, draft_step: StepCost | None,
            draft_dep: Deployment | None, tokens: float, ctx: float) -> dict[str, Any]:
    k = spec.draft_len
    f_target = model.flop_per_token(ctx)
    f_draft = spec.draft_model.flop_per_token(ctx) if spec.draft_model else 0.0
    flop_per_out = ((k + 1) * f_target + k * f_draft) / tokens
    dep = base.deployment
    w_draft = spec.draft_model.weight_bytes(draft_dep.dtype) if (spec.draft_model and draft_dep) else 0.0
    kv_draft = (spec.draft_model.kv_bytes(base.scenario.context_tokens, draft_dep.kv_dtype) * base.scenario.batch
                if (spec.draft_model and draft_dep) else 0.0)
    return {
        "method": spec.method, "draft_model": spec.draft_model.id if spec.draft_model else None,
        "draft_len": k, "acceptance": spec.acceptance, "tokens_per_step": tokens,
        "verify_step_s": float(np.mean(verify.latency_s)),
        "draft_step_s": float(np.mean(draft_step.latency_s)) if draft_step is not None else 0.0,
        "plain_tpot_s": base.tpot_s, "speedup": base.tpot_s * tokens / float(np.mean(
            verify.latency_s + (k * draft_step.latency_s if draft_step is not None else 0.0))),
        "flop_per_output_token": flop_per_out, "extra_flop_per_output_token": flop_per_out - f_target,
        "draft_weight_bytes": w_draft, "draft_kv_bytes": kv_draft,
        "draft_deployment": draft_dep.describe() if draft_dep else None,
        "draft_chips": draft_dep.chips if draft_dep else 0,
        "note": _where_drafted(spec, draft_dep, dep) + (f"; target {dep.describe()}" if dep else ""),
    }


def _where_drafted(spec: Speculation, draft_dep: Deployment | None, target: Deployment | None) -> str:
    if draft_dep is None:
        return "n-gram / prompt-lookup drafting: no draft model cost"
    if spec.colocated and target is not None and draft_dep.par.chips == target.par.chips:
        return "draft head runs on the target's chips"
    if spec.colocated:
        return "draft head runs on its own smallest system (the target's layout cannot hold one layer)"
    return "draft model runs on its own deployment of the same hardware"
