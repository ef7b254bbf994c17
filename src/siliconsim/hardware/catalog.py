"""Load the hardware catalog: TOML files under ``hardware/data/{chips,links,systems}``.

Every quantity in a file is an inline table ``{ value = "...", basis = "...", source = "..." }``.
``value`` is a string with a unit (parsed by ``units.parse_quantity``) or a bare number for counts
and ratios; ``basis`` is one of ``spec.BASES``; ``source`` is a URL or a sentence saying how
the number was derived or why it was assumed. Lookups are exact; an unknown id suggests close
matches. Files are parsed once per process and cached.
"""

from __future__ import annotations

import functools
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from siliconsim.errors import CatalogError, UnknownIdError
from siliconsim.hardware.spec import BASES, FAMILIES, Chip, Link, MemoryTier, Sourced, System
from siliconsim.units import parse_quantity

DATA = Path(str(resources.files("siliconsim.hardware") / "data"))

# Efficiency keys and their dimension ("dimensionless" ratios or "s" overheads).
EFFICIENCY_DIMS = {
    "compute": "dimensionless",
    "memory": "dimensionless",
    "kernel_overhead": "s",
    "step_overhead": "s",
    "moe": "dimensionless",
    "moe_memory": "dimensionless",
    "kv_memory": "dimensionless",
    "network": "dimensionless",
    "overlap": "dimensionless",
    "api_overhead": "s",
}


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file and line."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None


def sourced(entry: Any, expect: str, where: str) -> Sourced:
    """Parse one ``{value, basis, source}`` table into a Sourced SI float."""
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a table {{value, basis, source}}, got {entry!r}")
    missing = [k for k in ("value", "basis", "source") if k not in entry]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    basis = entry["basis"]
    if basis not in BASES:
        raise CatalogError(f"{where}.basis: {basis!r} is not one of {', '.join(BASES)}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise CatalogError(f"{where}.source: expected a non-empty string")
    value = parse_quantity(entry["value"], expect, where=f"{where}.value")
    if not (math.isfinite(value) and value >= 0):
        raise CatalogError(f"{where}.value: {entry['value']!r}, expected a finite quantity >= 0")
    return Sourced(value, basis, source)


class _Reader:
    """Reads fields from one parsed file, recording provenance and naming the file in errors."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path, self.doc = path, doc
        self.provenance: dict[str, Sourced] = {}

    def where(self, dotted: str) -> str:
        return f"{self.path.name}: {dotted}"

    def node(self, dotted: str, *, required: bool = True) -> Any:
        cur: Any = self.doc
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                if required:
                    raise CatalogError(f"{self.path.name}: missing field '{dotted}'")
                return None
            cur = cur[part]
        return cur

    def text(self, dotted: str, *, required: bool = True, default: str = "") -> str:
        v = self.node(dotted, required=required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise CatalogError(f"{self.where(dotted)}: expected a string, got {v!r}")
        return v

    def qty(self, dotted: str, expect: str, *, required: bool = True) -> float | None:
        entry = self.node(dotted, required=required)
        if entry is None:
            return None
        s = sourced(entry, expect, self.where(dotted))
        self.provenance[dotted] = s
        return s.value

    def subtable(self, dotted: str) -> dict[str, Any]:
        """An optional table: {} when absent, CatalogError when present but not a table."""
        tab = self.node(dotted, required=False)
        if tab is None:
            return {}
        if not isinstance(tab, dict):
            raise CatalogError(f"{self.where(dotted)}: expected a table, got {tab!r}"[:200])
        return tab

    def table(self, dotted: str, expect: str) -> dict[str, float]:
        return {k: self.qty(f"{dotted}.{k}", expect) for k in self.subtable(dotted)}  # type: ignore[misc]


def _check_meta(r: _Reader, expected_id: str) -> None:
    file_id = r.text("meta.id")
    if file_id != expected_id:
        raise CatalogError(f"{r.path.name}: meta.id '{file_id}' does not match the file name '{expected_id}'")
    srcs = r.node("meta.sources")
    if not isinstance(srcs, list) or not srcs or not all(isinstance(s, str) and s for s in srcs):
        raise CatalogError(f"{r.path.name}: meta.sources must be a non-empty list of strings")
    r.text("meta.retrieved")


def _ids(kind: str) -> list[str]:
    return sorted(p.stem for p in (DATA / kind).glob("*.toml"))


def _path(kind: str, ident: str, label: str) -> Path:
    path = DATA / kind / f"{ident}.toml"
    if not path.is_file():
        raise UnknownIdError(label, ident, _ids(kind))
    return path


@functools.cache
def load_link(link_id: str) -> Link:
    path = _path("links", link_id, "link")
    r = _Reader(path, read_toml(path))
    _check_meta(r, link_id)
    algo = r.text("link.algorithm", required=False, default="ring")
    if algo not in ("ring", "tree", "oneshot"):
        raise CatalogError(f"{r.where('link.algorithm')}: {algo!r} is not one of ring, tree, oneshot")
    eff = r.qty("link.efficiency", "dimensionless", required=False)
    bandwidth = r.qty("link.bandwidth", "bytes_per_s")
    if not bandwidth or not (eff is None or 0 < eff <= 1):
        raise CatalogError(f"{path.name}: link.bandwidth = {bandwidth:g} and link.efficiency = {eff}; expected "
                           "a bandwidth > 0 and an efficiency in (0, 1]")
    return Link(
        id=link_id,
        name=r.text("meta.name"),
        bandwidth_bytes_per_s=bandwidth,  # type: ignore[arg-type]
        latency_s=r.qty("link.latency", "s"),  # type: ignore[arg-type]
        algorithm=algo,
        efficiency=eff if eff is not None else 0.8,
    )


def _count(r: _Reader, dotted: str, *, required: bool = True, default: int = 1) -> int:
    v = r.qty(dotted, "count", required=required)
    if v is None:
        return default
    if v < 1 or v != int(v):
        raise CatalogError(f"{r.where(dotted)}: expected a whole number >= 1, got {v}")
    return int(v)


@functools.cache
def load_system(system_id: str) -> System:
    path = _path("systems", system_id, "system")
    r = _Reader(path, read_toml(path))
    _check_meta(r, system_id)
    return system_from(r, system_id, r.text("meta.name"))


def system_from(r: _Reader, system_id: str, name: str) -> System:
    """Build a System from the ``[system]`` table of a systems file or of a user's chip file."""
    out_id = r.text("system.scale_out_link", required=False)
    return System(
        id=system_id,
        name=name,
        chips_per_node=_count(r, "system.chips_per_node"),
        scale_up_domain=_count(r, "system.scale_up_domain"),
        scale_up=load_link(r.text("system.scale_up_link")),
        scale_out=load_link(out_id) if out_id else None,
        host_power_per_chip_w=r.qty("system.host_power_per_chip", "w"),  # type: ignore[arg-type]
        host_price_per_chip_usd=r.qty("system.host_price_per_chip", "usd"),  # type: ignore[arg-type]
        max_chips=_count(r, "system.max_chips", required=False, default=1_000_000),
        torus_dims=_count(r, "system.torus_dims", required=False, default=0),
    )


def _memory(r: _Reader) -> tuple[MemoryTier, ...]:
    tiers = r.node("memory")
    if not isinstance(tiers, dict) or not tiers:
        raise CatalogError(f"{r.path.name}: 'memory' must hold at least one tier table")
    out = []
    for name in tiers:
        kind = r.text(f"memory.{name}.kind")
        if kind not in ("sram", "hbm", "ddr"):
            raise CatalogError(f"{r.where(f'memory.{name}.kind')}: {kind!r} is not one of sram, hbm, ddr")
        out.append(MemoryTier(name, kind, r.qty(f"memory.{name}.capacity", "bytes"),  # type: ignore[arg-type]
                              r.qty(f"memory.{name}.bandwidth", "bytes_per_s")))  # type: ignore[arg-type]
    return tuple(out)


def _microarch(r: _Reader) -> dict[str, float]:
    """Family-specific microarchitecture numbers. Keys end in their unit (``_hz``, ``_bytes``...)."""
    tab = r.subtable("microarch")
    dims = {"_hz": "hz", "_bytes": "bytes", "_s": "s", "_cycles": "cycles", "_w": "w",
            "_bytes_per_s": "bytes_per_s", "_flop_per_s": "flop_per_s"}
    out = {}
    for key in tab:
        expect = "count"
        for suffix, dim in sorted(dims.items(), key=lambda kv: -len(kv[0])):
            if key.endswith(suffix):
                expect = dim
                break
        out[key] = r.qty(f"microarch.{key}", expect)
    return out  # type: ignore[return-value]


def _calibrated(chip_id: str, provenance: dict[str, Sourced]) -> dict[str, float]:
    """Fitted efficiencies from ``data/calibration/<chip>.toml`` (written by `siliconsim
    calibrate`); they override the chip file's priors and must carry basis ``calibrated``."""
    path = DATA / "calibration" / f"{chip_id}.toml"
    if not path.is_file():
        return {}
    r = _Reader(path, read_toml(path))
    tab = r.subtable("efficiency")
    out = {}
    for k in tab:
        if k not in EFFICIENCY_DIMS:
            raise CatalogError(f"{path.name}: unknown efficiency key {k!r}; expected {sorted(EFFICIENCY_DIMS)}")
        s = sourced(tab[k], EFFICIENCY_DIMS[k], r.where(f"efficiency.{k}"))
        if s.basis != "calibrated":
            raise CatalogError(f"{path.name}: efficiency.{k}.basis is {s.basis!r}, expected 'calibrated'")
        provenance[f"efficiency.{k}"] = s
        out[k] = s.value
    return out


# Quantities the step models divide by: zero would be a division by zero, not a slow chip.
_NONZERO_SUFFIXES = (".capacity", ".bandwidth")


def _check_rates(r: _Reader, efficiency: dict[str, float]) -> None:
    """Peaks, capacities, bandwidths, microarchitecture numbers and efficiency fractions are > 0;
    compute and memory efficiencies are fractions of peak, so at most 1."""
    for dotted, s in r.provenance.items():
        nonzero = dotted.startswith(("compute.dense.", "microarch.")) or dotted.endswith(_NONZERO_SUFFIXES)
        if nonzero and s.value <= 0:
            raise CatalogError(f"{r.where(dotted)}: {s.value:g}, expected a quantity > 0")
    for key in ("compute", "memory", "moe", "moe_memory", "kv_memory", "network"):
        v = efficiency.get(key)
        ratio = key.startswith(("moe", "kv", "network"))  # relative to the dense kernels or the link: may exceed 1
        if v is not None and not (0 < v <= (math.inf if ratio else 1.0)):
            bound = "> 0" if ratio else "in (0, 1] (a fraction of peak)"
            raise CatalogError(f"{r.path.name}: efficiency.{key} = {v:g}, expected a value {bound}")


def clear_caches() -> None:
    """Forget parsed files (after `siliconsim calibrate` rewrites calibration data)."""
    for fn in (load_chip, load_link, load_system):
        fn.cache_clear()


@functools.cache
def load_chip(chip_id: str) -> Chip:
    """A catalog chip by id. (A user's chip file, or ``--set`` what-ifs: ``hardware.custom``.)"""
    path = _path("chips", chip_id, "hardware")
    r = _Reader(path, read_toml(path))
    _check_meta(r, chip_id)
    return chip_from(r, chip_id, calibration_id=chip_id)


def chip_from(r: _Reader, chip_id: str, *, calibration_id: str | None, system: System | None = None,
              keep: frozenset[str] = frozenset(), what_if: tuple[str, ...] = ()) -> Chip:
    """Build a Chip from a parsed chip file. ``calibration_id``: whose fitted efficiencies
    (``data/calibration/<id>.toml``) override the file's priors, except the keys in ``keep``
    (efficiencies the user set by hand); ``system``: defaults to the catalog system ``meta.system``."""
    family = r.text("meta.family")
    if family not in FAMILIES:
        raise CatalogError(f"{r.where('meta.family')}: {family!r} is not one of {', '.join(FAMILIES)}")
    dense = r.table("compute.dense", "flop_per_s")
    if not dense:
        raise CatalogError(f"{r.path.name}: 'compute.dense' must give at least one dtype's peak")
    eff_tab = r.subtable("efficiency")
    unknown = set(eff_tab) - set(EFFICIENCY_DIMS)
    if unknown:
        raise CatalogError(f"{r.path.name}: unknown efficiency key(s) {sorted(unknown)}; "
                           f"expected {sorted(EFFICIENCY_DIMS)}")
    efficiency = {k: r.qty(f"efficiency.{k}", EFFICIENCY_DIMS[k]) for k in eff_tab}
    if calibration_id is not None:
        fitted = _calibrated(calibration_id, r.provenance)
        efficiency.update({k: v for k, v in fitted.items() if f"efficiency.{k}" not in keep})
    tdp_w = r.qty("power.tdp", "w")
    full_clock_w = r.qty("power.full_clock", "w", required=False)
    if full_clock_w is not None and not full_clock_w >= tdp_w:  # type: ignore[operator]
        raise CatalogError(f"{r.where('power.full_clock')}: {full_clock_w:g} W, expected at least power.tdp "
                           f"({tdp_w:g} W): the draw at full clock, which the TDP may cap but not exceed")
    _check_rates(r, efficiency)
    return Chip(
        id=chip_id,
        name=r.text("meta.name"),
        vendor=r.text("meta.vendor"),
        family=family,
        description=r.text("meta.description"),
        dense_flop_per_s=dense,
        headline_flop_per_s=r.table("compute.headline", "flop_per_s"),
        memory=_memory(r),
        tdp_w=tdp_w,  # type: ignore[arg-type]
        full_clock_power_w=full_clock_w,
        price_usd=r.qty("cost.price", "usd"),  # type: ignore[arg-type]
        system=system or load_system(r.text("meta.system")),
        die_area_m2=r.qty("physical.die_area", "m2", required=False),
        efficiency=efficiency,  # type: ignore[arg-type]
        microarch=_microarch(r),
        provenance=r.provenance,
        sources=tuple(r.node("meta.sources")),
        notes=r.text("meta.notes", required=False),
        what_if=what_if,
    )


def chip_ids() -> list[str]:
    return _ids("chips")


def link_ids() -> list[str]:
    return _ids("links")


def system_ids() -> list[str]:
    return _ids("systems")
