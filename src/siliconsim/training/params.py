"""Training parameters as data: per-framework overlap and kernels (``data/frameworks.toml``) and
per-chip-family efficiencies (``data/efficiency.toml``, overridden by the fitted
``data/calibrated.toml`` when present)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Mapping

from siliconsim.errors import CatalogError, UnknownIdError
from siliconsim.hardware.catalog import read_toml, sourced

DATA = Path(str(resources.files("siliconsim.training") / "data"))
FRAMEWORK_KEYS = ("flash_attention", "tp_overlap", "dp_overlap", "pp_overlap", "ep_overlap", "step_overhead",
                  "pp_bubble_factor")
EFFICIENCY_KEYS = ("matmul", "attention", "memory", "fp8", "moe")


@dataclass(frozen=True)
class Framework:
    id: str
    match: tuple[str, ...]
    flash_attention: bool
    tp_overlap: float
    dp_overlap: float
    pp_overlap: float
    ep_overlap: float
    step_overhead_s: float
    pp_bubble_factor: float
    software: float = 1.0  # fitted software-generation factor on compute rates (calibrated.toml), 1 = priors
    mfu_attention_factor: float = 1.0  # attention term in the MFU the framework reports (MaxText: 0.5, causal)  # fitted software-generation factor on compute rates (calibrated.toml), 1 = priors


@dataclass(frozen=True)
class Efficiency:
    family: str
    matmul: float
    attention: float
    memory: float
    fp8: float
    moe: float

    def scaled(self, factors: Mapping[str, float]) -> "Efficiency":
        return replace(self, **{k: getattr(self, k) * factors.get(k, 1.0) for k in EFFICIENCY_KEYS})


@functools.cache
def frameworks() -> dict[str, Framework]:
    path = DATA / "frameworks.toml"
    out = {}
    for fid, t in read_toml(path).get("frameworks", {}).items():
        where = f"{path.name}: frameworks.{fid}"
        missing = [k for k in FRAMEWORK_KEYS if k not in t]
        if missing or not isinstance(t.get("match"), list):
            raise CatalogError(f"{where}: needs match and {', '.join(FRAMEWORK_KEYS)}")
        v = {k: sourced(t[k], "s" if k == "step_overhead" else "dimensionless", f"{where}.{k}").value
             for k in FRAMEWORK_KEYS}
        for k in ("tp_overlap", "dp_overlap", "pp_overlap", "ep_overlap"):
            if not 0.0 <= v[k] <= 1.0:
                raise CatalogError(f"{where}.{k} = {v[k]}, expected a fraction in [0, 1]")
        out[fid] = Framework(fid, tuple(str(m).lower() for m in t["match"]), bool(v["flash_attention"]),
                             v["tp_overlap"], v["dp_overlap"], v["pp_overlap"], v["ep_overlap"], v["step_overhead"],
                             v["pp_bubble_factor"], calibrated_software().get(fid, 1.0),
                             sourced(t["mfu_attention_factor"], "dimensionless", f"{where}.mfu_attention_factor").value
                             if "mfu_attention_factor" in t else 1.0)
    return out


def framework(ref: str) -> Framework:
    """A framework by id, or the first whose ``match`` keywords occur in ``ref`` (a suite's text)."""
    table = frameworks()
    if ref in table:
        return table[ref]
    low = ref.lower()
    for fw in table.values():
        if any(m in low for m in fw.match):
            return fw
    raise UnknownIdError("framework", ref, table)


def _family_table(path: Path) -> dict[str, tuple[tuple[str, ...], dict[str, float]]]:
    out = {}
    for fam, t in read_toml(path).get("families", {}).items():
        where = f"{path.name}: families.{fam}"
        vals = {k: sourced(t[k], "dimensionless", f"{where}.{k}").value for k in EFFICIENCY_KEYS if k in t}
        for k, v in vals.items():
            if not 0.0 < v <= 1.0:
                raise CatalogError(f"{where}.{k} = {v}, expected a fraction in (0, 1]")
        out[fam] = (tuple(t.get("chips", ())), vals)
    return out


@functools.cache
def efficiency_priors() -> dict[str, Efficiency]:
    table = _family_table(DATA / "efficiency.toml")
    out = {}
    for fam, (_, vals) in table.items():
        missing = [k for k in EFFICIENCY_KEYS if k not in vals]
        if missing:
            raise CatalogError(f"efficiency.toml: families.{fam} lacks {', '.join(missing)}")
        out[fam] = Efficiency(fam, **vals)
    return out


@functools.cache
def chip_families() -> dict[str, str]:
    """chip id -> training family id."""
    out: dict[str, str] = {}
    for fam, (chips, _) in _family_table(DATA / "efficiency.toml").items():
        for c in chips:
            out[c] = fam
    return out


@functools.cache
def calibrated() -> dict[str, dict[str, float]]:
    """Fitted efficiencies (family -> key -> value), empty when not calibrated yet."""
    path = DATA / "calibrated.toml"
    if not path.exists():
        return {}
    return {fam: vals for fam, (_, vals) in _family_table(path).items()}


@functools.cache
def calibrated_software() -> dict[str, float]:
    """Fitted software-generation factors per framework (``[frameworks.ID] software``)."""
    path = DATA / "calibrated.toml"
    if not path.exists():
        return {}
    out = {}
    for fid, t in read_toml(path).get("frameworks", {}).items():
        v = sourced(t["software"], "dimensionless", f"{path.name}: frameworks.{fid}.software").value
        if not 0.0 < v <= 2.0:
            raise CatalogError(f"{path.name}: frameworks.{fid}.software = {v}, expected a factor in (0, 2]")
        out[fid] = v
    return out


def clear_caches() -> None:
    """Forget loaded tables (after calibration rewrites calibrated.toml)."""
    for f in (frameworks, efficiency_priors, chip_families, calibrated, calibrated_software, speed_interval):
        f.cache_clear()


def family_of(chip_id: str) -> str:
    """The training family of a catalog chip; a what-if (``h100-sxm*``) is in its part's family."""
    fam = chip_families().get(chip_id.removesuffix("*"))
    if fam is None:
        raise CatalogError(f"efficiency.toml: chip {chip_id!r} belongs to no training family "
                           f"(families: {', '.join(efficiency_priors())})")
    return fam


def efficiency(chip_id: str, *, use_calibration: bool = True) -> Efficiency:
    fam = family_of(chip_id)
    eff = efficiency_priors()[fam]
    if use_calibration and fam in calibrated():
        eff = replace(eff, **calibrated()[fam])
    return eff


@functools.cache
def speed_interval() -> tuple[float, float] | None:
    """(p10, p90) of the leave-one-group-out log error of predicted speed, from calibrated.toml;
    None before a calibration with leave-one-group-out has run."""
    path = DATA / "calibrated.toml"
    if not path.exists():
        return None
    meta = read_toml(path).get("meta", {})
    if "logo_speed_log_error_p10" not in meta:
        return None
    return float(meta["logo_speed_log_error_p10"]), float(meta["logo_speed_log_error_p90"])
