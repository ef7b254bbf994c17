"""Planner invariants: Pareto fronts hold exactly the non-dominated points; more bandwidth or a
larger chip budget never makes the best cost worse under the same SLO (at a fixed chip-hour price)."""

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from siliconsim.accounting.pricing import Pricing
from siliconsim.hardware.catalog import load_chip
from siliconsim.planner.closed_form import evaluate
from siliconsim.planner.pareto import dominated, front
from siliconsim.planner.space import Problem, tasks

values = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@given(st.lists(st.tuples(values, values), min_size=1, max_size=40), st.booleans())
def test_front_points_are_non_dominated_and_cover_the_rest(pairs, max_y):
    pts = [{"x": x, "y": y, "key": str(i), "batch": 1} for i, (x, y) in enumerate(pairs)]
    f = front(pts, "x", "y", maximise_y=max_y)
    for p in f:
        assert not any(dominated(p, q, "x", "y", maximise_y=max_y) for q in pts)
    kept = {(p["x"], p["y"]) for p in f}
    for p in pts:
        if (p["x"], p["y"]) not in kept:
            assert any(dominated(p, q, "x", "y", maximise_y=max_y) for q in f)


def _best_cost(problem: Problem) -> float:
    costs = [p["usd_per_mtok_blended"] for t in tasks(problem) for p in evaluate(problem, t).points]
    return min(costs) if costs else float("inf")


def _problem(rate: float, tpot_ms: float, max_chips: int) -> Problem:
    return Problem("llama-3.1-8b", ("h100-sxm",), 1024, 128, rate, 1.0, tpot_ms * 1e-3, max_chips=max_chips,
                   pricing=Pricing("custom", 2.0), modes=("aggregated",))


@settings(max_examples=8, deadline=None)
@given(st.floats(1.0, 40.0), st.floats(15.0, 80.0), st.floats(1.0, 3.0))
def test_more_bandwidth_never_makes_the_best_cost_worse(rate, tpot_ms, k):
    problem = _problem(rate, tpot_ms, 8)
    base = _best_cost(problem)
    assume(base < float("inf"))  # an SLO nothing meets says nothing about monotonicity
    bw = load_chip("h100-sxm").bandwidth_bytes_per_s * k
    faster = dataclasses.replace(problem, hardware=("h100-sxm*",), what_if=(f"memory.hbm.bandwidth={bw} B/s",))
    assert faster.chip("h100-sxm*").bandwidth_bytes_per_s == pytest.approx(bw)
    assert _best_cost(faster) <= base * (1 + 1e-9)


@settings(max_examples=8, deadline=None)
@given(st.floats(1.0, 40.0), st.floats(15.0, 80.0), st.integers(1, 4), st.integers(1, 4))
def test_a_larger_chip_budget_never_makes_the_best_cost_worse(rate, tpot_ms, a, b):
    small, large = sorted((2 ** a, 2 ** (a + b)))
    assert _best_cost(_problem(rate, tpot_ms, large)) <= _best_cost(_problem(rate, tpot_ms, small))


def test_scaled_chip_is_really_faster():  # the monkeypatch above must change something
    chip = load_chip("h100-sxm")
    assert chip.scaled(bandwidth=2.0).bandwidth_bytes_per_s == pytest.approx(2 * chip.bandwidth_bytes_per_s)
