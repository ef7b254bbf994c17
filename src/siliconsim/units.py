"""Parse unit strings from catalog files into SI floats, once, at load time.

Catalog values are strings such as ``"3.35 TB/s"``, ``"80 GB"``, ``"700 W"`` or ``"1.1 GHz"``.
Decimal prefixes are powers of ten (GB = 1e9 bytes); binary prefixes are powers of two
(GiB = 2**30 bytes). The parser returns a float in the SI base unit of the quantity's
dimension, and checks the dimension the caller expects.

A hand-written table is used instead of a general units library: the catalog uses a small,
fixed vocabulary, and parsing must not cost CLI start-up time.
"""

from __future__ import annotations

import re

from siliconsim.errors import CatalogError

_DEC = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BIN = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_SMALL = {"m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12}

# base unit symbol -> (dimension, factor to SI)
_BASE: dict[str, tuple[str, float]] = {
    "B": ("bytes", 1.0),
    "b": ("bytes", 1.0 / 8.0),  # bits
    "B/s": ("bytes_per_s", 1.0),
    "b/s": ("bytes_per_s", 1.0 / 8.0),
    "bps": ("bytes_per_s", 1.0 / 8.0),
    "FLOP/s": ("flop_per_s", 1.0),
    "FLOPS": ("flop_per_s", 1.0),
    "OP/s": ("flop_per_s", 1.0),
    "OPS": ("flop_per_s", 1.0),
    "FLOP": ("flop", 1.0),
    "W": ("w", 1.0),
    "Wh": ("j", 3600.0),
    "J": ("j", 1.0),
    "Hz": ("hz", 1.0),
    "s": ("s", 1.0),
    "min": ("s", 60.0),
    "h": ("s", 3600.0),
    "year": ("s", 365.25 * 86400.0),
    "years": ("s", 365.25 * 86400.0),
    "m^2": ("m2", 1.0),
    "mm^2": ("m2", 1e-6),
    "USD": ("usd", 1.0),
    "USD/kWh": ("usd_per_j", 1.0 / 3.6e6),
    "cycle": ("cycles", 1.0),
    "cycles": ("cycles", 1.0),
    "": ("dimensionless", 1.0),
    "%": ("dimensionless", 0.01),
}

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RE = re.compile(rf"^\s*({_NUM})\s*(\S*)\s*$")


def _split_unit(unit: str) -> tuple[str, float]:
    """Split a unit string into (base symbol, prefix multiplier)."""
    if unit in _BASE:
        return unit, 1.0
    for pre, mult in _BIN.items():
        if unit.startswith(pre) and unit[len(pre):] in _BASE:
            return unit[len(pre):], mult
    for table in (_DEC, _SMALL):
        for pre, mult in table.items():
            if pre and unit.startswith(pre) and unit[len(pre):] in _BASE:
                return unit[len(pre):], mult
    raise KeyError(unit)


def parse_quantity(text: str | int | float, expect: str, *, where: str = "value") -> float:
    """Parse ``text`` into an SI float of dimension ``expect``.

    ``where`` names the file and field for error messages. Bare numbers are accepted only
    for dimensionless quantities and for ``expect="count"``.
    """
    if isinstance(text, bool):
        raise CatalogError(f"{where}: expected a quantity in {expect}, got {text!r}")
    if isinstance(text, (int, float)):
        if expect in ("dimensionless", "count"):
            return float(text)
        raise CatalogError(f"{where}: expected a string with a unit ({expect}), got bare number {text!r}")
    m = _RE.match(str(text))
    if not m:
        raise CatalogError(f"{where}: cannot parse quantity {text!r}; expected e.g. '3.35 TB/s'")
    number, unit = float(m.group(1)), m.group(2)
    if expect == "count" and unit == "":
        return number
    try:
        base, mult = _split_unit(unit)
    except KeyError:
        raise CatalogError(f"{where}: unknown unit {unit!r} in {text!r}") from None
    dim, factor = _BASE[base]
    if dim != expect:
        raise CatalogError(f"{where}: {text!r} is {dim}, expected {expect}")
    return number * mult * factor


# Boundary conversions for rendering (SI float -> display number).
def to_ms(seconds: float) -> float:
    return seconds * 1e3


def to_us(seconds: float) -> float:
    return seconds * 1e6


def to_gib(n_bytes: float) -> float:
    return n_bytes / 2.0**30


def to_gb(n_bytes: float) -> float:
    return n_bytes / 1e9
