"""Frozen hardware specs, in SI floats. Built by ``hardware.catalog`` from TOML files.

Execution families: ``hbm`` (GPU/TPU/Gaudi), ``wafer`` (wafer-scale, SRAM-resident) and
``dataflow`` (SRAM multi-chip such as Groq, or tiered SRAM+HBM+DDR such as SambaNova).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

BASES = ("datasheet", "derived", "measured", "calibrated", "assumed")
FAMILIES = ("hbm", "wafer", "dataflow")
DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "fp4", "int4")

# Which peak rate a dtype's matrix math runs at when the chip has no native rate for it.
# Weight-only formats (int4, mxfp4 stored as fp4) compute in the activation type.
_COMPUTE_FALLBACK: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "fp4": ("fp4", "fp8", "int8", "bf16"),
    "int4": ("int8", "fp8", "bf16"),
    "fp8": ("fp8", "int8", "bf16"),
    "int8": ("int8", "fp8", "bf16"),
    "bf16": ("bf16", "fp16"),
    "fp16": ("fp16", "bf16"),
    "fp32": ("fp32", "bf16"),
})


def _frozen(d: Mapping | None) -> Mapping:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Sourced:
    """A catalog number with where it came from."""

    value: float
    basis: str
    source: str


@dataclass(frozen=True)
class MemoryTier:
    name: str
    kind: str  # "sram" | "hbm" | "ddr"
    capacity_bytes: float
    bandwidth_bytes_per_s: float


@dataclass(frozen=True)
class Link:
    id: str
    name: str
    bandwidth_bytes_per_s: float  # per chip, per direction
    latency_s: float  # alpha: fixed cost of one collective step (software + wire)
    algorithm: str  # small-message all-reduce algorithm: "ring" | "tree" | "oneshot"
    efficiency: float = 0.8  # achievable fraction of bandwidth for large messages
    base_latency_s: float = 0.0  # fixed cost of one whole collective call on top of its steps (NCCL's baseLat)


@dataclass(frozen=True)
class System:
    id: str
    name: str
    chips_per_node: int
    scale_up_domain: int  # chips that share the scale-up fabric (NVLink domain, ICI slice, ...)
    scale_up: Link
    scale_out: Link | None
    host_power_per_chip_w: float
    host_price_per_chip_usd: float
    max_chips: int
    # Dimensions of a torus scale-up fabric (TPU ICI: 2 for v5e/v6e, 3 for v4/v5p); 0 when the
    # fabric is switched or a full mesh (NVSwitch, Infinity Fabric), where any pair is one hop.
    # The scale-up link's bandwidth is the chip's total over all its torus links, per direction;
    # a collective confined to one torus axis gets 1/torus_dims of it.
    torus_dims: int = 0


@dataclass(frozen=True)
class Chip:
    id: str
    name: str
    vendor: str
    family: str
    description: str
    dense_flop_per_s: Mapping[str, float]
    headline_flop_per_s: Mapping[str, float]
    memory: tuple[MemoryTier, ...]
    tdp_w: float
    price_usd: float
    system: System
    die_area_m2: float | None = None
    # Draw of dense tensor-core work at the datasheet's boost clock; where it exceeds ``tdp_w`` the
    # chip clocks down at its TDP and speeds up under a higher limit (``accounting.power.compute_clock``).
    # None: compute runs at full clock at the TDP.
    full_clock_power_w: float | None = None
    efficiency: Mapping[str, float] = field(default_factory=dict)
    microarch: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Sourced] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    notes: str = ""
    # What-if changes from the catalog part (``--set`` overrides, or the user's chip file); empty
    # for a catalog chip. A what-if chip's id ends in ``*``.
    what_if: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("dense_flop_per_s", "headline_flop_per_s", "efficiency", "microarch", "provenance"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def compute_dtype(self, dtype: str) -> str:
        """The dtype whose peak rate matrix math in ``dtype`` runs at on this chip."""
        for cand in _COMPUTE_FALLBACK.get(dtype, (dtype,)):
            if cand in self.dense_flop_per_s:
                return cand
        return max(self.dense_flop_per_s, key=self.dense_flop_per_s.__getitem__)

    def peak_flop_per_s(self, dtype: str) -> float:
        """Dense peak for ``dtype`` (falling back to the nearest supported type)."""
        return self.dense_flop_per_s[self.compute_dtype(dtype)]

    def tier(self, kind: str) -> MemoryTier | None:
        for t in self.memory:
            if t.kind == kind:
                return t
        return None

    @property
    def main_memory(self) -> MemoryTier:
        """The tier that holds the weights in normal serving: HBM if present, else SRAM."""
        return self.tier("hbm") or self.tier("sram") or self.memory[0]

    @property
    def capacity_bytes(self) -> float:
        return self.main_memory.capacity_bytes

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.main_memory.bandwidth_bytes_per_s

    def eff(self, key: str, default: float) -> float:
        return float(self.efficiency.get(key, default))

    def scaled(self, *, flops: float = 1.0, bandwidth: float = 1.0, capacity: float = 1.0,
               link_bandwidth: float = 1.0, link_latency: float = 1.0) -> "Chip":
        """A copy with resources scaled, for what-if studies and property tests."""
        mem = tuple(replace(t, capacity_bytes=t.capacity_bytes * capacity,
                            bandwidth_bytes_per_s=t.bandwidth_bytes_per_s * bandwidth)
                    for t in self.memory)

        def link(lk: Link | None) -> Link | None:
            if lk is None:
                return None
            return replace(lk, bandwidth_bytes_per_s=lk.bandwidth_bytes_per_s * link_bandwidth,
                           latency_s=lk.latency_s * link_latency)

        system = replace(self.system, scale_up=link(self.system.scale_up), scale_out=link(self.system.scale_out))
        return replace(self, memory=mem, system=system,
                       dense_flop_per_s={k: v * flops for k, v in self.dense_flop_per_s.items()})
