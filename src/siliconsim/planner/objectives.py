"""Objectives: what "best" means. A plain dict from name to a sort key (lower is better); ties
break on cost, then chips, then the point's key and batch, so the order is total and stable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Point = dict[str, Any]


def _tie(p: Point) -> tuple:
    return (p["usd_per_mtok_blended"], p["chips"], p["key"], p["batch"])


OBJECTIVES: dict[str, Callable[[Point], tuple]] = {
    "cost": lambda p: (p["usd_per_mtok_blended"],) + _tie(p),
    "chips": lambda p: (p["chips"],) + _tie(p),
    "power": lambda p: (p["power_w"],) + _tie(p),
}


def ranked(points: list[Point], objective: str) -> list[Point]:
    """Points best first under ``objective``."""
    return sorted(points, key=OBJECTIVES[objective])
