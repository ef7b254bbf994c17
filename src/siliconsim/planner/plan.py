"""``plan``: the cheapest (or smallest, or lowest-power) system meeting an SLO at a demand.

Steps: the strategy selects tasks; an executor evaluates them in closed form (checkpointed);
the points meeting both p99 SLOs are ranked by the objective; the first ``confirm_top`` are run
through the serving simulator, and the best is the first the simulator confirms (else the
closed-form best, marked unconfirmed). Pareto fronts per hardware, the next best configurations
and each hardware that cannot meet the SLO (with its reason) come with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siliconsim.accounting.pricing import sanity_warning, usd_per_chip_hour
from siliconsim.perf.step import length_biased_context
from siliconsim.planner.checkpoint import Checkpoint
from siliconsim.planner.confirm import Confirmation, confirm_sized
from siliconsim.planner.executors import Executor
from siliconsim.planner.objectives import OBJECTIVES, ranked
from siliconsim.planner.pareto import front
from siliconsim.planner.search import STRATEGIES, Progress, evaluated, sweep
from siliconsim.planner.space import Problem, precisions
from siliconsim.serving.approx import serving_constants
from siliconsim.workloads import RequestSet, generate, load_preset, make_requests, read_trace, rescale, take

SCHEMA_VERSION = 1  # the integer every other JSON output carries (report.render.SCHEMA_VERSION)
ALTERNATIVES = 5
SIM_REQUESTS = 600


@dataclass(frozen=True)
class Demand:
    """Mean lengths for the closed form, and the requests the simulator replays."""

    input_tokens: float
    output_tokens: float
    requests: RequestSet
    source: str

    @property
    def long_input_tokens(self) -> float:
        return float(np.quantile(self.requests.input_tokens, 0.99))

    @property
    def short_output_tokens(self) -> float:
        return float(np.quantile(self.requests.output_tokens, 0.10))

    @property
    def decode_context_tokens(self) -> float:
        """Mean context of a decode step's sequences over these requests (length-biased)."""
        i, o = (np.asarray(x, dtype=float) for x in (self.requests.input_tokens, self.requests.output_tokens))
        return length_biased_context(float((i * o).sum() / o.sum()), float(o.mean()), float(o.std() / o.mean()))


def demand(rate_per_s: float, *, workload: str | None = None, trace: str | None = None,
           input_tokens: int | None = None, output_tokens: int | None = None, seed: int = 0,
           requests: int = SIM_REQUESTS) -> Demand:
    """Requests at ``rate_per_s`` from a preset, a trace, or fixed lengths (Poisson arrivals)."""
    rng = np.random.default_rng(seed)
    if trace is not None:
        rs = take(rescale(read_trace(trace), rate_per_s), requests)
        source = f"trace {trace}"
    elif workload is not None:
        rs = generate(load_preset(workload), rng, rate_per_s=rate_per_s, count=requests)
        source = f"workload {workload}"
    else:
        n = requests
        t = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
        rs = make_requests(t, np.full(n, input_tokens), np.full(n, output_tokens), source="fixed lengths")
        return Demand(float(input_tokens), float(output_tokens), rs, f"fixed {input_tokens} in / {output_tokens} out")
    return Demand(float(rs.input_tokens.mean()), float(rs.output_tokens.mean()), rs, source)


@dataclass
class PlanResult:
    problem: Problem
    objective: str
    best: dict[str, Any] | None
    pareto: list[dict[str, Any]]
    alternatives: list[dict[str, Any]]
    infeasible: list[dict[str, str]]
    assumptions: list[str]
    warnings: list[str] = field(default_factory=list)
    evaluated: int = 0
    tasks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "problem": self.problem.describe(), "objective": self.objective,
                "best": self.best, "pareto": self.pareto, "alternatives": self.alternatives,
                "infeasible": self.infeasible, "assumptions": self.assumptions, "warnings": self.warnings,
                "search": {"tasks": self.tasks, "configurations": self.evaluated}}


def plan(problem: Problem, requests: RequestSet | None = None, *, objective: str = "cost",
         strategy: str = "exhaustive", executor: Executor | None = None, checkpoint: Checkpoint | None = None,
         progress: Progress | None = None, confirm_top: int = 6) -> PlanResult:
    """Search, rank, confirm (see module doc). ``requests=None`` skips the simulator."""
    selected = STRATEGIES[strategy]().select(problem)
    results = sweep(problem, selected, executor, checkpoint, progress)
    points = [p for r in results for p in r["points"]]
    order = ranked(_best_per_task(points, objective), objective)
    best, tried = _confirmed_best(problem, order[:confirm_top], requests, objective)
    alternatives = [p for p in tried + order[len(tried):] if best is None or p["key"] != best["key"]][:ALTERNATIVES]
    out = PlanResult(problem, objective, best, _fronts(points), alternatives, _infeasible(problem, results),
                     _assumptions(problem), evaluated=evaluated(results), tasks=len(selected))
    out.warnings = _sanity(problem, points)
    return out


def _best_per_task(points: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    """One point per configuration (task): its best batch under the objective."""
    key = OBJECTIVES[objective]
    best: dict[str, dict[str, Any]] = {}
    for p in points:
        if p["key"] not in best or key(p) < key(best[p["key"]]):
            best[p["key"]] = p
    return list(best.values())


def _confirmed_best(problem: Problem, finalists: list[dict[str, Any]], requests: RequestSet | None,
                    objective: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The best finalist the simulator confirms, its fleet resized to what the simulation needed
    (cost, power and chips scale with it), or the closed-form best, unconfirmed, when none passes;
    and every finalist as simulated (confirmed ones first, best first)."""
    if not finalists:
        return None, []
    passed, failed = [], []
    for p in finalists:
        c = confirm_sized(problem, p, requests) if requests is not None else None
        rec = dict(p, closed_form={k: p[k] for k in CLOSED_FORM_FIGURES},
                   simulated=c.as_dict() if c else {"simulated": False, "note": "simulation skipped"})
        (passed if c is not None and c.meets_slo else failed).append(_resized(rec, c, problem.ttft_p99_s, problem.tpot_p99_s)
                                                                  if c and c.meets_slo else rec)
    tried = ranked(passed, objective) + failed
    return tried[0], tried


CLOSED_FORM_FIGURES = ("replicas", "chips", "p99_ttft_s", "p99_tpot_s", "usd_per_mtok_input", "usd_per_mtok_output",
                       "usd_per_mtok_blended", "power_w")


def _resized(rec: dict[str, Any], c: Confirmation, ttft_limit: float, tpot_limit: float) -> dict[str, Any]:
    """``rec`` with the simulated fleet: replicas, chips, cost and power scale by its size; the
    margins are the simulated p99s' against the SLO."""
    replicas = c.pools[0] + c.pools[1]
    k = replicas / rec["replicas"]
    out = dict(rec, prefill_replicas=c.pools[0], decode_replicas=c.pools[1], replicas=replicas,
               chips=replicas * rec["chips_per_replica"], p99_ttft_s=c.p99_ttft_s, p99_tpot_s=c.p99_tpot_s,
               ttft_margin=1.0 - c.p99_ttft_s / ttft_limit, tpot_margin=1.0 - c.p99_tpot_s / tpot_limit)
    for f in ("usd_per_mtok_input", "usd_per_mtok_output", "usd_per_mtok_blended", "usd_per_hour", "power_w",
              "facility_power_w", "energy_j_per_output_token"):
        out[f] = rec[f] * k
    out["figures"] = ("p99_ttft_s, p99_tpot_s, replicas and chips: serving simulator; cost and power: closed form "
                      "per chip, scaled to the simulated fleet; closed_form: the closed form's own figures")
    return out


def _fronts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per hardware: output tok/s per chip vs tok/s per user, and $/Mtok vs tok/s per user."""
    out = []
    for hw in sorted({p["hardware"] for p in points}):
        mine = [p for p in points if p["hardware"] == hw]
        for p in front(mine, "tok_s_per_user", "output_tok_s_per_chip"):
            out.append(dict(p, front="throughput"))
        for p in front(mine, "tok_s_per_user", "usd_per_mtok_blended", maximise_y=False):
            out.append(dict(p, front="cost"))
    return out


def _infeasible(problem: Problem, results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each hardware with no point meeting the SLO, and the reason of its configuration nearest to
    success (smallest worst p99 over its limit; a layout that does not fit counts as farthest)."""
    out = []
    for hw in problem.hardware:
        mine = [r for r in results if r["key"].split("|")[0] == hw]
        if any(r["points"] for r in mine):
            continue
        if not mine:
            out.append({"hardware": hw, "reason": _too_small(problem, hw)})
            continue
        nearest = min(mine, key=lambda r: r["shortfall"] if r["shortfall"] is not None else math.inf)
        out.append({"hardware": hw, "reason": nearest["reason"]})
    return out


def _too_small(problem: Problem, hw: str) -> str:
    """Why a hardware has no task: its smallest replica is over ``max_chips`` (or none fits at all)."""
    from siliconsim.models.catalog import load_model
    from siliconsim.plans import plan_deployment

    model = load_model(problem.model)
    smallest = plan_deployment(model, problem.chip(hw), context_tokens=problem.context_tokens,
                               dtype=precisions(model, problem.chip(hw))[-1])
    if not smallest.feasible:
        return smallest.reason
    n = smallest.deployment.par.chips  # type: ignore[union-attr]
    return f"the smallest replica that holds {model.id} needs {n} chips > --max-chips {problem.max_chips}"


def _assumptions(problem: Problem) -> list[str]:
    a, k = problem.assumptions, serving_constants()
    lines = [f"demand: {problem.rate_per_s:g} requests/s, mean {problem.input_tokens:.0f} input / "
             f"{problem.output_tokens:.0f} output tokens",
             f"SLO: p99 TTFT <= {problem.ttft_p99_s * 1e3:g} ms, p99 TPOT <= {problem.tpot_p99_s * 1e3:g} ms; "
             f"closed-form p99 = mean x {k['p99_over_mean_ttft']:g} (TTFT), x {k['p99_over_mean_tpot']:g} (TPOT) "
             "(serving/data/serving.toml)",
             f"pricing: {problem.pricing.describe()}"]
    for hw in problem.hardware:
        chip = problem.chip(hw)
        lines.append("  " + usd_per_chip_hour(chip, problem.pricing, a, chip.tdp_w)[1])
    lines.append(f"power: chip idle {a.idle_power_fraction:.0%} of TDP rising to TDP with utilisation; host share "
                 "from the system catalog; power_w at the wall, facility_power_w = power_w x PUE "
                 f"{a.pue:g} (cooling, distribution), which the electricity cost uses"
                 + (f"; chips capped at {problem.chip_power_limit_w:g} W" if problem.chip_power_limit_w else ""))
    lines.append("fleet sized for the demand: replicas = ceil(demand / one replica's rate at its batch); "
                 "power and cost at that operating point")
    return lines


def _sanity(problem: Problem, points: list[dict[str, Any]]) -> list[str]:
    out = []
    for hw in problem.hardware:
        mine = [p["usd_per_mtok_output"] for p in points if p["hardware"] == hw]
        if mine:
            w = sanity_warning(_model_id(problem), hw, min(mine))
            if w:
                out.append(w)
    return out


def _model_id(problem: Problem) -> str:
    from siliconsim.models.catalog import load_model

    return load_model(problem.model).id
