"""Fit the training model's few free parameters on the training suite, with leave-one-group-out error.

Unknowns (log-multipliers on the priors): per chip family, the achieved GEMM fraction
(``matmul``) and, where the family has MoE rows, the grouped expert GEMM ratio (``moe``); per
framework, one software-generation factor on compute rates (``software``). The objective is
``sum_i w_i log(pred_i / meas_i)^2 + sum_k (theta_k / sigma_k)^2`` over the predicted rows (rows the
suite marks UNVERIFIED weigh half), solved by
Levenberg-Marquardt with a forward-difference Jacobian; each parameter only moves the rows of
its family or framework, so only those are re-predicted. Layouts are frozen at the ones the
search picks under the priors, so the fit is smooth. Leave-one-group-out: each (hardware,
model) group is held out, the parameters refitted on the rest (warm-started), and the group
predicted with them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from siliconsim.training.job import Layout
from siliconsim.training.params import clear_caches, efficiency_priors, framework
from siliconsim.validation.training_runner import TrainingRowResult, predict_training_case
from siliconsim.validation.training_suite import TrainingCase

PRIOR_SIGMA = {"matmul": 0.25, "moe": 0.5, "software": 0.4}  # natural-log units: 0.25 is a factor 1.28
UNVERIFIED_WEIGHT = 0.5  # rows the suite marks UNVERIFIED count half (suite README: "weigh them less")
ITERATIONS = 10
LOGO_ITERATIONS = 4
STEP = 0.02  # finite-difference step in log space


@dataclass(frozen=True)
class Param:
    scope: str  # "family" | "framework"
    owner: str  # family or framework id
    key: str  # matmul | moe | software

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.key}"


@dataclass
class TrainingFit:
    params: tuple[Param, ...]
    theta: np.ndarray
    rows: tuple[str, ...]
    fitted: list[TrainingRowResult]
    held_out: list[TrainingRowResult] | None = None

    def multipliers(self) -> dict[str, float]:
        return {p.name: math.exp(t) for p, t in zip(self.params, self.theta)}

    def family_values(self) -> dict[str, dict[str, float]]:
        """family -> key -> calibrated efficiency (prior x multiplier)."""
        priors = efficiency_priors()
        out: dict[str, dict[str, float]] = {}
        for p, t in zip(self.params, self.theta):
            if p.scope == "family":
                out.setdefault(p.owner, {})[p.key] = min(1.0, getattr(priors[p.owner], p.key) * math.exp(t))
        return out

    def software(self) -> dict[str, float]:
        return {p.owner: math.exp(t) for p, t in zip(self.params, self.theta) if p.scope == "framework"}


def _factors(params: Sequence[Param], theta: np.ndarray) -> tuple[dict, dict]:
    fam: dict[str, dict[str, float]] = {}
    soft: dict[str, float] = {}
    for p, t in zip(params, theta):
        if p.scope == "family":
            fam.setdefault(p.owner, {})[p.key] = math.exp(t)
        else:
            soft[p.owner] = math.exp(t)
    return fam, soft


def _predict(case: TrainingCase, params: Sequence[Param], theta: np.ndarray, layout: Layout | None) -> TrainingRowResult:
    fam, soft = _factors(params, theta)
    return predict_training_case(case, fam, layout=layout, software=soft, uncalibrated=True)


def _parameters(results: Sequence[TrainingRowResult]) -> tuple[Param, ...]:
    fams = sorted({r.family for r in results if r.covered})
    moe_fams = sorted({r.family for r in results if r.covered and r.estimate and r.estimate.job.model.is_moe})
    fws = sorted({framework(r.case.framework).id for r in results if r.covered})
    return (tuple(Param("family", f, "matmul") for f in fams) + tuple(Param("family", f, "moe") for f in moe_fams)
            + tuple(Param("framework", f, "software") for f in fws))


def _affects(p: Param, r: TrainingRowResult) -> bool:
    if p.scope == "framework":
        return framework(r.case.framework).id == p.owner
    return r.family == p.owner and (p.key != "moe" or bool(r.estimate and r.estimate.job.model.is_moe))


def _solve(base: Sequence[TrainingRowResult], params: tuple[Param, ...], theta: np.ndarray,
           layouts: dict[str, Layout], iterations: int) -> np.ndarray:
    """Levenberg-Marquardt on log errors plus the Gaussian prior on theta."""
    sigma = np.array([PRIOR_SIGMA[p.key] for p in params])
    affects = np.array([[_affects(p, r) for p in params] for r in base])
    weight = np.array([UNVERIFIED_WEIGHT if "UNVERIFIED" in r.case.notes else 1.0 for r in base])

    def residuals(th: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        idx = range(len(base)) if rows is None else np.flatnonzero(rows)
        out = np.zeros(len(base))
        for i in idx:
            r = _predict(base[i].case, params, th, layouts.get(base[i].case.id))
            out[i] = r.log_error if r.covered else 3.0
        return out * weight

    lam = 1e-2
    r0 = residuals(theta)
    cost = float(r0 @ r0 + ((theta / sigma) ** 2).sum())
    for _ in range(iterations):
        jac = np.zeros((len(base), len(params)))
        for j in range(len(params)):
            th = theta.copy()
            th[j] += STEP
            moved = residuals(th, affects[:, j])
            jac[:, j] = np.where(affects[:, j], (moved - r0) / STEP, 0.0)
        a = jac.T @ jac + np.diag(1.0 / sigma**2)
        g = jac.T @ r0 + theta / sigma**2
        while True:
            step = np.linalg.solve(a + lam * np.diag(np.diag(a)), -g)
            cand = theta + step
            rc = residuals(cand)
            c = float(rc @ rc + ((cand / sigma) ** 2).sum())
            if c < cost:
                theta, r0, cost, lam = cand, rc, c, max(lam / 3, 1e-6)
                break
            lam *= 4
            if lam > 1e6:
                return theta
        if np.abs(step).max() < 1e-3:
            break
    return theta


def fit_training(cases: Sequence[TrainingCase], *, logo: bool = True,
                 progress: Callable[[str, int, int], None] | None = None) -> TrainingFit:
    """Fit on every predicted row; optionally compute the leave-one-group-out predictions. The
    fit starts from the priors: committed calibrated values are not used."""
    clear_caches()
    base = [_apart(predict_training_case(c, uncalibrated=True)) for c in cases]
    used = [r for r in base if r.covered]
    layouts = {r.case.id: r.estimate.layout for r in used if r.estimate is not None}
    params = _parameters(used)
    theta = _solve(used, params, np.zeros(len(params)), layouts, ITERATIONS)
    fitted = [_predict(c, params, theta, layouts.get(c.id)) if c.id in layouts else r for c, r in zip(cases, base)]
    fit = TrainingFit(params, theta, tuple(r.case.id for r in used), fitted)
    if logo:
        fit.held_out = _leave_one_group_out(cases, base, used, params, theta, layouts, progress)
    return fit


def _apart(r: TrainingRowResult) -> TrainingRowResult:
    """Wafer rows have their own parameters (calibration/wafer_training.py): left out of this fit
    and of its in-sample and leave-one-group-out figures."""
    if r.family != "wafer":
        return r
    return replace(r, predicted=math.nan, reason="weight streaming: fitted by scripts/fit_wafer_training.py")


def _leave_one_group_out(cases, base, used, params, theta, layouts, progress) -> list[TrainingRowResult]:
    groups = sorted({r.case.group for r in used})
    held: dict[str, TrainingRowResult] = {}
    for i, key in enumerate(groups):
        train = [r for r in used if r.case.group != key]
        th = _solve(train, params, theta.copy(), layouts, LOGO_ITERATIONS)
        for r in used:
            if r.case.group == key:
                held[r.case.id] = _predict(r.case, params, th, layouts.get(r.case.id))
        if progress:
            progress("leave-one-group-out", i + 1, len(groups))
    return [held.get(c.id, r) for c, r in zip(cases, base)]


def median_ape(results: Sequence[TrainingRowResult]) -> float:
    ape = [abs(r.error_pct) for r in results if r.covered]
    return statistics.median(ape) if ape else math.nan


TIME_METRICS = ("step_time_s", "time_to_train_min")


def speed_log_errors(results: Sequence[TrainingRowResult]) -> list[float]:
    """log(predicted speed / measured speed) of every predicted row: time metrics enter negated,
    so a positive value always means the model is too fast."""
    return [(-1.0 if r.case.metric in TIME_METRICS else 1.0) * r.log_error for r in results if r.covered]


def by_vendor(results: Sequence[TrainingRowResult]) -> dict[str, dict[str, float]]:
    """Median |error| and row count per vendor over predicted rows."""
    out: dict[str, list[float]] = {}
    for r in results:
        if r.covered:
            out.setdefault(r.case.vendor, []).append(abs(r.error_pct))
    return {v: {"n": len(e), "median_ape_pct": statistics.median(e)} for v, e in sorted(out.items())}


def calibrated_toml(fit: TrainingFit, today: str) -> str:
    """The text of ``training/data/calibrated.toml``: fitted values with basis ``calibrated``, and
    the in-sample and leave-one-group-out figures in ``[meta]``."""
    q = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    mult = fit.multipliers()
    logo = median_ape(fit.held_out) if fit.held_out is not None else None
    lines = [f"# Written by `siliconsim calibrate --training` on {today}. Do not edit by hand; rerun it.", "",
             "[meta]", 'sources = ["siliconsim training suite (src/siliconsim/validation/data/training-dev.csv)"]',
             f"retrieved = {q(today)}", f"rows = {len(fit.rows)}", f"free_parameters = {len(fit.params)}",
             f"fitted_median_ape_pct = {median_ape(fit.fitted):.3f}"]
    if logo is not None:  # only a computed leave-one-group-out figure is ever written
        lines.append(f"logo_median_ape_pct = {logo:.3f}")
        lo, hi = np.quantile(speed_log_errors(fit.held_out), (0.1, 0.9))  # type: ignore[arg-type]
        lines.append(f"logo_speed_log_error_p10 = {lo:.4f}")
        lines.append(f"logo_speed_log_error_p90 = {hi:.4f}")
        lines.append("logo_by_vendor_median_ape_pct = { " + ", ".join(
            f"{q(v)} = {s['median_ape_pct']:.3f}" for v, s in by_vendor(fit.held_out).items()) + " }")  # type: ignore[arg-type]
    lines.append(f"notes = {q('Regularised least squares on log error (calibration/training.py); one GEMM multiplier per chip family, one grouped-GEMM multiplier per family with MoE rows, one software factor per framework')}")
    for fam, vals in fit.family_values().items():
        lines += ["", f"[families.{fam}]"]
        for k, v in vals.items():
            src = f"siliconsim calibrate --training {today}: multiplier x{mult[f'{fam}.{k}']:.3f} on the prior"
            lines.append(f"{k} = {{ value = {v:.4g}, basis = \"calibrated\", source = {q(src)} }}")
    for fid, v in fit.software().items():
        src = f"siliconsim calibrate --training {today}: software-generation factor on compute rates"
        lines += ["", f"[frameworks.{fid}]", f"software = {{ value = {v:.4g}, basis = \"calibrated\", source = {q(src)} }}"]
    return "\n".join(lines) + "\n"
