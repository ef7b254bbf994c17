"""Power at an operating point, as a wall meter counts it.

* Chip: a curve from idle to TDP by utilisation, ``P(u) = idle + (TDP - idle) * u``, where ``u``
  weights the step's compute, memory and network seconds by how hard each drives the chip
  (``[accounting]`` fractions in ``data/defaults.toml``; idle = ``idle_power_fraction`` x TDP).
* Power limit (``chip_power_limit_w``): compute-bound work at the datasheet's boost clock would
  draw ``P_full(u) = idle + (full_clock - idle) * u`` (``power.full_clock`` in the chip catalog;
  the TDP where the catalog has none). Under a limit ``L`` the clock settles at
  ``c(L) = min(1, ((L - idle) / (P_full(u) - idle)) ** cap_clock_exponent)`` (``[power]`` in the same
  file). Efficiencies are measured and fitted at the TDP, so a run at ``L`` stretches its
  compute-bound seconds by ``c(TDP) / c(L)``: a limit above the TDP (a 1000 W custom-cooled H200)
  speeds them up as far as the full clock; a cap below it slows them by the same law with the
  TDP's draw ``idle + (TDP - idle) * u`` for the demand. Memory, network and overhead
  seconds do not change. :func:`power_limited` gives the chip as such a run sees it.
* Host: CPUs, DRAM, NICs, fans and PSU losses, ``host_power_per_chip`` of the system catalog.
* Facility: the wall power times PUE (cooling, distribution), used for electricity cost.

Every function takes floats or NumPy arrays (a sweep's batch axis).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from siliconsim.accounting import DATA, CostAssumptions, default_assumptions
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip
from siliconsim.perf.step import StepCost


@functools.cache
def cap_clock_exponent() -> float:
    path = DATA / "defaults.toml"
    return sourced(read_toml(path)["power"]["cap_clock_exponent"], "dimensionless",
                   f"{path.name}: power.cap_clock_exponent").value


def utilisation(step: StepCost, a: CostAssumptions) -> Any:
    """Fraction of the way from idle to TDP while ``step`` repeats (0..1)."""
    total = np.asarray(step.latency_s, dtype=float)
    busy = (a.compute_power_fraction * np.asarray(step.compute_s) + a.memory_power_fraction * np.asarray(step.memory_s)
            + a.network_power_fraction * np.asarray(step.network_s))
    return np.clip(np.divide(busy, total, out=np.zeros_like(total * 1.0), where=total > 0), 0.0, 1.0)


@dataclass(frozen=True)
class ChipPower:
    """One chip at an operating point: its draw, and the step it runs under its cap."""

    power_w: Any
    step: StepCost  # the step as the (possibly capped) chip runs it
    clock: Any  # clock relative to uncapped (1 when the cap does not bind)


def compute_clock(chip: Chip, limit_w: float, a: CostAssumptions, u: Any = 1.0) -> Any:
    """Clock of compute-bound work under a ``limit_w`` power limit, relative to the same work at the
    chip's TDP (the point its efficiencies are measured and fitted at), for a step that drives the
    chip to ``u`` (0..1) of the way from idle to full draw. Below the TDP the cap law the power
    suite was derived with (the step's draw at the TDP against the cap); above it the rise towards
    the full-clock draw, which a step that does not reach the TDP's draw does not get."""
    idle = a.idle_power_fraction * chip.tdp_w
    x = cap_clock_exponent()
    u = np.maximum(np.asarray(u, dtype=float), 1e-9)
    if limit_w <= chip.tdp_w:
        return np.minimum(1.0, (max(limit_w - idle, 1e-9) / ((chip.tdp_w - idle) * u)) ** x)
    full = max(chip.full_clock_power_w or chip.tdp_w, chip.tdp_w)

    def clock(p: float) -> Any:
        return np.minimum(1.0, ((p - idle) / ((full - idle) * u)) ** x)

    return clock(float(limit_w)) / clock(chip.tdp_w)


def power_limited(chip: Chip, limit_w: float | None, a: CostAssumptions | None = None) -> Chip:
    """``chip`` as a run under a ``limit_w`` power limit sees it: its dense peaks scaled by the
    sustained clock of tensor-bound work (:func:`compute_clock` at full utilisation). The chip
    itself where the limit is None or changes nothing."""
    if limit_w is None:
        return chip
    a = a or default_assumptions()
    idle = a.idle_power_fraction * chip.tdp_w
    if not limit_w > idle:
        raise InputError(f"chip power limit {limit_w:g} W: {chip.id} idles at {idle:g} W ({a.idle_power_fraction:.0%} of "
                         f"its {chip.tdp_w:g} W TDP); expected a limit above that")
    factor = float(compute_clock(chip, limit_w, a))
    if factor == 1.0:
        return chip
    note = f"power limit {limit_w:g} W (TDP {chip.tdp_w:g} W): compute clock x{factor:.3f}"
    return replace(chip.scaled(flops=factor), what_if=(*chip.what_if, note))


def chip_power(chip: Chip, step: StepCost, a: CostAssumptions, limit_w: float | None = None) -> ChipPower:
    """Draw of one chip running ``step`` repeatedly, under an optional power limit: below the TDP a
    cap that slows compute-bound seconds; above it, where the chip's full-clock draw exceeds its
    TDP, headroom that speeds them up (and draws more)."""
    idle = a.idle_power_fraction * chip.tdp_w
    u = utilisation(step, a)
    want = idle + (chip.tdp_w - idle) * u
    full = chip.full_clock_power_w or chip.tdp_w
    if limit_w is None or limit_w == chip.tdp_w or (limit_w > chip.tdp_w and full <= chip.tdp_w):
        return ChipPower(want, step, np.ones_like(want))
    if limit_w > chip.tdp_w:  # the faster clock's extra draw, by the inverse of the clock law
        clock = compute_clock(chip, limit_w, a, u)
        draw = np.minimum(want + (chip.tdp_w - idle) * u * (clock ** (1.0 / cap_clock_exponent()) - 1.0), limit_w)
    else:
        limit = max(float(limit_w), idle * 1.0001)
        clock = np.where(want > limit, compute_clock(chip, limit, a, u), 1.0)
        draw = np.minimum(want, limit)
    timed = StepCost(np.asarray(step.compute_s) / clock, step.memory_s, step.network_s, step.overhead_s,
                     np.asarray(step.interval_s) + np.asarray(step.compute_s) * (1.0 / clock - 1.0))
    return ChipPower(draw, timed, clock)


def host_power_w(chip: Chip, chips: Any) -> Any:
    """Host share (CPUs, DRAM, NICs, fans, PSU losses) of ``chips`` chips, from the system catalog."""
    return chip.system.host_power_per_chip_w * np.asarray(chips, dtype=float)


@dataclass(frozen=True)
class ServingPower:
    """A replica set at an operating point: wall power and how much the cap slows it."""

    system_power_w: float  # chips and host shares, at the wall, before PUE
    chip_power_w: float  # one chip, time-averaged
    slowdown: float  # capped time / uncapped time of the same work (>= 1)


def serving_power(chip: Chip, chips: int, decode: StepCost, decode_steps: float, a: CostAssumptions,
                  limit_w: float | None = None, prefill: StepCost | None = None) -> ServingPower:
    """Average power of ``chips`` chips repeating one prefill (optional) and ``decode_steps``
    decode steps, each phase on the chip's curve and under its cap."""
    phases = [(decode, float(decode_steps))] + ([(prefill, 1.0)] if prefill is not None else [])
    energy = busy = plain = 0.0
    for step, n in phases:
        cp = chip_power(chip, step, a, limit_w)
        t = float(np.mean(cp.step.latency_s)) * n
        energy += float(np.mean(cp.power_w)) * t
        busy += t
        plain += float(np.mean(step.latency_s)) * n
    per_chip = energy / busy if busy > 0 else a.idle_power_fraction * chip.tdp_w
    return ServingPower(chips * per_chip + float(host_power_w(chip, chips)), per_chip, busy / plain if plain > 0 else 1.0)
