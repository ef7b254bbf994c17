"""Money as providers quote it: $ per chip-hour by pricing mode, and $/Mtok for input and output.

Modes: ``capex`` amortises the chips and their host share over the lifetime at the assumed
utilisation and adds electricity at PUE (the default); ``hyperscaler``, ``neocloud`` and
``rental`` take the all-in rented chip-hour of that tier from ``data/prices.toml`` (sourced to the
shared price sheet; power and facility are inside the rate, so nothing is added); a number is the
user's own all-in $/chip-hour. A chip without a tier is priced by capex, and the assumption says so.

Input and output tokens are each priced by the chip time they use: the share of a step spent on
prompt tokens (mixed step minus a decode-only step of the same batch) buys the input tokens, the
rest the output tokens. The blended price is total cost over total tokens, i.e. the two prices
weighted by the workload's input:output ratio.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.accounting import DATA, CostAssumptions
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip

TIERS = ("hyperscaler", "neocloud", "rental")
MODES = ("capex",) + TIERS
SANITY_FACTOR = 10.0  # warn when a prediction is this many times above a provider's list price


@dataclass(frozen=True)
class Pricing:
    mode: str  # "capex", a tier, or "custom"
    usd_per_chip_hour: float | None = None  # custom only

    def describe(self) -> str:
        if self.mode == "custom":
            return f"your rate, {self.usd_per_chip_hour:g} USD per chip-hour (all-in)"
        if self.mode == "capex":
            return "capex amortisation plus electricity"
        return f"rented chip-hours, {self.mode} tier (all-in)"


def parse_pricing(text: str) -> Pricing:
    """``capex``, a tier name, or a positive number of USD per chip-hour."""
    if text in MODES:
        return Pricing(text)
    try:
        rate = float(text)
    except ValueError:
        raise InputError(f"--pricing {text!r}: expected one of {', '.join(MODES)} or USD per chip-hour") from None
    if not (rate > 0 and np.isfinite(rate)):
        raise InputError(f"--pricing {text!r}: expected a number of USD per chip-hour > 0")
    return Pricing("custom", rate)


@functools.cache
def _prices() -> dict[str, Any]:
    return read_toml(DATA / "prices.toml")


def rental_rate(chip_id: str, tier: str) -> tuple[float, str] | None:
    """(USD per chip-hour, source) of ``tier`` for ``chip_id``; None when the sheet has none."""
    entry = _prices().get("rental", {}).get(chip_id, {}).get(tier)
    if entry is None:
        return None
    s = sourced(entry, "dimensionless", f"prices.toml: rental.{chip_id}.{tier}")
    return s.value, s.source


def capex_usd_per_chip_hour(chip: Chip, a: CostAssumptions, power_w_per_chip: Any) -> Any:
    """Amortised chip + host share, plus electricity of ``power_w_per_chip`` (chip and host) at PUE."""
    capex = (chip.price_usd + chip.system.host_price_per_chip_usd) / (a.lifetime_s * a.utilization)
    return (capex + np.asarray(power_w_per_chip) * a.pue * a.electricity_price_usd_per_j) * 3600.0


def usd_per_chip_hour(chip: Chip, pricing: Pricing, a: CostAssumptions, power_w_per_chip: Any) -> tuple[Any, str]:
    """The chip-hour rate under ``pricing`` and the assumption behind it, in words."""
    if pricing.mode == "custom":
        return pricing.usd_per_chip_hour, pricing.describe()
    if pricing.mode in TIERS:
        found = rental_rate(chip.id, pricing.mode)
        if found is not None:
            return found[0], f"{chip.id}: {found[0]:g} USD/chip-hour, {pricing.mode} tier ({found[1]})"
    rate = capex_usd_per_chip_hour(chip, a, power_w_per_chip)
    why = "" if pricing.mode == "capex" else f"no {pricing.mode} tier in the price sheet, so "
    return rate, (f"{chip.id}: {why}capex {chip.price_usd + chip.system.host_price_per_chip_usd:,.0f} USD per chip "
                  f"(with host share) over {a.lifetime_s / 3.15576e7:g} years at {a.utilization:.0%} utilisation, plus "
                  f"electricity {a.electricity_price_usd_per_j * 3.6e6:g} USD/kWh at PUE {a.pue:g}")


@dataclass(frozen=True)
class TokenPrices:
    usd_per_mtok_input: Any
    usd_per_mtok_output: Any
    usd_per_mtok_blended: Any


def token_prices(usd_per_s: Any, prefill_share: Any, input_tok_s: float, output_tok_s: float) -> TokenPrices:
    """Split a fleet's cost rate between input and output tokens by the chip time each uses."""
    share = np.clip(prefill_share, 0.0, 1.0)
    usd = np.asarray(usd_per_s, dtype=float)
    return TokenPrices(usd * share / input_tok_s * 1e6, usd * (1.0 - share) / output_tok_s * 1e6,
                       usd / (input_tok_s + output_tok_s) * 1e6)


@dataclass(frozen=True)
class ListPrice:
    id: str
    model: str
    hardware: str
    provider: str
    usd_per_mtok_input: float
    usd_per_mtok_output: float
    source: str


def list_prices(model_id: str, hardware_id: str | None = None) -> list[ListPrice]:
    """Providers' list prices for ``model_id`` (on ``hardware_id`` when given)."""
    out = []
    for i, e in enumerate(_prices().get("list_price", [])):
        where = f"prices.toml: list_price[{i}]"
        if e.get("model") != model_id or (hardware_id is not None and e.get("hardware") != hardware_id):
            continue
        inp = sourced(e["usd_per_mtok_input"], "dimensionless", f"{where}.usd_per_mtok_input")
        outp = sourced(e["usd_per_mtok_output"], "dimensionless", f"{where}.usd_per_mtok_output")
        out.append(ListPrice(e["id"], e["model"], e["hardware"], e["provider"], inp.value, outp.value, outp.source))
    return out


def sanity_warning(model_id: str, hardware_id: str, usd_per_mtok_output: float) -> str | None:
    """A warning naming both numbers when a prediction is > SANITY_FACTOR x a provider's list price."""
    for lp in list_prices(model_id, hardware_id):
        if usd_per_mtok_output > SANITY_FACTOR * lp.usd_per_mtok_output:
            return (f"{model_id} on {hardware_id}: predicted output cost {usd_per_mtok_output:.3g} USD/Mtok is "
                    f"{usd_per_mtok_output / lp.usd_per_mtok_output:.0f}x {lp.provider}'s list price "
                    f"{lp.usd_per_mtok_output:g} USD/Mtok ({lp.id}); no provider sells at a tenth of its cost for long, "
                    "so look for a modeling error (operating point, chip count, price assumptions)")
    return None
