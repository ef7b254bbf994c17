"""Long, randomized fuzz run of the public loaders (issue 16): the suite's tests/fuzz run with
``SILICONSIM_FUZZ_SCALE`` times as many examples (default 40: about 100,000) and a fresh random
seed each time, instead of the few thousand derandomized examples of ``make test``.

Usage: ``.venv/bin/python benchmarks/fuzz_loaders.py [--scale 40]``. Prints the run time and
pytest's summary; a failure prints hypothesis' smallest failing input. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_EXAMPLES = 2550  # the examples tests/fuzz runs at scale 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=40.0, help="multiplier on the examples of `make test` (default 40)")
    args = p.parse_args()
    env = {**os.environ, "SILICONSIM_FUZZ_SCALE": str(args.scale), "SILICONSIM_FUZZ_RANDOM": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:cacheprovider", "--tb=short",
                           "--hypothesis-show-statistics"], cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    n = int(BASE_EXAMPLES * args.scale)
    print(f"fuzz_loaders: about {n:,} examples in {wall:.0f} s ({1e3 * wall / n:.1f} ms per example), "
          f"exit {proc.returncode}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
