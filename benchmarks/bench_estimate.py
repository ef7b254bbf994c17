"""Speed of the closed-form model. Prints figures; never asserts (not part of the test run).

Bars (issue 2): a single estimate <= 2 ms median; a sweep of 10^5 batch/context points <= 1 s
on one core.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate, sweep
from siliconsim.models.catalog import load_model


def bench_single(model_id: str, chip_id: str, repeats: int = 300) -> float:
    model, chip = load_model(model_id), load_chip(chip_id)
    estimate(model, chip, Scenario(1, 2048, 128))  # warm caches (catalog parse)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate(model, chip, Scenario(1, 2048, 128))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_sweep(n: int = 100_000) -> float:
    model, chip = load_model("llama-3.1-70b"), load_chip("h100-sxm")
    dep = estimate(model, chip, Scenario(1, 2048, 128), chips=8, dtype="fp8").deployment
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 512, n).astype(float)
    ctx = rng.integers(128, 32768, n).astype(float)
    t0 = time.perf_counter()
    out = sweep(dep, batch, ctx, 256.0)
    dt = time.perf_counter() - t0
    assert out["tpot_s"].shape == (n,)
    return dt


def main() -> None:
    for m, c in [("llama-3.1-8b", "h100-sxm"), ("llama-3.1-70b", "h100-sxm"), ("deepseek-r1", "b200"),
                 ("gpt-oss-120b", "h200")]:
        try:
            print(f"estimate {m:>14} on {c:<9}: median {bench_single(m, c) * 1e3:.3f} ms (bar <= 2 ms)")
        except Exception as exc:  # a catalog entry may be missing on an old checkout
            print(f"estimate {m} on {c}: skipped ({exc})")
    dt = bench_sweep()
    print(f"sweep of 100,000 batch x context points: {dt:.3f} s = {1e5 / dt:,.0f} points/s (bar <= 1 s)")


if __name__ == "__main__":
    main()
