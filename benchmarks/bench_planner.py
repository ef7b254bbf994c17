"""Speed of the planner (issue 14). Prints figures; never asserts (not part of the test run).

Bars: a closed-form search of 10^5 configurations (different hardware, layouts, precisions,
serving modes and batches) in <= 10 s on one core; one scalar estimate in <= 100 us after import;
with Ray on 2 local workers, a 10^6 sweep >= 1.6x faster than one worker.

    python benchmarks/bench_planner.py [--ray] [--ray-configs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

from siliconsim.hardware.catalog import chip_ids, load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.planner.executors import LocalExecutor, RayExecutor
from siliconsim.planner.search import evaluated, sweep
from siliconsim.planner.space import Problem, tasks

MODELS = ("llama-3.1-70b", "llama-3.1-8b", "gpt-oss-120b", "qwen3-32b", "mixtral-8x7b", "llama-3.1-405b",
          "deepseek-r1", "qwen3-235b-a22b")


def problem(model: str, rate: float = 20.0) -> Problem:
    return Problem(model, tuple(chip_ids()), 2048, 128, rate, 2.0, 0.1, max_chips=4096)


def bench_scalar(repeats: int = 2000) -> dict[str, tuple[float, float]]:
    """(median, min) seconds of one estimate per model/chip; the min is the figure least
    disturbed by other processes on a shared machine (timeit's advice)."""
    out = {}
    for mid, cid in (("llama-3.1-8b", "h100-sxm"), ("llama-3.1-70b", "h100-sxm"), ("gpt-oss-120b", "h200")):
        m, c = load_model(mid), load_chip(cid)
        estimate(m, c, Scenario(1, 2048, 128))
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            estimate(m, c, Scenario(1, 2048, 128))
            ts.append(time.perf_counter() - t0)
        out[f"{mid} on {cid}"] = (statistics.median(ts), min(ts))
    return out


def problems() -> Iterator[Problem]:
    """(model, rate) problems over every hardware, models first, then doubled rates."""
    rate = 5.0
    while True:
        for m in MODELS:
            yield problem(m, rate)
        rate *= 2


def bench_search(configs: int, executor) -> tuple[float, int]:
    """Seconds to evaluate at least ``configs`` configurations (task x batch points evaluated);
    task lists are built before the clock starts."""
    selected, expected = [], 0
    for p in problems():
        ts = tasks(p)
        selected.append((p, ts))
        expected += len(ts) * 20  # ~20 of 32 batch points per task survive the memory fit, on average
        if expected >= configs:
            break
    t0 = time.perf_counter()
    n = sum(evaluated(sweep(p, ts, executor)) for p, ts in selected)
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ray", action="store_true", help="also time Ray with 1 and 2 local workers")
    ap.add_argument("--ray-configs", type=int, default=1_000_000)
    args = ap.parse_args()
    for name, (med, best) in bench_scalar().items():
        print(f"scalar estimate {name:>28}: median {med * 1e6:6.0f} us, min {best * 1e6:6.0f} us (bar <= 100 us)")
    dt, n = bench_search(100_000, LocalExecutor(1))
    print(f"closed-form search, one core: {n:,} configurations in {dt:.2f} s = {n / dt:,.0f}/s (bar: 10^5 in <= 10 s)")
    if args.ray:
        one, n1 = bench_search(args.ray_configs, RayExecutor(1))
        two, n2 = bench_search(args.ray_configs, RayExecutor(2))
        print(f"Ray, {n1:,} configurations: 1 worker {one:.1f} s, 2 workers {two:.1f} s: {one / two:.2f}x (bar >= 1.6x)")


if __name__ == "__main__":
    main()
