"""Fit the wafer family's one calibrated parameter per chip generation: the per-relay latency beta.

beta (``[microarch] relay_latency_cycles``) is the cost of a software relay stage of a K-tree
all-reduce on the PE mesh (WaferLLM's PLMR model). It is the only free parameter of the wafer
family; every other mesh number is a datasheet, derived or assumed value. It is fitted per
generation, not per row, by minimising the mean squared log error of the plain-decoding
single-stream rows below (ids of the validation suite, siliconsim/validation/data/dev.csv):

- cs-3 (Cerebras' production inference stack, Aug-Sep 2024): M0001, M0003, M0020 (Llama-3.1-8B),
  M0002, M0004 (Llama-3.1-70B on 4 CS-3);
- cs-2 (WaferLLM research kernels, OSDI 2025): M0027 (Llama-3-8B).

Rows with speculative decoding, undisclosed decoding method or undisclosed system counts of
large models are not used. Usage::

    PYTHONPATH=src python3 scripts/fit_wafer.py            # print the fit
    PYTHONPATH=src python3 scripts/fit_wafer.py --write    # also update the chip TOML files
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import replace
from pathlib import Path

from siliconsim.hardware.catalog import DATA, load_chip
from siliconsim.hardware.spec import Chip
from siliconsim.models.catalog import load_model
from siliconsim.validation.scenarios import predict
from siliconsim.validation.suite import load_cases
from siliconsim.validation.workload import lengths

ROWS = {"cs-3": ("M0001", "M0003", "M0020", "M0002", "M0004"), "cs-2": ("M0027",)}


def with_beta(chip: Chip, beta: float) -> Chip:
    return replace(chip, microarch={**chip.microarch, "relay_latency_cycles": beta})


def log_errors(chip: Chip, cases: list) -> list[float]:
    out = []
    for c in cases:
        p = predict(c, load_model(c.model), chip, lengths(c))
        out.append(math.log(p.value / c.value) if p.covered else float("inf"))
    return out


def loss(chip: Chip, cases: list) -> float:
    errs = log_errors(chip, cases)
    return sum(e * e for e in errs) / len(errs)


def fit_beta(chip: Chip, cases: list, lo: float = 1.0, hi: float = 600.0) -> float:
    """Coarse grid, then golden-section search around the best point (loss is unimodal in beta)."""
    grid = [lo + i * (hi - lo) / 40 for i in range(41)]
    best = min(grid, key=lambda b: loss(with_beta(chip, b), cases))
    a, b = max(lo, best - (hi - lo) / 40), min(hi, best + (hi - lo) / 40)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(30):
        c, d = b - g * (b - a), a + g * (b - a)
        if loss(with_beta(chip, c), cases) < loss(with_beta(chip, d), cases):
            b = d
        else:
            a = c
    return round((a + b) / 2, 1)


def write(chip_id: str, beta: float, rows: tuple[str, ...], rms: float) -> None:
    path = DATA / "chips" / f"{chip_id}.toml"
    text = path.read_text()
    src = (f"Fitted by scripts/fit_wafer.py to validation rows {', '.join(rows)} (plain decoding, single stream): "
           f"the effective cost of one software relay stage of a K-tree all-reduce (WaferLLM PLMR beta), absorbing "
           f"task switches and synchronisation the mesh model does not resolve; rms log error {rms:.3f}. "
           f"Reference notes estimate 20-40 cycles from WaferLLM GEMV timings")
    line = f'relay_latency_cycles = {{ value = "{beta:g} cycles", basis = "calibrated", source = "{src}" }}'
    new, n = re.subn(r"^relay_latency_cycles = .*$", line, text, flags=re.M)
    if n != 1:
        raise SystemExit(f"{path}: no relay_latency_cycles line to replace")
    Path(path).write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the fitted beta into the chip TOML files")
    args = ap.parse_args()
    cases = {c.id: c for c in load_cases()}
    for chip_id, ids in ROWS.items():
        rows = [cases[i] for i in ids]
        chip = load_chip(chip_id)
        beta = fit_beta(chip, rows)
        errs = log_errors(with_beta(chip, beta), rows)
        rms = math.sqrt(sum(e * e for e in errs) / len(errs))
        print(f"{chip_id}: beta = {beta:g} cycles (rms log error {rms:.3f})")
        for c, e in zip(rows, errs):
            print(f"  {c.id} {c.model:16s} measured {c.value:7.0f} tok/s  predicted {c.value * math.exp(e):7.0f}  "
                  f"({math.exp(e) - 1:+.0%})")
        if args.write:
            write(chip_id, beta, ids, rms)


if __name__ == "__main__":
    main()
