"""Predict one suite row: map its scenario and metric onto the closed-form estimates.

* ``single_stream``: batch 1 on ``chips``; a row without a chip count measured a service, so it
  runs on the vendor's unit of deployment, the fewest whole nodes of the chip's system that hold
  the model (``planner.layouts.serving_unit_chips``). A row that names a speculative technique,
  or whose service's vendor documents one for the model (``validation.speculation.as_served``),
  is predicted with that technique's defaults (``validation.speculation``).
  ``output_tok_s_per_user = 1 / TPOT``, ``ttft_ms = TTFT``.
* ``offline``: ``chips`` is the whole submission. The planner (``planner.layouts.best_split``)
  tries every replica size ``n`` that divides it and fits the model, with ``chips // n``
  data-parallel replicas, each at its throughput-optimal batch (``inference.max_throughput``); the best layout is the prediction.
  A row from a benchmark whose documentation makes its chips one model instance
  (``validation.benchmarks``: the TensorRT-LLM performance overview) is predicted on that instance;
  where it documents a fixed dataset of equal requests, as that run: ``inference.finite_run``, the
  requests in waves, the last one part-full.
* ``concurrency``: serving-sweep rows (``Case.closed_loop``: a layout or engine column, or a
  median metric) are closed-loop runs with ``concurrency`` requests in flight, predicted by
  ``serving.closed_loop.closed_loop_point`` on the published layout (``tp``, ``ep``,
  ``dp_attention``) or, without one, the planner's layout on ``chips``; rows with
  ``prefill_chips``/``decode_chips`` by ``serving.disagg`` (the published layout on the decode
  pool), rows naming a speculative technique with its drafts verified in every decode step
  (``serving.speculative_loop``). A row whose engine and published layout have launch settings in
  ``serving/data/engines.toml`` runs with them (batch cap, token budget and prefill chunking, the
  engine's memory fraction, whole-sequence KV reservation, TensorRT-LLM's scheduler holds);
  rows without settings keep the defaults.
  Concurrency rows that are not sweeps: one batch of ``concurrency`` requests on ``chips`` run to
  completion (the static-batching TensorRT-LLM tables).
* ``server``/``interactive``: the same layout search over ``serving.approx.operating_point``, fed by
  the submitter's stack where ``serving.toml`` names one for the chip and scenario (a stack that fixes
  the replica size replaces the search).

Power rows (``system_power_w``, ``energy_j_per_output_token``) and every row of a power-capped
run (``chip_power_limit_w``) go through ``accounting.power.serving_power`` at the uncapped
operating point: wall power of the chips and their host shares, and the run slowed by the cap.

Every prediction says which layout it used and what it assumed; rows it cannot predict carry
the reason instead of a value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from siliconsim.accounting import default_assumptions
from siliconsim.accounting.power import ServingPower, power_limited, serving_power
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Estimate, Scenario, estimate, finite_run, max_throughput, max_throughput_on
from siliconsim.models.spec import ModelSpec
from siliconsim.planner.layouts import best_split, serving_unit_chips
from siliconsim.perf.step import Parallel
from siliconsim.plans import Deployment, Plan, default_kv_dtype, fit_layout, plan_deployment
from siliconsim.speculative import speculative_estimate
from siliconsim.serving.approx import Stack, continuous_batching, operating_point, stack_for
from siliconsim.serving.closed_loop import RANGE_RATIO, ClosedLoopPoint, closed_loop_point
from siliconsim.serving.disagg import disaggregated_point, plan_pools
from siliconsim.serving.engines import EngineSettings, engine_point, engine_settings
from siliconsim.validation.benchmarks import benchmark_of
from siliconsim.validation.submissions import Submission, submission_for
from siliconsim.serving.speculative_loop import speculative_deployment
from siliconsim.validation.speculation import as_served, speculation_for
from siliconsim.validation.suite import POWER_METRICS, Case
from siliconsim.validation.workload import Lengths

NAN = float("nan")
MEAN_OVER_NOMINAL = (1.0 + RANGE_RATIO) / 2.0  # closed-loop lengths are uniform in [0.8, 1] x nominal


@dataclass(frozen=True)
class Prediction:
    value: float = NAN
    reason: str = ""  # why the row is not predicted ("" when it is)
    layout: str = ""  # e.g. "2× 4× h100-sxm (TP4, fp8, KV fp8)"
    chips_chosen: bool = False  # the row gave no chip count; the planner chose the system

    @property
    def covered(self) -> bool:
        return not self.reason and math.isfinite(self.value) and self.value > 0


def _from_estimate(est: Estimate, metric: str, chosen: bool = False) -> Prediction:
    if not est.feasible:
        return Prediction(reason=est.plan.reason or "infeasible")
    values = {"output_tok_s_per_user": est.output_tok_s_per_user, "ttft_ms": est.ttft_s * 1e3,
              "aggregate_output_tok_s": est.aggregate_output_tok_s, "tpot_mean_ms": est.tpot_s * 1e3,
              "ttft_mean_ms": est.ttft_s * 1e3}
    rep = f"{est.replicas}× " if est.replicas > 1 else ""
    return Prediction(values[metric], layout=rep + est.deployment.describe(), chips_chosen=chosen)  # type: ignore[union-attr]


def single_stream(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    out = 1.0 if case.metric == "ttft_ms" else ln.output_tokens
    sc = Scenario(1, ln.input_tokens, out)
    chips = case.chips
    if chips is None:  # a service's speed: the vendor's unit of deployment (whole nodes)
        unit = serving_unit_chips(model, chip, case.weight_dtype, sc.context_tokens)
        if isinstance(unit, Plan):
            return Prediction(reason=unit.reason or "infeasible")
        chips = unit
    if case.is_speculative:
        return speculative_single_stream(case, model, chip, sc, chips)
    est = estimate(model, chip, sc, chips=chips, dtype=case.weight_dtype)
    return _from_estimate(est, case.metric, case.chips is None)


def speculative_single_stream(case: Case, model: ModelSpec, chip: Chip, sc: Scenario,
                              chips: int | None) -> Prediction:
    """A row that names a speculative technique (or whose service documents one): the technique's
    defaults (``validation.speculation``), the draft on the target's chips where the vendor says so."""
    spec, what = speculation_for(case.speculative, model, colocated=as_served(case)[1])
    if spec is None:
        return Prediction(reason=what)
    est = speculative_estimate(model, chip, sc, spec, chips=chips, dtype=case.weight_dtype)
    if est.feasible and not math.isfinite(est.tpot_s):
        return Prediction(reason=est.extras["speculative"]["reason"])
    pred = _from_estimate(est, case.metric, case.chips is None)
    return replace(pred, layout=f"{pred.layout}; {what}") if pred.covered else pred


def concurrency(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    if case.closed_loop:
        return closed_loop(case, model, chip, ln)
    est = estimate(model, chip, Scenario(case.concurrency or 1, ln.input_tokens, ln.output_tokens),
                   chips=case.chips, dtype=case.weight_dtype)
    return _from_estimate(est, case.metric, case.chips is None)


def serving_layout(case: Case, model: ModelSpec, chip: Chip, context_tokens: float,
                   engine: EngineSettings | None = None) -> Deployment | str:
    """The row's published layout (``tp``, ``ep``, ``dp_attention``) fitted on its chips, or the
    planner's choice on ``chips`` when the row publishes none; a string says why nothing fits.
    ``engine``'s memory fraction, where it has one, replaces the default usable fraction."""
    dtype = case.weight_dtype
    if case.tp is None:
        plan = plan_deployment(model, chip, chips=case.chips, dtype=dtype, context_tokens=context_tokens)
        return plan.deployment if plan.feasible else plan.reason  # type: ignore[return-value]
    par = Parallel(tp=case.tp, ep=case.ep or 1, attn_dp=bool(case.dp_attention))
    if case.chips is not None and par.chips != case.chips:
        return f"published layout {par.describe()} uses {par.chips} chips, the row has {case.chips}"
    return fit_layout(model, chip, par, dtype, default_kv_dtype(dtype), context_tokens,
                      memory_fraction=None if engine is None else engine.memory_fraction,
                      memory_fraction_of="total" if engine is None else engine.memory_fraction_of)


def row_engine(case: Case, ln: Lengths) -> EngineSettings | None:
    """The published launch settings of the row's engine and layout (``serving.engines``), if any."""
    if not case.engine or case.tp is None:
        return None
    return engine_settings(case.hardware, case.engine, case.weight_dtype, case.tp, case.ep or 1,
                           bool(case.dp_attention), round(ln.input_tokens / MEAN_OVER_NOMINAL),
                           round(ln.output_tokens / MEAN_OVER_NOMINAL), case.concurrency or 1)


def closed_loop(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    """A serving-sweep row: ``concurrency`` requests in flight on the published layout (or the
    planner's), by the closed form of ``serving.closed_loop`` (checked against the engine in tests);
    with ``prefill_chips``/``decode_chips``, disaggregated pools (``serving.disagg``); with a
    ``speculative`` technique, decode steps that verify its drafts (``serving.speculative_loop``)."""
    point = _closed_loop_point(case, model, chip, ln)
    if isinstance(point, str):
        return Prediction(reason=point)
    layout, op = point
    value = {"aggregate_output_tok_s": op.output_tok_s, "output_tok_s_per_user": 1.0 / op.tpot_s,
             "tpot_median_ms": op.tpot_s * 1e3, "ttft_median_ms": op.ttft_s * 1e3,
             "tpot_mean_ms": op.tpot_s * 1e3, "ttft_mean_ms": op.ttft_s * 1e3}.get(case.metric, NAN)
    if not math.isfinite(value):
        return Prediction(reason=f"metric {case.metric} not predicted for a closed-loop concurrency run")
    waiting = op.concurrency - op.in_service  # disaggregated: those in the prefill pool and in transfer too
    queued = f", {waiting:.0f} waiting for a slot" if waiting >= 0.5 else ""
    return Prediction(value, layout=f"{layout}; closed loop x{op.concurrency}{queued}")


_POINTS: dict[tuple[Any, ...], tuple[ModelSpec, Chip, tuple[str, ClosedLoopPoint] | str]] = {}


def _closed_loop_point(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> tuple[str, ClosedLoopPoint] | str:
    """(layout description, steady state) of the row's run, or why it is not predicted. One sweep
    point is shared by its four metric rows, so it is computed once per setup (the same model and
    chip objects: calibration's efficiency overrides make new chips)."""
    key = (case.hardware, case.chips, case.model, case.weight_dtype, case.concurrency, case.tp, case.ep,
           case.dp_attention, case.prefill_chips, case.decode_chips, case.speculative, case.engine,
           ln.input_tokens, ln.output_tokens)
    hit = _POINTS.get(key)
    if hit is not None and hit[0] is model and hit[1] is chip:
        return hit[2]
    pools = case.prefill_chips is not None or case.decode_chips is not None
    out = (_pools_point if pools else _replica_point)(case, model, chip, ln)
    if len(_POINTS) > 4096:
        _POINTS.clear()
    _POINTS[key] = (model, chip, out)
    return out


def _speculating(case: Case, model: ModelSpec, dep: Deployment, context: float) -> Deployment | str:
    """``dep`` as it serves the row's speculative technique (``validation.speculation`` defaults)."""
    if not case.is_speculative:
        return dep
    spec, what = speculation_for(case.speculative, model)
    return speculative_deployment(dep, spec, context) if spec is not None else what


def _replica_point(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> tuple[str, ClosedLoopPoint] | str:
    context = ln.input_tokens + ln.output_tokens
    engine = row_engine(case, ln)
    dep = serving_layout(case, model, chip, context, engine)
    dep = dep if isinstance(dep, str) else _speculating(case, model, dep, context)
    if isinstance(dep, str):
        return dep
    n = case.concurrency or 1
    op = closed_loop_point(dep, n, ln.input_tokens, ln.output_tokens) if engine is None else \
        engine_point(dep, engine, n, ln.input_tokens, ln.output_tokens, ln.input_tokens / MEAN_OVER_NOMINAL)
    if not op.feasible:
        return f"the KV cache of {dep.describe()} holds no {context:.0f}-token request"
    source = "published layout" if case.tp is not None else "planner's layout"
    launched = f"; {engine.describe(dep.par.attn_dp)}" if engine is not None else ""
    return f"{dep.describe()} ({source}{launched})", op


def _pools_point(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> tuple[str, ClosedLoopPoint] | str:
    """A disaggregated row: the published layout on the decode pool, the best prefill layout."""
    p, d = case.prefill_chips, case.decode_chips
    if not p or not d:
        return "a disaggregated row needs both prefill_chips and decode_chips"
    if case.chips is not None and case.chips != p + d:
        return f"chips {case.chips} is not prefill_chips + decode_chips = {p + d}"
    par = Parallel(tp=case.tp, ep=case.ep or 1, attn_dp=bool(case.dp_attention)) if case.tp is not None else None
    pools = plan_pools(model, chip, p, d, dtype=case.weight_dtype, kv_dtype=default_kv_dtype(case.weight_dtype),
                       input_tokens=ln.input_tokens, output_tokens=ln.output_tokens, decode_par=par)
    if isinstance(pools, str):
        return pools
    decode = _speculating(case, model, pools.decode, ln.input_tokens + ln.output_tokens)
    if isinstance(decode, str):
        return decode
    pools = replace(pools, decode=decode)
    op = disaggregated_point(pools, case.concurrency or 1, ln.input_tokens, ln.output_tokens)
    if not op.feasible:
        return op.reason
    source = "published" if par is not None else "smallest fitting"
    return f"{pools.describe()} (decode: {source} layout; prefill: the layout that prefills fastest)", op


Scored = tuple[float, Prediction]  # (aggregate throughput of the layout, prediction of the row's metric)


def _best_layout(case: Case, model: ModelSpec, chip: Chip, ln: Lengths,
                 evaluate: Callable[[int, int], Scored], fixed: int | None = None) -> Prediction:
    """The planner's best split of the row's chips (or only ``fixed``, a stack's replica size);
    a row without a chip count takes the smallest system that holds the model."""
    context = ln.input_tokens + ln.output_tokens
    if case.chips is None:
        plan = plan_deployment(model, chip, chips=fixed, dtype=case.weight_dtype, context_tokens=context)
        if not plan.feasible:
            return Prediction(reason=plan.reason)
        pred = evaluate(plan.deployment.par.chips, 1)[1]  # type: ignore[union-attr]
        return Prediction(pred.value, pred.reason, pred.layout, True)

    def covered(n: int, replicas: int) -> Scored:  # a split whose metric is not predicted does not win
        score, pred = evaluate(n, replicas)
        return (score if pred.covered else NAN), pred

    best = best_split(model, chip, case.chips, case.weight_dtype, context, covered, fixed)
    if isinstance(best, str):
        return Prediction(reason=best)
    if isinstance(best, Plan):
        return Prediction(reason=best.reason or f"no replica size dividing {case.chips} chips holds {model.id}")
    return best[1]


def offline(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    bench, sub = benchmark_of(case), submission_for(case)
    adp = bench is not None and bench.moe_attention_dp and model.is_moe
    # a benchmark of a fixed number of equal-length requests runs them in waves (inference.finite_run)
    requests = bench.requests_for(ln.input_tokens, ln.output_tokens) if bench is not None else None

    def evaluate(n: int, replicas: int) -> Scored:
        if adp:  # the benchmark's documented MoE layout: attention DP, experts over the whole instance
            dep = fit_layout(model, chip, Parallel(tp=n, ep=n, attn_dp=True), case.weight_dtype,
                             default_kv_dtype(case.weight_dtype), ln.input_tokens + ln.output_tokens)
            if isinstance(dep, str):
                return NAN, Prediction(reason=dep)
            est = max_throughput_on(dep, ln.input_tokens, ln.output_tokens, replicas=replicas,
                                    decode_context_tokens=ln.decode_context_tokens)
        else:
            est = max_throughput(model, chip, ln.input_tokens, ln.output_tokens, chips=n, dtype=case.weight_dtype,
                                 replicas=replicas, decode_context_tokens=ln.decode_context_tokens)
        if est.feasible and _metered(case):
            sp = serving_power(chip, est.chips, est.decode, ln.output_tokens, default_assumptions(),  # type: ignore[arg-type]
                               case.chip_power_limit_w, est.prefill)
            return _powered(case, est.aggregate_output_tok_s, sp, _from_estimate(est, "aggregate_output_tok_s").layout)
        pred = _from_estimate(est, case.metric)
        if est.feasible and requests is not None and case.metric == "aggregate_output_tok_s":
            per = math.ceil(requests / replicas)  # the data-parallel replicas share the dataset
            batch, tput = finite_run(est.deployment, per, ln.input_tokens, ln.output_tokens)  # type: ignore[arg-type]
            if math.isfinite(tput):
                tput *= requests / per  # every replica finishes its share at once: the whole run's rate
                each = " per replica" if replicas > 1 else ""
                return tput, replace(pred, value=tput, layout=f"{pred.layout}; {requests} requests in waves of "
                                                               f"{batch:.0f}{each}")
        return (est.aggregate_output_tok_s if est.feasible else NAN), pred

    fixed = case.chips if bench is not None and bench.whole_instance else sub.instance_chips if sub is not None else None
    return _best_layout(case, model, chip, ln, evaluate, fixed=fixed)


def server(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    if case.ttft_limit_ms is None:
        return Prediction(reason=f"{case.scenario} row without ttft_limit_ms")
    # MLPerf GPT-J server has one latency limit and no TPOT limit: an empty tpot_limit_ms is none
    tpot_limit_ms = case.tpot_limit_ms if case.tpot_limit_ms is not None else math.inf

    sub = submission_for(case)
    stack = submission_stack(sub, stack_for(chip.id, case.scenario))
    context = ln.input_tokens + ln.output_tokens

    def evaluate(n: int, replicas: int) -> Scored:
        dep = _instance(model, chip, n, case.weight_dtype, context, sub)
        if isinstance(dep, str):
            return NAN, Prediction(reason=dep)
        op = operating_point(dep, ln.input_tokens, ln.output_tokens,
                             case.ttft_limit_ms * 1e-3, tpot_limit_ms * 1e-3,  # type: ignore[operator]
                             stack, replicas, ln.decode_context_tokens)
        if not op.feasible:
            return NAN, Prediction(reason=f"no arrival rate meets p99 TTFT {case.ttft_limit_ms:g} ms and "
                                          f"TPOT {tpot_limit_ms:g} ms on {dep.describe()}")
        tput = replicas * op.output_tok_s
        if _metered(case):
            step = continuous_batching(dep, np.array([op.batch]), ln.input_tokens, ln.output_tokens,
                                       token_budget=stack.token_budget if stack is not None else None,
                                       decode_context_tokens=ln.decode_context_tokens).step
            sp = serving_power(chip, n * replicas, step, 1.0, default_assumptions(), case.chip_power_limit_w)
            layout = f"{replicas}× {dep.describe()} at batch {op.batch:.0f}"
            return _powered(case, tput, sp, layout)
        value = {"aggregate_output_tok_s": tput, "ttft_mean_ms": op.ttft_mean_s * 1e3,
                 "tpot_mean_ms": op.tpot_mean_s * 1e3}.get(case.metric, NAN)
        rep = f"{replicas}× " if replicas > 1 else ""
        layout = f"{rep}{dep.describe()} at batch {op.batch:.0f}"
        if sub is not None and not sub.empty:
            layout += f"; {sub.describe()}"
            if stack is not None and stack.dispatched:
                layout += f"; {stack.describe()}"
        elif stack is not None:
            layout += f"; {stack.describe()}"
        return tput, Prediction(value, "" if math.isfinite(value) else f"metric {case.metric} not predicted for "
                                f"{case.scenario}", layout)

    return _best_layout(case, model, chip, ln, evaluate, stack.replica_chips if stack is not None else None)


def submission_stack(sub: Submission | None, harness: Stack | None = None) -> Stack | None:
    """The serving stack of a row: the chip's harness stack (``serving.toml`` ``[stacks]``) bounded by
    its MLPerf submission's settings (``validation.submissions``): instance size, batch cap, token
    budget and admission interval; under data-parallel attention each rank has its own batch cap and
    token budget. A submission that says its harness ran no batcher drops the harness's dispatch window."""
    if sub is None or sub.empty:
        return harness
    ranks = sub.per_instance
    own = Stack(f"{sub.results} {sub.benchmark} {sub.scenario}", replica_chips=sub.instance_chips,
                max_batch=None if sub.max_batch is None else sub.max_batch * ranks,
                token_budget=None if sub.token_budget is None else sub.token_budget * ranks,
                admission_steps=float(sub.admission_interval_steps or 1))
    if harness is None or sub.harness_batcher is False:
        return own
    return replace(harness, replica_chips=own.replica_chips or harness.replica_chips,
                   max_batch=own.max_batch if own.max_batch is not None else harness.max_batch,
                   token_budget=own.token_budget, admission_steps=own.admission_steps)


def _instance(model: ModelSpec, chip: Chip, n: int, dtype: str, context: float,
              sub: Submission | None) -> Deployment | str:
    """One ``n``-chip model instance: the planner's layout, or with a submission's settings its
    published split (tensor x pipeline, and for an MoE model its expert-parallel ranks and
    data-parallel attention; an MoE instance without a published expert split keeps the planner's)
    and its KV-cache memory fraction."""
    published = sub is not None and sub.tp is not None and (not model.is_moe or sub.ep is not None or sub.tp == 1)
    if published:  # the planner is not needed
        par = Parallel(tp=sub.tp, pp=sub.pp or 1, ep=sub.ep or 1, attn_dp=bool(sub.attention_dp))  # type: ignore[union-attr,arg-type]
    else:
        plan = plan_deployment(model, chip, chips=n, dtype=dtype, context_tokens=context)
        if not plan.feasible:
            return plan.reason
        if sub is None or sub.kv_memory_fraction is None:
            return plan.deployment  # type: ignore[return-value]
        par = plan.deployment.par  # type: ignore[union-attr]
    return fit_layout(model, chip, par, dtype, default_kv_dtype(dtype), context,
                      memory_fraction=sub.kv_memory_fraction, memory_fraction_of=sub.memory_fraction_of)


def _metered(case: Case) -> bool:
    """Rows whose answer goes through the power model: power metrics, or any metric of a capped run."""
    return case.metric in POWER_METRICS or case.chip_power_limit_w is not None


def _powered(case: Case, tput: float, sp: ServingPower, layout: str) -> Scored:
    """A metered row's prediction: the capped run is ``sp.slowdown`` slower and draws ``sp``'s power."""
    capped = tput / sp.slowdown
    value = {"aggregate_output_tok_s": capped, "system_power_w": sp.system_power_w,
             "energy_j_per_output_token": sp.system_power_w / capped}.get(case.metric, NAN)
    cap = f"; chips capped at {case.chip_power_limit_w:g} W ({sp.slowdown:.2f}x slower)" if case.chip_power_limit_w else ""
    reason = "" if math.isfinite(value) else f"metric {case.metric} not predicted for {case.scenario}"
    return capped, Prediction(value, reason, f"{layout}{cap}; {sp.chip_power_w:.0f} W per chip")


SCENARIOS: dict[str, Callable[[Case, ModelSpec, Chip, Lengths], Prediction]] = {
    "single_stream": single_stream,
    "offline": offline,
    "concurrency": concurrency,
    "server": server,
    "interactive": server,
}


def predict(case: Case, model: ModelSpec, chip: Chip, ln: Lengths) -> Prediction:
    """The prediction of ``case``'s metric (a reason instead when it cannot be made). A run whose
    MLPerf submission sets the accelerators' power limit away from the TDP runs on the chip at that
    limit (rows with ``chip_power_limit_w`` go through the power model instead)."""
    sub = submission_for(case)
    if sub is None or sub.power_limit_w is None or case.chip_power_limit_w is not None:
        return SCENARIOS[case.scenario](case, model, chip, ln)
    limited = power_limited(chip, sub.power_limit_w)
    pred = SCENARIOS[case.scenario](case, model, limited, ln)
    return replace(pred, layout=f"{pred.layout}; {limited.what_if[-1]}") if limited is not chip and pred.layout else pred
