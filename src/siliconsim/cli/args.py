"""Argument types and options shared by subcommands. Bad values exit 2 with a one-line error."""

from __future__ import annotations

import argparse

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
    p.add_argument("--hardware", "-H", required=hardware_required, metavar="ID", help="hardware id (see `siliconsim list hardware`)")
    p.add_argument("--chips", type=positive_int, metavar="N", help="chips per replica (default: smallest feasible)")
    p.add_argument("--dtype", choices=DTYPES, help="weight precision (default: the model's native type)")
    p.add_argument("--kv-dtype", choices=DTYPES, help="KV-cache precision (default: same as --dtype, at least fp8)")
