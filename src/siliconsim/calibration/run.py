"""One calibration run: fit on the suite, leave-one-group-out error, before/after summaries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siliconsim.calibration.fit import GroupFit, all_overrides, fit_all, fit_rows
from siliconsim.calibration.generations import GenerationFit, fit_generations, generation_rows, multipliers
from siliconsim.calibration.logo import leave_one_group_out
from siliconsim.calibration.params import FitConfig, fit_config
from siliconsim.validation.runner import RowResult, run_suite
from siliconsim.validation.suite import Case
from siliconsim.validation.summary import summarize

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Calibration:
    config: FitConfig
    fits: dict[str, GroupFit]
    prior: list[RowResult]  # suite at the chip files' priors
    fitted: list[RowResult]  # suite at the fitted values (in-sample)
    held_out: list[RowResult] | None  # leave-one-group-out (None when skipped)
    generations: dict[str, GenerationFit] | None = None  # software generations' multipliers

    def summaries(self, sweeps: bool = False) -> dict[str, Any]:
        """Summaries of the inference rows (``sweeps``: of the serving-sweep rows instead, which
        are scored apart from the dev headline) at the priors, fitted, and held out."""
        out = {"prior": summarize(split(self.prior, sweeps)), "fitted": summarize(split(self.fitted, sweeps))}
        if self.held_out is not None:
            out["leave_one_group_out"] = summarize(split(self.held_out, sweeps))
        return out


def split(results: Sequence[RowResult], sweeps: bool) -> list[RowResult]:
    """The serving-sweep rows (closed-loop concurrency runs) or all the others."""
    return [r for r in results if r.case.closed_loop == sweeps]


def calibrate(cases: Sequence[Case], *, logo: bool = True, progress: Progress | None = None) -> Calibration:
    cfg = fit_config()
    priors = {c: v for g in cfg.groups for c, v in _prior_overrides(g.chips).items()}
    prior = run_suite(cases, priors, software={})  # software generations at their priors
    eligible = fit_rows(prior)
    fits = fit_all(eligible, cfg)
    gens = fit_generations(generation_rows(prior), all_overrides(fits), cfg)
    fitted = run_suite(cases, all_overrides(fits), software=multipliers(gens))
    held = None
    if logo:
        step = (lambda i, n: progress("leave-one-group-out", i, n)) if progress else None
        held = leave_one_group_out(fitted, fit_rows(fitted), fits, cfg, step, generation_cases=generation_rows(fitted),
                                   generations=gens)
    return Calibration(cfg, fits, prior, fitted, held, gens)


def _prior_overrides(chips: Sequence[str]) -> dict[str, dict[str, float]]:
    from siliconsim.calibration.params import prior_efficiency

    return {c: prior_efficiency(c) for c in chips}
