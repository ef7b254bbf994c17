"""Fit each software generation's multipliers (``validation/data/generations.toml``) on its rows.

A generation's rows (suite rows from a benchmark that ran an older engine) are left out of the
chip-family fit (``calibration.fit.fit_rows``). With the chips' fitted efficiencies fixed, each
generation then gets log-multipliers ``phi_k`` on ``compute``, ``kernel_overhead`` and ``kv_memory``
minimising ``sum_i log(pred_i / meas_i)^2 + sum_k ((phi_k - log prior_k) / sigma_k)^2`` over its rows
(``calibration.fit.levenberg_marquardt``, as for the chip groups).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from siliconsim.calibration.fit import levenberg_marquardt, log_residuals
from siliconsim.calibration.params import FitConfig
from siliconsim.validation.generations import KEYS, Generation, generation_of
from siliconsim.validation.runner import Overrides, RowResult
from siliconsim.validation.suite import Case


@dataclass(frozen=True)
class GenerationFit:
    generation: Generation
    multipliers: dict[str, float]
    rows: tuple[str, ...]
    rms_log_error: float


def generation_rows(results: Sequence[RowResult]) -> list[Case]:
    """Rows a generation's fit may use: predicted, within the datasheet bound, plain decoding."""
    return [r.case for r in results if r.covered and not r.exceeds_bound and not r.case.is_speculative
            and generation_of(r.case) is not None]


def _keys(gen: Generation) -> list[str]:
    return [k for k in KEYS if k in gen.prior_sigma]


def _residuals(cases: Sequence[Case], gen: Generation, phi: np.ndarray, overrides: Overrides,
               cfg: FitConfig) -> np.ndarray:
    return log_residuals(cases, overrides, cfg, {gen.id: {k: math.exp(p) for k, p in zip(_keys(gen), phi.tolist())}})


def fit_generation(gen: Generation, cases: Sequence[Case], overrides: Overrides, cfg: FitConfig,
                   start: Mapping[str, float] | None = None) -> GenerationFit:
    """The generation's multipliers on ``cases`` (its rows) with the chips at ``overrides``."""
    keys = _keys(gen)
    phi = np.array([math.log((start or {}).get(k, gen.prior_of(k))) for k in keys])
    mean = np.array([math.log(gen.prior_of(k)) for k in keys])
    if not cases or not keys:
        return GenerationFit(gen, {k: math.exp(p) for k, p in zip(keys, phi.tolist())}, (), float("nan"))
    inv_var = np.array([1.0 / gen.prior_sigma[k] ** 2 for k in keys])
    phi, r = levenberg_marquardt(lambda p: _residuals(cases, gen, p, overrides, cfg), phi, inv_var, cfg, mean=mean)
    return GenerationFit(gen, {k: math.exp(p) for k, p in zip(keys, phi.tolist())}, tuple(c.id for c in cases),
                         float(np.sqrt(np.mean(r ** 2))))


def fit_generations(cases: Sequence[Case], overrides: Overrides, cfg: FitConfig,
                    start: Mapping[str, GenerationFit] | None = None) -> dict[str, GenerationFit]:
    """One fit per generation that has rows among ``cases``."""
    by_gen: dict[str, tuple[Generation, list[Case]]] = {}
    for c in cases:
        gen = generation_of(c)
        if gen is not None:
            by_gen.setdefault(gen.id, (gen, []))[1].append(c)
    return {gid: fit_generation(gen, rows, overrides, cfg,
                                start[gid].multipliers if start and gid in start else None)
            for gid, (gen, rows) in by_gen.items()}


def multipliers(fits: Mapping[str, GenerationFit]) -> dict[str, dict[str, float]]:
    return {gid: dict(f.multipliers) for gid, f in fits.items()}
