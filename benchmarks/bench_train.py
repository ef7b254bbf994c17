"""Speed of the training model. Prints figures; never asserts (not part of the test run).

Bars (issue 11): one `train` estimate on a pinned layout <= 5 ms; a full layout search for 1,024
GPUs <= 1 s; the training suite's validation for reference.
"""

from __future__ import annotations

import statistics
import time

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.training import Pins, TrainingJob, plan_training
from siliconsim.validation.training_runner import run_training_suite
from siliconsim.validation.training_suite import load_training_cases


def bench_single(model_id: str, chip_id: str, chips: int, pins: Pins, repeats: int = 200) -> float:
    job = TrainingJob(model=load_model(model_id), chip=load_chip(chip_id), chips=chips, seq_len=8192, global_batch=512)
    plan_training(job, pins)  # warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan_training(job, pins)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_search(model_id: str, chip_id: str, chips: int) -> tuple[float, int]:
    job = TrainingJob(model=load_model(model_id), chip=load_chip(chip_id), chips=chips, seq_len=8192, global_batch=1024)
    plan_training(job, Pins(tp=8, pp=1, dp=chips // 8))  # warm caches, not the search
    t0 = time.perf_counter()
    res = plan_training(job)
    return time.perf_counter() - t0, res.tried


def main() -> None:
    pinned = Pins(tp=8, pp=4, dp=32, cp=1, ep=1, vp=1, microbatch=1, zero=1, recompute="none")
    print(f"train estimate llama-3.1-70b, 1024x h100-sxm, pinned: median {bench_single('llama-3.1-70b', 'h100-sxm', 1024, pinned) * 1e3:.2f} ms (bar <= 5 ms)")
    for m, c in [("llama-3.1-70b", "h100-sxm"), ("llama-3.1-405b", "b200"), ("deepseek-v3", "gb200-nvl72")]:
        dt, n = bench_search(m, c, 1024)
        print(f"layout search {m:>15} on 1024x {c:<12}: {dt:.2f} s for {n} layouts (bar <= 1 s)")
    cases = load_training_cases()
    t0 = time.perf_counter()
    run_training_suite(cases)
    print(f"training suite ({len(cases)} rows) validated in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
