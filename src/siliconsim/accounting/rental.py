"""Rental prices per chip-hour from the price table (``accounting/data/prices.csv``, a verbatim
copy of the project's ``shared/specs/prices.csv``; each row carries its source URL, basis and
tier). Only ``gpu_hour`` and ``system_hour`` rows are rental rates; a CS-2/CS-3 "system" is one
chip in this catalog, so a system-hour is a chip-hour.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from siliconsim.errors import InputError

PRICES = Path(str(resources.files("siliconsim.accounting") / "data" / "prices.csv"))
RENTAL_KINDS = ("gpu_hour", "system_hour")
# A training run rents for months: the longest-term tier listed first, then the cheapest
# hyperscaler-scale rate, then any analyst default; on-demand list prices last.
TIER_PREFERENCE = ("3-year rental", "hyperscaler", "analyst default", "neocloud")


@dataclass(frozen=True)
class Rate:
    usd_per_chip_hour: float
    tier: str
    row_id: str
    source: str


@functools.cache
def rates() -> dict[str, tuple[Rate, ...]]:
    """hardware id -> its rental rates in the table's order."""
    out: dict[str, list[Rate]] = {}
    with PRICES.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] in RENTAL_KINDS and row["hardware"]:
                out.setdefault(row["hardware"], []).append(
                    Rate(float(row["value"]), row["tier_or_detail"], row["id"], row["source_url"]))
    return {k: tuple(v) for k, v in out.items()}


def tiers() -> list[str]:
    return sorted({r.tier for rs in rates().values() for r in rs})


def rental_rate(hardware_id: str, tier: str | None = None) -> Rate | None:
    """The rate for ``hardware_id`` in ``tier`` (None: by TIER_PREFERENCE, else the first listed);
    None when the table has no rate for the hardware (or not in that tier)."""
    if tier is not None and tier not in tiers():
        raise InputError(f"unknown rental tier {tier!r}; known: {', '.join(tiers())}")
    listed = rates().get(hardware_id, ())
    if tier is not None:
        return next((r for r in listed if r.tier == tier), None)
    for t in TIER_PREFERENCE:
        hit = next((r for r in listed if r.tier == t), None)
        if hit:
            return hit
    return listed[0] if listed else None
