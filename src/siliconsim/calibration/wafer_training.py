"""Fit the wafer family's training parameter: one mesh fraction per (wafer generation, release line).

Each line's fraction of the PE mesh's FMAC rate (``training/data/wafer.toml``,
``[software_lines]``) is the one free parameter of weight-streaming training. It is fitted on
the line's rows of the training suite as the geometric mean of measured / predicted (least
squares on log error), repeated until it settles, since exposed streaming makes a prediction
not quite proportional to the fraction. Lines without rows keep their stated (assumed) values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from siliconsim.hardware.catalog import load_chip
from siliconsim.training.params import DATA
from siliconsim.training.wafer import software_line, wafer_data
from siliconsim.validation.training_runner import TrainingRowResult, predict_training_case
from siliconsim.validation.training_suite import TrainingCase

ROUNDS = 4


@dataclass(frozen=True)
class LineFit:
    key: str  # "chip.line"
    fraction: float
    rows: tuple[str, ...]


def _key(case: TrainingCase, r: TrainingRowResult) -> str:
    assert r.estimate is not None
    return f"{case.hardware}.{software_line(r.estimate.job.chip, case.framework).line}"


def fit_lines(cases: Sequence[TrainingCase]) -> tuple[list[LineFit], list[TrainingRowResult]]:
    """(one fit per line with rows, the rows predicted with the fitted fractions)."""
    wafer = [(c, predict_training_case(c)) for c in cases if load_chip(c.hardware).family == "wafer"]
    wafer = [(c, r) for c, r in wafer if r.family == "wafer" and r.covered]
    keys = sorted({_key(c, r) for c, r in wafer})
    frac = {k: _fraction_of(k) for k in keys}
    for _ in range(ROUNDS):
        preds = [(c, predict_training_case(c, software=frac)) for c, _ in wafer]
        for k in keys:
            logs = [math.log(c.value / r.predicted) for c, r in preds if _key(c, r) == k]
            frac[k] *= math.exp(sum(logs) / len(logs))
    results = [predict_training_case(c, software=frac) for c, _ in wafer]
    fits = [LineFit(k, frac[k], tuple(c.id for c, r in wafer if _key(c, r) == k)) for k in keys]
    return fits, results


def _fraction_of(key: str) -> float:
    chip, line = key.split(".", 1)
    return next(s.fraction for s in wafer_data().lines_of(chip) if s.line == line)


def write_lines(fits: Sequence[LineFit], path: Path = DATA / "wafer.toml") -> None:
    """Rewrite the fitted ``value`` of each line in ``wafer.toml`` (4 significant figures)."""
    text = path.read_text()
    for f in fits:
        chip, line = f.key.split(".", 1)
        head = re.escape(f"[software_lines.{chip}.{line}]")
        pat = re.compile(rf"({head}\n(?:.*\n)*?value = \{{ value = )[0-9.eE+-]+")
        text, n = pat.subn(lambda m: m.group(1) + f"{f.fraction:.4g}", text, count=1)
        if n != 1:
            raise ValueError(f"{path.name}: no [software_lines.{chip}.{line}] value to rewrite")
    path.write_text(text)
