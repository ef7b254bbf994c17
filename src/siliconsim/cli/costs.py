"""Cost-assumption overrides shared by estimate and compare (defaults live in accounting data)."""

from __future__ import annotations

import argparse

from siliconsim.accounting import PUE_RANGE, CostAssumptions, default_assumptions
from siliconsim.accounting.pricing import Pricing, parse_pricing
from siliconsim.cli.args import fraction, nonneg_float, positive_float


def add_cost_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cost assumptions (defaults: accounting/data/defaults.toml)")
    g.add_argument("--electricity-usd-per-kwh", type=nonneg_float, metavar="USD", help="electricity price in USD per kWh")
    g.add_argument("--pue", type=_pue, metavar="X",
                   help=f"data-centre power usage effectiveness, facility over IT power ({PUE_RANGE[0]:g}-{PUE_RANGE[1]:g})")
    g.add_argument("--lifetime-years", type=positive_float, metavar="Y", help="capex amortisation period in years")
    g.add_argument("--utilization", type=fraction, metavar="F",
                   help="fraction of the lifetime spent at this operating point (0-1)")
    g.add_argument("--pricing", default="capex", metavar="capex|hyperscaler|neocloud|rental|USD_PER_CHIP_HOUR",
                   help="capex amortisation (default), a rented tier from the price sheet, or your all-in $/chip-hour")


def _pue(text: str) -> float:
    v = positive_float(text)
    if not PUE_RANGE[0] <= v <= PUE_RANGE[1]:
        raise argparse.ArgumentTypeError(f"expected a power usage effectiveness between {PUE_RANGE[0]:g} "
                                         f"(no facility overhead) and {PUE_RANGE[1]:g}, got {text!r}")
    return v


def add_slo_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slo", default="code-completion", metavar="PRESET",
                   help="price power and cost at the busiest batch meeting this workload preset's p99 SLO "
                        "(default code-completion)")


def pricing(args: argparse.Namespace) -> Pricing:
    return parse_pricing(args.pricing)


def cost_assumptions(args: argparse.Namespace) -> CostAssumptions:
    kw = {
        "electricity_price_usd_per_j": None if args.electricity_usd_per_kwh is None else args.electricity_usd_per_kwh / 3.6e6,
        "pue": args.pue,
        "lifetime_s": None if args.lifetime_years is None else args.lifetime_years * 365.25 * 86400,
        "utilization": args.utilization,
    }
    return default_assumptions().with_overrides(**kw)
