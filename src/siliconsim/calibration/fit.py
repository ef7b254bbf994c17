"""Fit the hbm efficiencies on the validation suites: regularised least squares on log error.

For each chip group (``data/fit.toml``) the unknowns are log-multipliers ``theta_k`` on the
member chips' priors for k in compute, memory, kernel_overhead, step_overhead, moe, moe_memory.
The objective is ``sum_i log(pred_i / meas_i)^2 + sum_k (theta_k / sigma_k)^2`` over the group's
rows (dev suite and serving sweeps) that are plain decoding (``speculative == none``), predicted,
and within their datasheet bound.
Groups share no rows, so each is an independent 6-parameter Levenberg-Marquardt fit with a
forward-difference Jacobian (numpy only). Ratios stay physical: compute and memory
efficiencies are capped at 0.98, and the expert kernels (``moe``, ``moe_memory``) at the dense
kernels' 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from siliconsim.calibration.params import KEYS, FitConfig, Group, overrides_for, prior_efficiency
from siliconsim.validation.generations import Multipliers, generation_of
from siliconsim.validation.runner import Overrides, RowResult, run_case
from siliconsim.validation.suite import Case

RATIO_CAP = 0.98


@dataclass(frozen=True)
class GroupFit:
    group: Group
    theta: dict[str, float]
    rows: tuple[str, ...]  # ids of the rows fitted
    rms_log_error: float

    def values(self) -> dict[str, dict[str, float]]:
        return overrides_for(self.group, self.theta)


# Metrics of a serving-sweep point that enter the fit: throughput, TPOT and TTFT (tokens/s per
# user is 1 / TPOT, a duplicate). TTFT is what moves ``api_overhead``, the first-token latency of
# an HTTP-served run outside the engine's steps.
CLOSED_LOOP_FIT_METRICS = ("aggregate_output_tok_s", "tpot_median_ms", "ttft_median_ms")


def fit_rows(results: Sequence[RowResult]) -> list[Case]:
    """Rows eligible for fitting: plain decoding, predicted, within the datasheet bound (and, of a
    serving sweep, only ``CLOSED_LOOP_FIT_METRICS``), on current engines (a row that ran an older
    software generation is fitted apart, by ``calibration.generations``)."""
    return [r.case for r in results if r.covered and not r.exceeds_bound and not r.case.is_speculative
            and (not r.case.closed_loop or r.case.metric in CLOSED_LOOP_FIT_METRICS)
            and generation_of(r.case) is None]


def _residuals(cases: Sequence[Case], group: Group, theta: np.ndarray, cfg: FitConfig) -> np.ndarray:
    return log_residuals(cases, overrides_for(group, dict(zip(KEYS, theta.tolist()))), cfg)


def log_residuals(cases: Sequence[Case], overrides: Overrides, cfg: FitConfig,
                  software: Multipliers | None = None) -> np.ndarray:
    """Each row's log error at ``overrides`` (and software-generation ``software``), or
    ``cfg.unpredicted_residual`` for a row the trial parameters leave unpredicted."""
    cache: dict = {}
    out = []
    for c in cases:
        r = run_case(c, overrides, cache, software)
        out.append(r.log_error if r.covered else cfg.unpredicted_residual)
    return np.asarray(out)


def _cap(group: Group, theta: np.ndarray) -> np.ndarray:
    """Keep every member's compute and memory efficiency at or below RATIO_CAP, and the expert
    kernels' share of them at or below 1."""
    theta = theta.copy()
    for i, k in enumerate(KEYS):
        cap = {"compute": RATIO_CAP, "memory": RATIO_CAP, "moe": 1.0, "moe_memory": 1.0, "kv_memory": 1.5,
               "network": 1.25, "overlap": 1.0}.get(k)
        if cap is not None:
            top = max(prior_efficiency(c).get(k, 0.0) for c in group.chips)
            if top > 0:
                theta[i] = min(theta[i], math.log(cap / top))
    return theta


def fit_group(group: Group, cases: Sequence[Case], cfg: FitConfig, start: np.ndarray | None = None) -> GroupFit:
    """The group's fit in two stages (priors only when it has no rows): every key but
    ``api_overhead`` on the rows the step model explains (all but the sweeps' TTFT), then
    ``api_overhead`` alone on the sweeps' TTFT, which carries the API server's latency that kernel
    efficiencies must not absorb."""
    theta = np.zeros(len(KEYS)) if start is None else start.copy()
    steps = [([k for k in KEYS if k != API_KEY], [c for c in cases if not _api_row(c)]),
             ([API_KEY], [c for c in cases if _api_row(c)])]
    fit = GroupFit(group, dict(zip(KEYS, theta.tolist())), (), float("nan"))
    for free, rows in steps:
        if rows:
            fit = _fit_keys(group, rows, cfg, theta, free)
            theta = np.array([fit.theta[k] for k in KEYS])
    r = _residuals(cases, group, theta, cfg) if cases else np.zeros(0)
    return GroupFit(group, dict(zip(KEYS, theta.tolist())), tuple(c.id for c in cases),
                    float(np.sqrt(np.mean(r ** 2))) if cases else float("nan"))


API_KEY = "api_overhead"


def _api_row(case: Case) -> bool:
    """A row whose residual identifies the API's first-token latency (a sweep's TTFT)."""
    return case.closed_loop and case.metric == "ttft_median_ms"


def _fit_keys(group: Group, cases: Sequence[Case], cfg: FitConfig, start: np.ndarray,
              free: Sequence[str]) -> GroupFit:
    """Levenberg-Marquardt on ``cases`` over the ``free`` keys; the others stay at ``start``."""
    inv_var = np.array([1.0 / cfg.sigma[k] ** 2 for k in KEYS])
    theta, r = levenberg_marquardt(lambda t: _residuals(cases, group, t, cfg), start, inv_var, cfg,
                                   free=np.array([k in free for k in KEYS]), project=lambda t: _cap(group, t))
    return GroupFit(group, dict(zip(KEYS, theta.tolist())), tuple(c.id for c in cases),
                    float(np.sqrt(np.mean(r ** 2))))


def levenberg_marquardt(residuals: Callable[[np.ndarray], np.ndarray], start: np.ndarray, inv_var: np.ndarray,
                        cfg: FitConfig, *, mean: np.ndarray | None = None, free: np.ndarray | None = None,
                        project: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``|residuals(theta)|^2 + sum(inv_var * (theta - mean)^2)`` over the ``free`` entries
    of ``theta`` (all by default) from ``start``, with a forward-difference Jacobian of step
    ``cfg.log_step`` and at most ``cfg.max_iterations`` steps; ``project`` keeps a trial step in
    bounds. Returns the optimum and its residuals."""
    theta = start.copy()
    mean = np.zeros_like(theta) if mean is None else mean
    free = np.ones(len(theta), dtype=bool) if free is None else free

    def cost(t: np.ndarray, res: np.ndarray) -> float:
        return float(res @ res + (t - mean) @ (inv_var * (t - mean)))

    r = residuals(theta)
    best = cost(theta, r)
    mu = 1e-2
    for _ in range(cfg.max_iterations):
        jac = np.zeros((len(r), len(theta)))
        for j in np.flatnonzero(free):
            step = np.zeros(len(theta))
            step[j] = cfg.log_step
            jac[:, j] = (residuals(theta + step) - r) / cfg.log_step
        grad = np.where(free, jac.T @ r + inv_var * (theta - mean), 0.0)
        hess = jac.T @ jac + np.diag(inv_var)
        improved = False
        for _ in range(4):
            trial = theta - np.linalg.solve(hess + mu * np.diag(np.diag(hess)), grad)
            trial = project(trial) if project is not None else trial
            rt = residuals(trial)
            ct = cost(trial, rt)
            if ct < best:
                theta, r, improved = trial, rt, best - ct > 1e-4 * best
                best, mu = ct, mu / 3
                break
            mu *= 10
        if not improved:
            break
    return theta, r


def group_cases(group: Group, cases: Sequence[Case]) -> list[Case]:
    return [c for c in cases if c.hardware in group.chips]


def fit_all(cases: Sequence[Case], cfg: FitConfig) -> dict[str, GroupFit]:
    """One fit per group on its eligible rows."""
    return {g.name: fit_group(g, group_cases(g, cases), cfg) for g in cfg.groups}


def all_overrides(fits: dict[str, GroupFit]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for f in fits.values():
        out.update(f.values())
    return out
