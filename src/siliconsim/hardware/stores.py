"""Weight-streaming infrastructure as catalog components: MemoryX (external weight and optimizer
store) and SwarmX (broadcast-reduce tree), one file each under ``hardware/data/stores``.

Same file conventions as chips, links and systems (``[meta]`` with id, sources, retrieved;
every quantity ``{value, basis, source}``). Where sources disagree a file keeps both figures and
names the one used (``used``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import _check_meta, _path, _Reader, read_toml, sourced
from siliconsim.hardware.spec import Sourced

KIND = "stores"


@dataclass(frozen=True)
class MemoryX:
    id: str
    capacity_options_bytes: tuple[float, ...]  # ascending
    bandwidth_per_system_bytes_per_s: float
    update_bandwidth_bytes_per_s: float
    bytes_per_param: float
    provenance: dict[str, Sourced]

    def smallest_holding(self, need_bytes: float) -> float | None:
        """The smallest capacity option holding ``need_bytes``, or None."""
        return next((c for c in self.capacity_options_bytes if c >= need_bytes), None)


@dataclass(frozen=True)
class SwarmX:
    id: str
    bandwidth_per_system_bytes_per_s: float  # the figure used (see ``used`` in the file)
    port_bandwidth_bytes_per_s: float
    fan_out: int
    level_latency_s: float
    efficiency: float
    max_systems: int
    provenance: dict[str, Sourced]

    def depth(self, systems: int) -> int:
        """Tree levels between MemoryX and ``systems`` systems: ceil(log_fan_out N), at least one."""
        return max(1, math.ceil(math.log(systems, self.fan_out) - 1e-9)) if systems > 1 else 1

    def latency_s(self, systems: int) -> float:
        return self.depth(systems) * self.level_latency_s


def _reader(store_id: str, kind: str) -> _Reader:
    path = _path(KIND, store_id, kind)
    r = _Reader(path, read_toml(path))
    _check_meta(r, store_id)
    if r.text("meta.kind") != kind:
        raise CatalogError(f"{path.name}: meta.kind is {r.text('meta.kind')!r}, expected {kind!r}")
    return r


@functools.cache
def load_memoryx(store_id: str) -> MemoryX:
    r = _reader(store_id, "memoryx")
    opts = r.node("store.capacity_options")
    if not isinstance(opts, list) or not opts:
        raise CatalogError(f"{r.path.name}: store.capacity_options must be a non-empty list")
    caps = tuple(sorted(sourced(o, "bytes", f"{r.path.name}: store.capacity_options[{i}]").value
                        for i, o in enumerate(opts)))
    return MemoryX(store_id, caps, r.qty("store.bandwidth_per_system", "bytes_per_s"),
                   r.qty("store.update_bandwidth", "bytes_per_s"), r.qty("store.bytes_per_param", "dimensionless"),
                   r.provenance)


@functools.cache
def load_swarmx(store_id: str) -> SwarmX:
    r = _reader(store_id, "swarmx")
    used = r.doc["swarmx"].get("used", "bandwidth_per_system")
    if used not in r.doc["swarmx"]:
        raise CatalogError(f"{r.path.name}: swarmx.used names {used!r}, which the file lacks")
    fan = int(r.qty("swarmx.fan_out", "dimensionless"))
    if fan < 2:
        raise CatalogError(f"{r.path.name}: swarmx.fan_out must be >= 2, got {fan}")
    return SwarmX(store_id, r.qty(f"swarmx.{used}", "bytes_per_s"), r.qty("swarmx.port_bandwidth", "bytes_per_s"),
                  fan, r.qty("swarmx.level_latency", "s"), r.qty("swarmx.efficiency", "dimensionless"),
                  int(r.qty("swarmx.max_systems", "dimensionless")), r.provenance)
