"""Pareto fronts: the points no other point beats on both axes.

``front(points, x, y)`` keeps the points for which no other point has ``x`` at least as good and
``y`` at least as good with one strictly better. Each axis is maximised (``+``) or minimised
(``-``). Sorted by the first axis, one pass: O(n log n).
"""

from __future__ import annotations

from typing import Any

Point = dict[str, Any]


def front(points: list[Point], x: str, y: str, *, maximise_x: bool = True, maximise_y: bool = True) -> list[Point]:
    """The non-dominated points, sorted by ``x`` (best first); exact duplicates keep one."""
    sx, sy = (1.0 if maximise_x else -1.0), (1.0 if maximise_y else -1.0)
    order = sorted(points, key=lambda p: (-sx * p[x], -sy * p[y], p.get("key", ""), p.get("batch", 0)))
    out: list[Point] = []
    best_y = float("-inf")
    for p in order:
        v = sy * p[y]
        if v > best_y:
            out.append(p)
            best_y = v
    return out


def dominated(p: Point, q: Point, x: str, y: str, maximise_x: bool = True, maximise_y: bool = True) -> bool:
    """Whether ``q`` dominates ``p``."""
    sx, sy = (1.0 if maximise_x else -1.0), (1.0 if maximise_y else -1.0)
    ge = sx * q[x] >= sx * p[x] and sy * q[y] >= sy * p[y]
    return ge and (sx * q[x] > sx * p[x] or sy * q[y] > sy * p[y])
