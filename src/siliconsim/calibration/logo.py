"""Leave-one-group-out error: the honest accuracy figure of a calibrated model.

Each (hardware, model) group is held out in turn; its chip group's parameters are refitted on
the remaining rows (warm-started from the full fit) and the held-out rows are predicted with
them. Rows on chips outside every calibration group (wafer-scale, dataflow) are not fitted,
so their held-out prediction is their ordinary one; so is that of a group none of whose rows
the fit used (all speculative, say, or a suite the calibration does not fit on).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

import numpy as np

from siliconsim.calibration.fit import GroupFit, all_overrides, fit_group, group_cases
from siliconsim.calibration.generations import GenerationFit, fit_generations, multipliers
from siliconsim.calibration.params import KEYS, FitConfig, overrides_for
from siliconsim.validation.runner import RowResult, run_case
from siliconsim.validation.suite import Case

LOGO_ITERATIONS = 3  # refits start at the full fit's optimum; a few steps suffice


def leave_one_group_out(results: Sequence[RowResult], fit_cases: Sequence[Case], fits: dict[str, GroupFit],
                        cfg: FitConfig, progress: Callable[[int, int], None] | None = None,
                        key: Callable[[Case], Hashable] = lambda c: c.group,
                        generation_cases: Sequence[Case] = (),
                        generations: dict[str, GenerationFit] | None = None) -> list[RowResult]:
    """Held-out results for every row of ``results`` (same order). Groups are ``key(case)``:
    (hardware, model) by default, (hardware, engine) for the serving sweeps; a key must not mix
    chips. A group none of whose rows is in ``fit_cases`` or ``generation_cases`` keeps its results
    (the fit never saw it). Software generations (``calibration.generations``) are refitted without
    the held-out group's rows of theirs, on the chips' refitted efficiencies."""
    short = replace(cfg, max_iterations=LOGO_ITERATIONS)
    full = all_overrides(fits)
    held: dict[str, RowResult] = {}
    keys = sorted({key(r.case) for r in results})
    for i, held_key in enumerate(keys):
        rows = [r for r in results if key(r.case) == held_key]
        group = cfg.group_of(rows[0].case.hardware)
        mine = group_cases(group, fit_cases) if group is not None else []
        train = [c for c in mine if key(c) != held_key]
        gen_train = [c for c in generation_cases if key(c) != held_key]
        if len(train) == len(mine) and len(gen_train) == len(generation_cases):
            held.update((r.case.id, r) for r in rows)
        else:
            ov = dict(full)
            if len(train) != len(mine):
                start = np.array([fits[group.name].theta[k] for k in KEYS])
                ov.update(overrides_for(group, fit_group(group, train, short, start).theta))
            soft = None if generations is None else multipliers(generations)
            if len(gen_train) != len(generation_cases):  # only the group's own generation rows use the refit
                soft = multipliers(fit_generations(gen_train, ov, short, generations))
            held.update((r.case.id, run_case(r.case, ov, software=soft)) for r in rows)
        if progress:
            progress(i + 1, len(keys))
    return [held[r.case.id] for r in results]
