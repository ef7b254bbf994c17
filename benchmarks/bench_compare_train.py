"""Wall time of `siliconsim compare --train` for Llama 3.1 70B over 15T tokens (issue 12 bar:
<= 10 s for every default system). Prints figures; never gates.

    .venv/bin/python benchmarks/bench_compare_train.py
"""

from __future__ import annotations

import time

from siliconsim.models.catalog import load_model
from siliconsim.planner.compare_train import TRAIN_SYSTEMS, Target, compare_training


def main() -> None:
    model = load_model("llama-3.1-70b")
    for label, target in (("deadline 90 days", Target(deadline_s=90 * 86400.0)), ("1,024 chips", Target(chips=1024))):
        t0 = time.perf_counter()
        rows = compare_training(model, TRAIN_SYSTEMS, tokens=15e12, seq_len=4096, global_batch=1024, target=target)
        wall = time.perf_counter() - t0
        sizes = sum(r.sizes_tried for r in rows)
        print(f"{label}: {wall:.2f} s for {len(rows)} systems, {sizes} cluster sizes timed "
              f"({sum(r.meets for r in rows)} meet the target)")


if __name__ == "__main__":
    main()
