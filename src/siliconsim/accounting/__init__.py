"""Accounting: power at load, energy per output token, and $ per million output tokens.

Power: each chip draws ``TDP * (idle + (1 - idle) * activity)`` where activity weights the
step's compute, memory and network seconds by how hard each drives the chip (fractions in
``data/defaults.toml``); the host, switches and NICs add the system's ``host_power_per_chip``.
Energy per output token is system power over aggregate output tokens/s (at the wall, before
PUE). Cost: $ per chip-hour by pricing mode (``accounting.pricing``: amortised capex plus
electricity at PUE, a rented tier, or the user's rate), split between input and output tokens by
the chip time each uses. ``accounting.power`` has the power curve with caps used by the planner.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from siliconsim.errors import InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip
from siliconsim.perf.step import StepCost

DATA = Path(str(resources.files("siliconsim.accounting") / "data"))

_DIMS = {"electricity_price": "usd_per_j", "pue": "dimensionless", "lifetime": "s", "utilization": "dimensionless",
         "idle_power_fraction": "dimensionless", "compute_power_fraction": "dimensionless",
         "memory_power_fraction": "dimensionless", "network_power_fraction": "dimensionless"}


# Power usage effectiveness is facility power over IT power, so it cannot be below 1 (The Green
# Grid, White Paper #49). The upper bound only catches typos: surveyed data centres average about
# 1.6 (Uptime Institute global surveys), and nothing reported comes near 4.
PUE_RANGE = (1.0, 4.0)


@dataclass(frozen=True)
class CostAssumptions:
    electricity_price_usd_per_j: float
    pue: float
    lifetime_s: float
    utilization: float
    idle_power_fraction: float
    compute_power_fraction: float
    memory_power_fraction: float
    network_power_fraction: float

    def with_overrides(self, **kw: Any) -> "CostAssumptions":
        """Replace the fields given (None values are ignored); values are checked."""
        changes = {k: float(v) for k, v in kw.items() if v is not None}
        for k, v in changes.items():
            if k not in {f.name for f in fields(self)}:
                raise InputError(f"{k}: not a cost assumption")
            if not math.isfinite(v):
                raise InputError(f"{k}: expected a finite number, got {v}")
            if v < 0 or (v == 0 and k not in ("idle_power_fraction", "electricity_price_usd_per_j")):
                raise InputError(f"{k}: expected a number > 0, got {v}")
        pue = changes.get("pue", PUE_RANGE[0])
        if not PUE_RANGE[0] <= pue <= PUE_RANGE[1]:
            raise InputError(f"pue: expected facility power over IT power between {PUE_RANGE[0]:g} and "
                             f"{PUE_RANGE[1]:g}, got {pue:g}")
        if changes.get("utilization", 0.5) > 1:
            raise InputError(f"utilization: expected a fraction in (0, 1], got {changes['utilization']}")
        return replace(self, **changes)


@functools.cache
def default_assumptions() -> CostAssumptions:
    path = DATA / "defaults.toml"
    table = read_toml(path).get("accounting", {})
    vals = {}
    for key, dim in _DIMS.items():
        if key not in table:
            raise InputError(f"{path.name}: missing accounting.{key}")
        vals[key] = sourced(table[key], dim, f"{path.name}: accounting.{key}").value
    return CostAssumptions(vals["electricity_price"], vals["pue"], vals["lifetime"], vals["utilization"],
                           vals["idle_power_fraction"], vals["compute_power_fraction"],
                           vals["memory_power_fraction"], vals["network_power_fraction"])


@dataclass(frozen=True)
class Accounting:
    power_w: float
    chip_power_w: float
    host_power_w: float
    energy_j_per_token: float
    usd_per_million_tokens: float  # the whole cost over output tokens (the old single price)
    capex_usd: float
    usd_per_hour: float
    usd_per_mtok_input: float = float("nan")  # input and output tokens each priced by the chip time they use
    usd_per_mtok_output: float = float("nan")
    usd_per_mtok_blended: float = float("nan")  # total cost over total tokens
    pricing: str = ""  # the rate and where it comes from, in words

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def chip_power_w(chip: Chip, step: StepCost, a: CostAssumptions) -> float:
    """Average power of one chip while running ``step`` repeatedly."""
    total = float(step.latency_s)
    if total <= 0:
        return chip.tdp_w * a.idle_power_fraction
    activity = (a.compute_power_fraction * float(step.compute_s) + a.memory_power_fraction * float(step.memory_s)
                + a.network_power_fraction * float(step.network_s)) / total
    return chip.tdp_w * (a.idle_power_fraction + (1.0 - a.idle_power_fraction) * min(1.0, activity))


def account(chip: Chip, chips: int, step: StepCost, aggregate_tok_s: float, a: CostAssumptions | None = None, *,
            pricing: Any = None, prefill_share: float = 0.0, input_per_output: float = 0.0,
            power_limit_w: float | None = None) -> Accounting:
    """Power, energy per output token and $/Mtok for ``chips`` chips producing ``aggregate_tok_s``.

    ``pricing``: an ``accounting.pricing.Pricing`` (default capex); ``prefill_share``: the fraction
    of chip time spent on prompt tokens; ``input_per_output``: prompt tokens per output token;
    ``power_limit_w``: the chips' power limit (``step`` already timed at it), which sets their draw
    (``accounting.power.chip_power``)."""
    from siliconsim.accounting.pricing import Pricing, token_prices, usd_per_chip_hour

    a = a or default_assumptions()
    if power_limit_w is None:
        per_chip = chip_power_w(chip, step, a)
    else:
        from siliconsim.accounting.power import chip_power

        per_chip = float(chip_power(chip, step, a, power_limit_w).power_w)
    host = chip.system.host_power_per_chip_w * chips
    power = per_chip * chips + host
    capex = chips * (chip.price_usd + chip.system.host_price_per_chip_usd)
    rate, why = usd_per_chip_hour(chip, pricing or Pricing("capex"), a, power / chips)
    usd_per_s = chips * float(rate) / 3600.0
    tok_s = aggregate_tok_s if aggregate_tok_s > 0 else float("nan")
    prices = token_prices(usd_per_s, prefill_share, tok_s * input_per_output if input_per_output > 0 else float("nan"),
                          tok_s)
    return Accounting(power, per_chip * chips, host, power / tok_s, usd_per_s / tok_s * 1e6, capex, usd_per_s * 3600,
                      float(prices.usd_per_mtok_input), float(prices.usd_per_mtok_output),
                      float(prices.usd_per_mtok_blended), why)


@dataclass(frozen=True)
class TrainingAccounting:
    """Power, energy and cost of a training run of ``duration_s`` seconds."""

    power_w: float
    energy_j: float
    cost_usd: float  # capex amortised over the lifetime at the assumed utilisation, plus electricity at PUE
    cost_rented_usd: float | None  # chip-hours at the given rental rate (which includes power)
    usd_per_hour: float

    def as_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def account_training(chip: Chip, chips: int, busy: StepCost, duration_s: float,
                     a: CostAssumptions | None = None, usd_per_chip_hour: float | None = None) -> TrainingAccounting:
    """Account a training run: ``busy`` splits one step into compute-, memory- and network-bound
    seconds (bubbles and host overhead count as idle); the chips draw the power that mix implies
    (``chip_power_w``), the hosts their share, for ``duration_s``. Energy is at the wall before
    PUE, as for inference; the capex cost adds electricity at PUE."""
    a = a or default_assumptions()
    power = chip_power_w(chip, busy, a) * chips + chip.system.host_power_per_chip_w * chips
    capex = chips * (chip.price_usd + chip.system.host_price_per_chip_usd)
    usd_per_s = capex / (a.lifetime_s * a.utilization) + power * a.pue * a.electricity_price_usd_per_j
    rented = None if usd_per_chip_hour is None else chips * usd_per_chip_hour * duration_s / 3600.0
    return TrainingAccounting(power, power * duration_s, usd_per_s * duration_s, rented, usd_per_s * 3600.0)
