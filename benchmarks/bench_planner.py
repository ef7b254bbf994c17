"""Speed of the planner (issue 14). Prints figures; never asserts (not part of the test run).

Bars: a closed-form search of 10^5 configurations (different hardware, layouts, precisions,
serving modes and batches) in <= 10 s on one core; one scalar estimate in <= 100 us after import;
with Ray on 2 local workers, a 10^6 sweep >= 1.6x faster than one worker.

    python benchmarks/bench_planner.py [--ray] [--ray-configs N] [--repeats N]

``--ray`` times the same sweep (about 10^6 configurations over several models, every hardware)
in this process, on Ray with 1 worker and on Ray with 2 workers, ``--repeats`` times each,
interleaved so that a change in the machine's load hits all three alike. Each Ray cluster is
started before the clock starts (its start time is printed apart) and kept for the whole sweep,
as ``RayExecutor`` does across runs. The 1-minute load average is printed with every run: on a
machine shared with other jobs, the 2-worker figure is only as good as the cores left free.
"""

from __future__ import annotations

import argparse
import os
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


def selection(configs: int) -> list[tuple[Problem, list]]:
    """(problem, tasks) pairs holding at least ``configs`` configurations (task x batch points)."""
    selected, expected = [], 0
    for p in problems():
        ts = tasks(p)
        selected.append((p, ts))
        expected += len(ts) * 20  # ~20 of 32 batch points per task survive the memory fit, on average
        if expected >= configs:
            return selected
    raise AssertionError("unreachable")


def bench_search(configs: int, executor) -> tuple[float, int]:
    """Seconds to evaluate at least ``configs`` configurations; task lists are built before the
    clock starts."""
    selected = selection(configs)
    t0 = time.perf_counter()
    n = sum(evaluated(sweep(p, ts, executor)) for p, ts in selected)
    return time.perf_counter() - t0, n


def load() -> float:
    return os.getloadavg()[0]


def tree_cpu_s() -> float:
    """CPU seconds used so far by this process and its live descendants (a local Ray cluster's
    daemons and workers), from /proc; 0 where there is no /proc. CPU over wall time is how many
    cores the run got: on a shared machine, the ceiling of any speed-up."""
    ticks, parent, used = os.sysconf("SC_CLK_TCK"), {}, {}
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parent[pid], used[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
    me, total = os.getpid(), 0.0
    for pid, cpu in used.items():
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        total += cpu if p == me else 0.0
    return total


def bench_ray(configs: int, repeats: int) -> None:
    """In-process, Ray 1 worker and Ray 2 workers on the same sweep, interleaved (module doc)."""
    times: dict[str, list[float]] = {"in-process": [], "Ray, 1 worker": [], "Ray, 2 workers": []}
    n = 0
    for r in range(repeats):
        for name, workers in (("in-process", 0), ("Ray, 1 worker", 1), ("Ray, 2 workers", 2)):
            before = load()
            if workers:
                with RayExecutor(workers) as ex:
                    t0 = time.perf_counter()
                    ex.start()
                    start = time.perf_counter() - t0
                    cpu = tree_cpu_s()
                    dt, n = bench_search(configs, ex)
                    cpu = tree_cpu_s() - cpu
                started = f", cluster start {start:.1f} s (not counted)"
            else:
                cpu = tree_cpu_s()
                dt, n = bench_search(configs, LocalExecutor(1))
                cpu = tree_cpu_s() - cpu
                started = ""
            times[name].append(dt)
            print(f"run {r + 1} {name:>14}: {n:,} configurations in {dt:6.1f} s using {cpu / dt:.2f} cores "
                  f"({cpu:.0f} CPU s){started}; load {before:.2f} -> {load():.2f}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:>14}: median {med[k]:.1f} s, min {min(v):.1f} s over {len(v)} runs")
    one, two = med["Ray, 1 worker"], med["Ray, 2 workers"]
    print(f"Ray, {n:,} configurations: 2 workers {one / two:.2f}x faster than 1 (medians; best runs "
          f"{min(times['Ray, 1 worker']) / min(times['Ray, 2 workers']):.2f}x) (bar >= 1.6x)")
    print(f"against in-process (medians): Ray 1 worker takes {one / med['in-process']:.2f}x the time, "
          f"Ray 2 workers {two / med['in-process']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ray", action="store_true", help="also time Ray with 1 and 2 local workers")
    ap.add_argument("--ray-configs", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each executor with --ray")
    ap.add_argument("--ray-only", action="store_true", help="with --ray: skip the scalar and 10^5 benchmarks")
    args = ap.parse_args()
    if not (args.ray and args.ray_only):
        for name, (med, best) in bench_scalar().items():
            print(f"scalar estimate {name:>28}: median {med * 1e6:6.0f} us, min {best * 1e6:6.0f} us (bar <= 100 us)")
        dt, n = bench_search(100_000, LocalExecutor(1))
        print(f"closed-form search, one core: {n:,} configurations in {dt:.2f} s = {n / dt:,.0f}/s "
              "(bar: 10^5 in <= 10 s)")
    if args.ray:
        print(f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        bench_ray(args.ray_configs, args.repeats)


if __name__ == "__main__":
    main()
