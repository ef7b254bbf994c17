"""Speculative decoding (MTP, EAGLE heads, draft models) inside serving: a deployment whose decode
steps verify drafted tokens.

``SpeculativeDeployment`` is a ``plans`` Deployment whose ``step`` returns the time **per emitted
token position** of its decode part, so every serving model built on ``dep.step`` (the closed
loop of ``serving.closed_loop``, the disaggregated pools of ``serving.disagg``, the event engine
through ``DeploymentStepModel``) serves speculatively without knowing it:

* a real decode step of batch ``B`` verifies ``k`` drafted tokens per sequence, ``B (k + 1)``
  positions (``speculative.verify_work``: a short prefill chunk on HBM engines, a wider decode on
  SRAM machines), never cheaper than the plain decode step it replaces, plus ``k`` steps of the
  drafter at batch ``B`` (an MTP or EAGLE head on the target's chips, ``speculative.draft_head``;
  a draft model on its own deployment; nothing for n-gram lookup);
* it emits ``tau = (1 - a^(k+1)) / (1 - a)`` tokens per sequence on average (Leviathan, Kalman &
  Matias, ICML 2023, eq. 1; acceptance ``a`` per technique from ``validation/data/speculation.toml``);
* so ``O`` output tokens take ``O / tau`` real steps: the decode part of a step is charged
  ``1 / tau`` of its time per token, the prefill part (prompt tokens in the same step) in full:
  ``t = t_spec(work) - (1 - 1/tau) t_spec(decode part only)``.

With ``a = 0`` (``tau = 1``) a step costs the verify plus the drafts, never less than plain
decode: speculation that is never accepted never helps. Throughput and TPOT are right wherever
steps are counted per token; a single step is not: the event engine, which emits one token per
sequence per step, shortens the steps that carry a prompt by the amortised decode share too, so its
TTFT under speculation is 10-30% short (``tests/unit/test_speculative_loop.py``). The verify positions' transient KV and a
colocated head's weights are not added to the memory fit (as in ``speculative``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from siliconsim.perf.step import StepCost, Work
from siliconsim.plans import Deployment, fit_layout, plan_deployment
from siliconsim.speculative import Speculation, expected_tokens_per_step, verify_work


@dataclass(frozen=True)
class SpeculativeDeployment(Deployment):
    """``Deployment`` whose decode work is verified speculation (see module doc); ``draft`` is the
    drafter's deployment (``None``: n-gram lookup, free)."""

    draft: Deployment | None = None
    draft_len: int = 1
    acceptance: float = 0.0

    @property
    def tokens_per_step(self) -> float:
        return expected_tokens_per_step(self.acceptance, self.draft_len)

    def step(self, work: Work) -> StepCost:
        """Seconds per step with the decode part amortised over ``tokens_per_step`` tokens."""
        batch = np.asarray(work.decode_batch, dtype=float)
        if not np.any(batch > 0):
            return super().step(work)
        spec = self._speculative_step(work)
        keep = 1.0 - 1.0 / self.tokens_per_step
        if not np.any(np.asarray(work.prefill_tokens, dtype=float) > 0):
            return spec.scaled(1.0 - keep)
        decode_only = self._speculative_step(Work(decode_batch=work.decode_batch, decode_context=work.decode_context))
        return spec.plus(decode_only.scaled(-keep))

    def _speculative_step(self, work: Work) -> StepCost:
        """One real step: the prompt tokens, the verify positions and ``k`` draft steps."""
        k = self.draft_len
        plain = super().step(work)
        verify = super().step(_with_verify(self, work, k))
        shorter = np.asarray(verify.latency_s) < np.asarray(plain.latency_s)  # verify never beats plain decode
        verify = StepCost(*(np.where(shorter, getattr(plain, f.name), getattr(verify, f.name)) for f in fields(plain)))
        if self.draft is None:
            return verify
        draft = self.draft.step(Work(decode_batch=work.decode_batch, decode_context=work.decode_context))
        return verify.plus(draft.scaled(k))

    def describe(self) -> str:
        drafter = f"draft {self.draft.model.id}" if self.draft is not None else "n-gram"
        return (f"{super().describe()} + speculative k={self.draft_len}, acceptance {self.acceptance:g} "
                f"({self.tokens_per_step:.2f} tok/step, {drafter})")


def _with_verify(dep: Deployment, work: Work, k: int) -> Work:
    """``work`` with its decode sequences checking ``k`` drafted tokens each."""
    batch = np.asarray(work.decode_batch, dtype=float)
    v = verify_work(dep, batch, work.decode_context, k)
    if dep.family.name != "hbm":  # SRAM machines: a wider decode (speculative.verify_work)
        return Work(work.prefill_tokens, work.prefill_context, v.decode_batch, v.decode_context)
    p, pc = np.asarray(work.prefill_tokens, dtype=float), np.asarray(work.prefill_context, dtype=float)
    vt = np.asarray(v.prefill_tokens, dtype=float)
    total = p + vt
    ctx = np.where(total > 0, (p * pc + vt * np.asarray(v.prefill_context, dtype=float)) / np.maximum(total, 1e-30), 0.0)
    return Work(prefill_tokens=total, prefill_context=ctx)


def speculative_deployment(dep: Deployment, spec: Speculation, context_tokens: float) -> SpeculativeDeployment | str:
    """``dep`` serving with ``spec``: a colocated head fitted on ``dep``'s layout (else its own
    smallest system), a draft model on its own smallest deployment; a string says why not."""
    draft = None
    if spec.method == "draft":
        assert spec.draft_model is not None
        draft = fit_layout(spec.draft_model, dep.chip, dep.par, dep.dtype, dep.kv_dtype, context_tokens) \
            if spec.colocated else None
        if not isinstance(draft, Deployment):
            plan = plan_deployment(spec.draft_model, dep.chip, dtype=dep.dtype, context_tokens=context_tokens)
            if not plan.feasible:
                return f"draft {spec.draft_model.id}: {plan.reason}"
            draft = plan.deployment
    base: dict[str, Any] = {f.name: getattr(dep, f.name) for f in fields(Deployment)}
    return SpeculativeDeployment(**base, draft=draft, draft_len=int(spec.draft_len), acceptance=float(spec.acceptance))
