"""Arrival processes: Poisson and gamma renewal processes, from an explicit numpy Generator.

A gamma renewal process with mean gap ``1 / rate`` and coefficient of variation ``cv`` has shape
``k = 1 / cv**2`` and scale ``1 / (rate * k)``; ``cv = 1`` is Poisson (exponential gaps),
``cv > 1`` is burstier, ``cv < 1`` more regular.
"""

from __future__ import annotations

import numpy as np

from siliconsim.errors import InputError, require_positive

# The most requests a workload may generate: the simulator runs the 8,819-request Azure code
# trace in under a second (benchmarks/bench_serving.py), so this is minutes of simulation with
# arrays of a few hundred MB; a billion would run for hours or exhaust memory.
MAX_REQUESTS = 1_000_000


def check_request_count(expected: float, what: str) -> None:
    """Raise InputError when ``expected`` requests (``what`` says where the number came from)
    exceed MAX_REQUESTS."""
    if not expected <= MAX_REQUESTS:
        n = f"{expected:,.0f}" if expected < 1e15 else f"{expected:.3g}"
        raise InputError(f"{what}: about {n} requests, expected at most {MAX_REQUESTS:,}")


def interarrival_s(rng: np.random.Generator, count: int, rate_per_s: float, cv: float = 1.0) -> np.ndarray:
    """``count`` gaps in seconds of a renewal process with the given rate and CV."""
    require_positive("rate", rate_per_s)
    require_positive("cv", cv)
    if cv == 1.0:
        return rng.exponential(1.0 / rate_per_s, count)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, 1.0 / (rate_per_s * shape), count)


def arrival_times_s(rng: np.random.Generator, rate_per_s: float, cv: float = 1.0, *,
                    count: int | None = None, duration_s: float | None = None) -> np.ndarray:
    """Arrival times from 0: the first ``count`` arrivals, or all before ``duration_s``.

    The first arrival is at 0 s. With ``duration_s``, gaps are drawn in blocks until the horizon
    is passed, so the result depends only on the seed, not on the block size.
    """
    if count is not None:
        check_request_count(count, f"--requests {count}")
        gaps = interarrival_s(rng, max(count - 1, 0), rate_per_s, cv)
        return np.concatenate(([0.0], np.cumsum(gaps)))
    if duration_s is None:
        raise ValueError("arrival_times_s needs count or duration_s")
    require_positive("duration", duration_s)
    check_request_count(rate_per_s * duration_s, f"--duration {duration_s:g} s at {rate_per_s:g} requests/s")
    block = max(16, int(rate_per_s * duration_s * 1.2) + 16)
    times = [np.zeros(1)]
    last = 0.0
    while last < duration_s:
        t = last + np.cumsum(interarrival_s(rng, block, rate_per_s, cv))
        times.append(t)
        last = float(t[-1])
    out = np.concatenate(times)
    return out[out < duration_s]
