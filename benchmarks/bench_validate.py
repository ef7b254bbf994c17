"""Speed of `siliconsim validate` over the whole suite. Prints figures; never asserts.

Bar (issue 4): the whole suite (279 rows) in <= 10 s on this machine's slow cores.
"""

from __future__ import annotations

import collections
import time

from siliconsim.validation.runner import run_case, run_suite
from siliconsim.validation.suite import load_cases


def main() -> None:
    cases = load_cases()
    run_suite(cases[:5])  # warm the catalog caches
    t0 = time.perf_counter()
    run_suite(cases)
    total = time.perf_counter() - t0
    by_scenario: collections.Counter = collections.Counter()
    for c in cases:
        t1 = time.perf_counter()
        run_case(c)
        by_scenario[c.scenario] += time.perf_counter() - t1
    print(f"validate: {len(cases)} rows in {total:.2f} s ({1e3 * total / len(cases):.1f} ms per row; bar 10 s)")
    for scenario, t in by_scenario.most_common():
        n = sum(c.scenario == scenario for c in cases)
        print(f"  {scenario:14s} {n:4d} rows  {t:6.2f} s  {1e3 * t / n:6.1f} ms/row")


if __name__ == "__main__":
    main()
