"""Argument types and options shared by subcommands. Bad values exit 2 with a one-line error."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from siliconsim.hardware.spec import Chip

HARDWARE_HELP = "hardware id (see `siliconsim list hardware`) or path to a chip TOML in the catalog's schema"
FORMATS = ("table", "json", "csv")
DTYPES = ("bf16", "fp16", "fp8", "fp4", "int8", "int4")


def _number(kind: type, text: str, *, allow_zero: bool = False):
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"expected a number {'>= 0' if allow_zero else '> 0'}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    return _number(int, text)


def seed(text: str) -> int:
    """A random seed: a whole number >= 0 (what numpy.random.default_rng accepts)."""
    return _number(int, text, allow_zero=True)


def positive_float(text: str) -> float:
    return _number(float, text)


def nonneg_float(text: str) -> float:
    return _number(float, text, allow_zero=True)


def fraction(text: str) -> float:
    v = _number(float, text, allow_zero=True)
    if v > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return v


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")


def add_model_hardware(p: argparse.ArgumentParser, *, hardware_required: bool = True) -> None:
    p.add_argument("--model", "-m", required=True, metavar="ID|PATH", help="model id or path to a HF config.json")
    p.add_argument("--hardware", "-H", required=hardware_required, metavar="ID|PATH", help=HARDWARE_HELP)
    add_what_if(p)
    p.add_argument("--chips", type=positive_int, metavar="N", help="chips per replica (default: smallest feasible)")
    p.add_argument("--dtype", choices=DTYPES, help="weight precision (default: the model's native type)")
    p.add_argument("--kv-dtype", choices=DTYPES, help="KV-cache precision (default: same as --dtype, at least fp8)")


def add_power_limit(p: argparse.ArgumentParser) -> None:
    """``--chip-power-limit-w W``: every chip's power limit; compute-bound work runs at the clock it
    sustains, slower under the TDP and, up to the chip's full-clock draw, faster above it."""
    p.add_argument("--chip-power-limit-w", type=positive_float, metavar="W",
                   help="every chip's power limit in watts: compute runs at the clock it sustains, slower below the "
                        "TDP, faster above it where the chip's full-clock draw is higher (default: the TDP)")


def add_what_if(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): what-if override of a chip quantity by its dotted TOML path."""
    p.add_argument("--set", action="append", default=[], dest="what_if", metavar="KEY=VALUE",
                   help="what-if: override a chip quantity by its dotted path in the chip TOML, e.g. "
                        "--set 'memory.hbm.bandwidth=13 TB/s' (repeatable; the chip id gets a '*')")


def hardware_arg(args: argparse.Namespace, ref: str | None = None) -> Chip:
    """The chip the user named (catalog id or chip file) with the ``--set`` what-ifs applied."""
    from siliconsim.hardware.custom import resolve_chip

    return resolve_chip(ref if ref is not None else args.hardware, getattr(args, "what_if", []))


def hardware_list(args: argparse.Namespace) -> list[Chip]:
    """Chips for a comparison: each one named; with ``--set``, the what-if variant of the first one
    follows it (the what-if is compared with today's parts, which may not share its fields)."""
    from siliconsim.hardware.custom import resolve_chip

    out = [resolve_chip(ref) for ref in args.hardware]
    if args.what_if:
        out.insert(1, resolve_chip(args.hardware[0], args.what_if))
    return out


def nonneg_int(text: str) -> int:
    return _number(int, text, allow_zero=True)
