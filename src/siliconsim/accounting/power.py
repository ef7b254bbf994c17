"""Power at an operating point, as a wall meter counts it.

* Chip: a curve from idle to TDP by utilisation, ``P(u) = idle + (TDP - idle) * u``, where ``u``
  weights the step's compute, memory and network seconds by how hard each drives the chip
  (``[accounting]`` fractions in ``data/defaults.toml``; idle = ``idle_power_fraction`` x TDP).
* Power cap (``chip_power_limit_w``): a chip whose curve asks for more than its cap draws the cap
  and clocks down, so its compute-bound seconds stretch by ``1 / c`` with
  ``c = ((cap - idle) / (P(u) - idle)) ** cap_clock_exponent`` (``[power]`` in the same file);
  memory, network and overhead seconds do not.
* Host: CPUs, DRAM, NICs, fans and PSU losses, ``host_power_per_chip`` of the system catalog.
* Facility: the wall power times PUE (cooling, distribution), used for electricity cost.

Every function takes floats or NumPy arrays (a sweep's batch axis).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconsim.accounting import DATA, CostAssumptions
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


def chip_power(chip: Chip, step: StepCost, a: CostAssumptions, limit_w: float | None = None) -> ChipPower:
    """Draw of one chip running ``step`` repeatedly, under an optional power cap."""
    idle = a.idle_power_fraction * chip.tdp_w
    want = idle + (chip.tdp_w - idle) * utilisation(step, a)
    if limit_w is None or limit_w >= chip.tdp_w:
        return ChipPower(want, step, np.ones_like(want))
    limit = max(float(limit_w), idle * 1.0001)
    clock = np.where(want > limit, ((limit - idle) / np.maximum(want - idle, 1e-9)) ** cap_clock_exponent(), 1.0)
    slowed = StepCost(np.asarray(step.compute_s) / clock, step.memory_s, step.network_s, step.overhead_s,
                      np.asarray(step.interval_s) + np.asarray(step.compute_s) * (1.0 / clock - 1.0))
    return ChipPower(np.minimum(want, limit), slowed, clock)


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
