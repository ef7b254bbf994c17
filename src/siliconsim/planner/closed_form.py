"""Closed-form evaluation of one task over its batch axis: latency p99s, replicas for the
demand, chips, power, $/Mtok. One vectorised call per task; the serving simulator later confirms
the finalists (``planner.confirm``).

Aggregated serving: chunked-prefill continuous batching (``serving.approx.continuous_batching``):
at decode batch ``B`` a replica serves ``B / (O t)`` requests/s, so the demand needs
``ceil(rate / that)`` replicas; p99 = mean x the published tail ratios of ``serving.toml``.

Disaggregated serving (DistServe, OSDI 2024; Splitwise, ISCA 2024): a decode pool of replicas
decoding at batch ``B`` (TPOT = decode-only step ``t_d``; ``ceil(rate / (B / (O t_d)))`` replicas)
and a prefill pool of the same layout, sized so it is at most ``prefill_max_utilisation`` busy
on full token-budget chunks. Mean TTFT = one prompt's prefill ``s`` plus the M/D/1 queueing wait
``rho / (2 (1 - rho)) s`` plus the KV transfer over the scale-out link. Both pools count as chips.

Speculative decoding (models with an MTP head): each step also verifies ``k`` drafted tokens
per sequence and runs the one-layer head ``k`` times; ``(1 - a^(k+1)) / (1 - a)`` tokens come out
per step (``speculative``; constants in ``data/planner.toml``).

Prefill stalls (aggregated only): a step that carries a whole long prompt (the p99 prompt, up to
the token budget) stalls every sequence decoding beside it; a short request (the p10 output)
that meets one such step sees TPOT ``(t_stall + (o - 1) t) / o``. The p99 TPOT is the larger of
that and the tail ratio times the mean (assumed; it is what the simulator shows on heavy-tailed
code-completion prompts, where the mean-based tail ratio alone misses by 3x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siliconsim.accounting.power import chip_power, host_power_w
from siliconsim.accounting.pricing import token_prices, usd_per_chip_hour
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import StepCost, Work, held_tokens
from siliconsim.planner.space import Problem, Task, planner_constants
from siliconsim.plans import Deployment, default_kv_dtype, fit_layout
from siliconsim.serving.approx import batch_grid, continuous_batching, serving_constants
from siliconsim.speculative import draft_head, expected_tokens_per_step, verify_work


@dataclass(frozen=True)
class TaskResult:
    """A task's points meeting every SLO (plain dicts, JSON-ready) or why none does."""

    key: str
    points: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    evaluated: int = 0  # configurations (batches) evaluated
    shortfall: float = math.inf  # how far the nearest batch is from the SLO (worst p99 / limit); inf: no batch ran

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "points": self.points, "reason": self.reason, "evaluated": self.evaluated,
                "shortfall": self.shortfall if math.isfinite(self.shortfall) else None}


def _speculation(dep: Deployment, b: np.ndarray, ctx: float) -> tuple[float, StepCost | None]:
    """(tokens per step, extra seconds per step over plain decode) of the MTP head, or (1, None)."""
    k = planner_constants()
    draft_len = int(k["mtp_draft_tokens"])
    head = fit_layout(draft_head(dep.model, moe=True), dep.chip, dep.par, dep.dtype, dep.kv_dtype, ctx)
    if isinstance(head, str):
        return 1.0, None
    verify = dep.step(verify_work(dep, b, ctx, draft_len))
    plain = dep.step(Work(decode_batch=b, decode_context=ctx))
    extra = StepCost(*(np.maximum(np.asarray(getattr(verify, f)) - np.asarray(getattr(plain, f)), 0.0)
                       for f in ("compute_s", "memory_s", "network_s", "overhead_s", "interval_s")))
    draft = head.step(Work(decode_batch=b, decode_context=ctx)).scaled(draft_len)
    return expected_tokens_per_step(k["mtp_acceptance"], draft_len), extra.plus(draft)


def evaluate(problem: Problem, task: Task) -> TaskResult:
    """Every batch of ``task`` under ``problem``'s demand; keeps the points meeting both p99 SLOs."""
    model, chip = load_model(problem.model), problem.chip(task.hardware)
    dep = fit_layout(model, chip, task.par, task.dtype, default_kv_dtype(task.dtype), problem.context_tokens)
    if isinstance(dep, str):
        return TaskResult(task.key, reason=dep)
    held = float(held_tokens(problem.input_tokens, problem.output_tokens, problem.decode_context_tokens))
    b = batch_grid(dep, held, int(planner_constants()["batch_points"]))
    if b.size == 0:
        return TaskResult(task.key, reason=f"KV cache of {dep.describe()} holds less than one "
                                           f"{problem.context_tokens:.0f}-token request")
    tau, extra = 1.0, None
    if task.speculative:
        tau, extra = _speculation(dep, b, problem.decode_context)
        if extra is None:
            return TaskResult(task.key, reason="the MTP head does not fit beside the model", evaluated=int(b.size))
    pts = (_disaggregated if task.mode == "disaggregated" else _aggregated)(problem, task, dep, b, tau, extra)
    return _keep(problem, task, dep, pts, int(b.size))


def _aggregated(problem: Problem, task: Task, dep: Deployment, b: np.ndarray, tau: float,
                extra: StepCost | None) -> dict[str, Any]:
    I, O = problem.input_tokens, problem.output_tokens
    c = continuous_batching(dep, b, I, O, tau, decode_context_tokens=problem.decode_context_tokens)
    step = c.step if extra is None else c.step.plus(extra)
    cp = chip_power(dep.chip, step, problem.assumptions, problem.chip_power_limit_w)
    t = np.asarray(cp.step.latency_s, dtype=float) * np.ones_like(b)
    t_dec = c.decode_step_s / cp.clock if extra is None else (c.decode_step_s + np.asarray(extra.latency_s)) / cp.clock
    mb = dep.microbatches_in_flight  # on a pipeline-parallel replica (serving.approx.continuous_batching)
    replicas = np.ceil(problem.rate_per_s / (mb * b * tau / (O * t)) - 1e-9)
    k = serving_constants()
    long_in = min(problem.long_input_tokens or I, k["prefill_token_budget"])
    stall = chip_power(dep.chip, dep.step(Work(prefill_tokens=long_in, prefill_context=long_in / 2, decode_batch=b,
                                                decode_context=problem.decode_context)), problem.assumptions,
                       problem.chip_power_limit_w)
    o = max(problem.short_output_tokens or O, 1.0)
    stall_tpot = (np.asarray(stall.step.latency_s) + (o - 1.0) * t) / (o * tau)
    slow = t / c.step_s  # a power cap slows every step alike
    return {"batch": b, "tpot_mean_s": t / tau, "ttft_mean_s": c.ttft_mean_s * slow, "p99_ttft_s": c.ttft_p99_s * slow,
            "p99_tpot_floor_s": stall_tpot,
            "p99_scale": (k["p99_over_mean_ttft"], k["p99_over_mean_tpot"]), "ok": c.ok,
            "prefill_replicas": np.zeros_like(b), "decode_replicas": replicas, "chip_w": cp.power_w,
            "prefill_share": np.clip(1.0 - t_dec / t, 0.0, 1.0), "replica_out_tok_s": mb * b * tau / t}


def _disaggregated(problem: Problem, task: Task, dep: Deployment, b: np.ndarray, tau: float,
                   extra: StepCost | None) -> dict[str, Any]:
    I, O = problem.input_tokens, problem.output_tokens
    a, limit = problem.assumptions, problem.chip_power_limit_w
    decode = dep.step(Work(decode_batch=b, decode_context=problem.decode_context))
    decode = decode if extra is None else decode.plus(extra)
    cd = chip_power(dep.chip, decode, a, limit)
    t_d = np.asarray(cd.step.latency_s, dtype=float) * np.ones_like(b)
    budget = serving_constants()["prefill_token_budget"]
    chunk = chip_power(dep.chip, dep.step(Work(prefill_tokens=budget, prefill_context=I / 2)), a, limit)
    one = chip_power(dep.chip, dep.step(Work(prefill_tokens=I, prefill_context=I / 2)), a, limit)
    capacity_tok_s = budget / float(chunk.step.latency_s)
    rho_max = planner_constants()["prefill_max_utilisation"]
    p = math.ceil(problem.rate_per_s * I / (rho_max * capacity_tok_s) - 1e-9)
    rho = problem.rate_per_s * I / (p * capacity_tok_s)
    s = float(one.step.latency_s)
    link = dep.chip.system.scale_out or dep.chip.system.scale_up
    kv_s = I * dep.kv_bytes_per_token / (link.efficiency * link.bandwidth_bytes_per_s)  # each chip sends its share
    ttft = (s * (1.0 + rho / (2.0 * (1.0 - rho))) + kv_s) * np.ones_like(b)
    d = np.ceil(problem.rate_per_s / (b * tau / (O * t_d)) - 1e-9)
    k = serving_constants()
    idle_w = a.idle_power_fraction * dep.chip.tdp_w
    chip_w = (p * (rho * float(chunk.power_w) + (1.0 - rho) * idle_w) + d * cd.power_w) / (p + d)
    return {"batch": b, "tpot_mean_s": t_d / tau, "ttft_mean_s": ttft,
            "p99_scale": (k["p99_over_mean_ttft"], k["p99_over_mean_tpot"]), "ok": np.ones_like(b, dtype=bool),
            "prefill_replicas": p * np.ones_like(b), "decode_replicas": d, "chip_w": chip_w,
            "prefill_share": p / (p + d), "replica_out_tok_s": b * tau / t_d}


def _keep(problem: Problem, task: Task, dep: Deployment, x: dict[str, Any], evaluated: int) -> TaskResult:
    """Price every batch, keep those meeting both SLOs within ``max_chips``, as JSON-ready dicts."""
    s_ttft, s_tpot = x["p99_scale"]
    p99_ttft = x["p99_ttft_s"] if "p99_ttft_s" in x else s_ttft * x["ttft_mean_s"]
    p99_tpot = np.maximum(s_tpot * x["tpot_mean_s"], x.get("p99_tpot_floor_s", 0.0))
    replicas = x["prefill_replicas"] + x["decode_replicas"]
    chips = replicas * dep.par.chips
    ok = x["ok"] & (p99_ttft <= problem.ttft_p99_s) & (p99_tpot <= problem.tpot_p99_s) & (chips <= problem.max_chips)
    if not ok.any():
        worst = np.maximum(np.maximum(p99_ttft / problem.ttft_p99_s, p99_tpot / problem.tpot_p99_s),
                           chips / problem.max_chips)
        shortfall = float(np.min(np.where(x["ok"], worst, np.inf)))
        return TaskResult(task.key, reason=_why_not(problem, dep, p99_ttft, p99_tpot, chips, x["ok"]),
                          evaluated=evaluated, shortfall=shortfall)
    chip = dep.chip
    host = host_power_w(chip, 1.0)
    power_w = chips * (x["chip_w"] + host)
    rate, _ = usd_per_chip_hour(chip, problem.pricing, problem.assumptions, x["chip_w"] + host)
    usd_per_s = chips * np.asarray(rate, dtype=float) / 3600.0
    in_s, out_s = problem.rate_per_s * problem.input_tokens, problem.rate_per_s * problem.output_tokens
    prices = token_prices(usd_per_s, x["prefill_share"], in_s, out_s)
    cols = {"batch": x["batch"], "replicas": replicas, "prefill_replicas": x["prefill_replicas"],
            "decode_replicas": x["decode_replicas"], "chips": chips, "p99_ttft_s": p99_ttft, "p99_tpot_s": p99_tpot,
            "mean_ttft_s": x["ttft_mean_s"], "mean_tpot_s": x["tpot_mean_s"],
            "tok_s_per_user": 1.0 / x["tpot_mean_s"], "output_tok_s_per_chip": x["replica_out_tok_s"] / dep.par.chips,
            "usd_per_mtok_input": prices.usd_per_mtok_input, "usd_per_mtok_output": prices.usd_per_mtok_output,
            "usd_per_mtok_blended": prices.usd_per_mtok_blended, "usd_per_hour": usd_per_s * 3600.0,
            "power_w": power_w, "facility_power_w": power_w * problem.assumptions.pue,
            "energy_j_per_output_token": power_w / out_s,
            "ttft_margin": 1.0 - p99_ttft / problem.ttft_p99_s, "tpot_margin": 1.0 - p99_tpot / problem.tpot_p99_s}
    head = {"key": task.key, "hardware": task.hardware, "chips_per_replica": dep.par.chips,
            "layout": dep.par.describe(), "dtype": dep.weights_label, "kv_dtype": dep.kv_dtype,
            "mode": task.mode, "speculative": "mtp" if task.speculative else "none"}
    lists = {k: (np.broadcast_to(np.asarray(v, dtype=float), ok.shape)[ok].astype(np.int64) if k in COUNTS
                 else np.broadcast_to(np.asarray(v, dtype=float), ok.shape)[ok]).tolist() for k, v in cols.items()}
    points = [dict(head, **dict(zip(lists, row))) for row in zip(*lists.values())]
    return TaskResult(task.key, points, "", evaluated)


COUNTS = frozenset({"batch", "replicas", "prefill_replicas", "decode_replicas", "chips"})  # whole numbers in JSON


def _why_not(problem: Problem, dep: Deployment, p99_ttft: np.ndarray, p99_tpot: np.ndarray, chips: np.ndarray,
             budget_ok: np.ndarray) -> str:
    where = dep.describe()
    tpot_ok = budget_ok & (p99_tpot <= problem.tpot_p99_s)
    if not tpot_ok.any():
        best = float(np.nanmin(np.where(budget_ok, p99_tpot, np.inf)))
        return f"p99 TPOT at best {best * 1e3:.3g} ms > {problem.tpot_p99_s * 1e3:g} ms on {where}"
    both = tpot_ok & (p99_ttft <= problem.ttft_p99_s)
    if not both.any():
        best = float(np.nanmin(np.where(tpot_ok, p99_ttft, np.inf)))
        return f"p99 TTFT at best {best * 1e3:.3g} ms > {problem.ttft_p99_s * 1e3:g} ms (with the TPOT SLO) on {where}"
    need = int(np.min(np.where(both, chips, np.inf)))
    return f"needs {need} chips > --max-chips {problem.max_chips} on {where}"
