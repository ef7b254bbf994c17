"""Fit the mesh fraction of each (wafer generation, Cerebras release line) on the training suite's
wafer rows (T0200-T0204: GPT-J 6B and LLaMA 7B on one and two CS-2, ALCF logs).

    .venv/bin/python scripts/fit_wafer_training.py            # print the fits and per-row errors
    .venv/bin/python scripts/fit_wafer_training.py --write    # also rewrite training/data/wafer.toml
"""

from __future__ import annotations

import argparse
import statistics

from siliconsim.calibration.wafer_training import fit_lines, write_lines
from siliconsim.validation.training_suite import load_training_cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite training/data/wafer.toml")
    args = ap.parse_args()
    fits, rows = fit_lines(load_training_cases())
    for f in fits:
        print(f"{f.key}: mesh fraction {f.fraction:.4f} from {', '.join(f.rows)}")
    for r in rows:
        print(f"  {r.case.id} {r.case.framework[:30]:30s} measured {r.case.value:9.0f} predicted {r.predicted:9.0f} "
              f"({r.error_pct:+.1f}%)")
    print(f"median |error| {statistics.median(abs(r.error_pct) for r in rows):.1f}% over {len(rows)} rows, "
          f"{len(fits)} fitted parameters")
    if args.write:
        write_lines(fits)


if __name__ == "__main__":
    main()
