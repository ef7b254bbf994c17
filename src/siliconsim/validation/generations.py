"""Software generations: old engine versions a suite row ran on (``data/generations.toml``).

A published measurement is a property of the silicon and of the software of its day. Rows from a
benchmark whose documentation names an older engine generation (``benchmarks.toml``
``generation``) are predicted on that generation's kernels: the chip's (fitted) efficiencies times
the generation's multipliers (``compute``, ``kernel_overhead``, ``kv_memory``), which
``siliconsim calibrate`` fits on that generation's rows alone and writes to
``data/generations_calibrated.toml``, plus its structural differences (decode attention that reads
each KV head once per query head before TensorRT-LLM's XQA kernel; tensor-parallel all-reduces
through NCCL, costed by NCCL's own tuning model, before its one-shot custom all-reduce). Today's
estimates never use a generation: it only keeps old rows from pulling the current efficiencies
toward old engines.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip, Link
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.hbm import OPTIONAL_EFFICIENCY
from siliconsim.validation.benchmarks import benchmark_of, sourced_flag
from siliconsim.validation.suite import DATA, Case

GENERATIONS_FILE = DATA / "generations.toml"
CALIBRATED_FILE = DATA / "generations_calibrated.toml"
KEYS = ("compute", "kernel_overhead", "kv_memory")  # the multipliers a generation may carry

Multipliers = Mapping[str, Mapping[str, float]]  # generation id -> {key: multiplier on the chip's value}


@dataclass(frozen=True)
class Generation:
    id: str
    engine: str
    versions: str
    why: str
    kv_reads_per_query_head: bool
    nccl_allreduce: bool  # all-reduces through NCCL's ring (``Nccl``), not the link's own algorithm
    prior_sigma: dict[str, float]  # natural-log prior width of each fitted multiplier
    prior: dict[str, float]  # prior value of a multiplier where it is not 1

    def prior_of(self, key: str) -> float:
        return self.prior.get(key, 1.0)


@dataclass(frozen=True)
class Nccl:
    """NCCL's tuning model of a ring all-reduce inside an NVLink node (``[nccl]``)."""

    base_latency_s: float  # baseLat: per call
    step_latency_s: float  # hwLat: per ring step

    def on(self, link: Link) -> Link:
        """``link`` with NCCL's ring in place of its own algorithm; the bandwidth term is the link's."""
        return replace(link, algorithm="ring", latency_s=self.step_latency_s, base_latency_s=self.base_latency_s)


@functools.cache
def nccl(path: Path = GENERATIONS_FILE) -> Nccl:
    table = read_toml(path).get("nccl")
    if not isinstance(table, dict):
        raise CatalogError(f"{path.name}: lacks the [nccl] table (base_latency, step_latency)")
    unknown = sorted(set(table) - {"why", "base_latency", "step_latency"})
    if unknown:
        raise CatalogError(f"{path.name}: nccl.{unknown[0]} is not a known field (expected why, base_latency, "
                           "step_latency)")
    lat = {k: sourced(table.get(k), "s", f"{path.name}: nccl.{k}").value for k in ("base_latency", "step_latency")}
    return Nccl(lat["base_latency"], lat["step_latency"])


@functools.cache
def generations(path: Path = GENERATIONS_FILE) -> dict[str, Generation]:
    """Every generation of ``path`` by id."""
    out = {}
    fields = ("engine", "versions", "why", "kv_reads_per_query_head", "nccl_allreduce", "prior", "prior_sigma")
    for gid, table in read_toml(path).get("generations", {}).items():
        where = f"{path.name}: generations.{gid}"
        unknown = sorted(set(table) - set(fields))
        if unknown:
            raise CatalogError(f"{where}: unknown field '{unknown[0]}' (expected {', '.join(fields)})")
        kv = sourced_flag(table.get("kv_reads_per_query_head"), f"{where}.kv_reads_per_query_head")
        ring = sourced_flag(table.get("nccl_allreduce"), f"{where}.nccl_allreduce")
        if ring:
            nccl(path)  # a generation that uses it needs the table
        sigma = table.get("prior_sigma", {})
        bad = [k for k, v in sigma.items() if k not in KEYS or not isinstance(v, (int, float)) or v <= 0]
        if bad:
            raise CatalogError(f"{where}.prior_sigma.{bad[0]}: expected one of {', '.join(KEYS)} with a positive "
                               f"width, got {sigma[bad[0]]!r}")
        prior = {}
        for k, v in table.get("prior", {}).items():
            if k not in KEYS:
                raise CatalogError(f"{where}.prior.{k}: expected one of {', '.join(KEYS)}")
            prior[k] = sourced(v, "dimensionless", f"{where}.prior.{k}").value
            if not prior[k] > 0:
                raise CatalogError(f"{where}.prior.{k}.value: expected a positive multiplier, got {prior[k]!r}")
        out[gid] = Generation(gid, str(table.get("engine", "")), str(table.get("versions", "")),
                              " ".join(str(table.get("why", "")).split()),
                              bool(kv), bool(ring),
                              {k: float(v) for k, v in sigma.items()}, prior)
    return out


def generation_of(case: Case) -> Generation | None:
    """The software generation a row ran on (its benchmark's), or None for current engines."""
    bench = benchmark_of(case)
    if bench is None or not bench.generation:
        return None
    gens = generations()
    if bench.generation not in gens:
        raise CatalogError(f"benchmarks.toml: {bench.name}.generation {bench.generation!r} is not in "
                           f"{GENERATIONS_FILE.name} (known: {', '.join(sorted(gens)) or 'none'})")
    return gens[bench.generation]


@functools.cache
def calibrated(path: Path = CALIBRATED_FILE) -> dict[str, dict[str, float]]:
    """The fitted multipliers per generation (empty before the first ``siliconsim calibrate``)."""
    if not path.exists():
        return {}
    out: dict[str, dict[str, float]] = {}
    for gid, table in read_toml(path).get("generations", {}).items():
        out[gid] = {}
        for k, v in table.items():
            where = f"{path.name}: generations.{gid}.{k}"
            if k not in KEYS:
                raise CatalogError(f"{where}: expected one of {', '.join(KEYS)}")
            out[gid][k] = sourced(v, "dimensionless", where).value
            if not out[gid][k] > 0:
                raise CatalogError(f"{where}.value: expected a positive multiplier, got {out[gid][k]!r}")
    return out


def on_generation(chip: Chip, model: ModelSpec, gen: Generation, multipliers: Mapping[str, float]) -> Chip:
    """``chip`` as the generation's kernels ran it: its efficiencies times the multipliers (the
    generation's priors where ``multipliers`` has none), a grouped-query model's KV reads
    repeated per query head where the generation's decode attention did, and its scale-up
    collectives on NCCL's ring where the generation all-reduced through NCCL."""
    eff = dict(chip.efficiency)
    for k in KEYS:
        base = eff.get(k, OPTIONAL_EFFICIENCY.get(k))
        if base is not None:
            eff[k] = base * multipliers.get(k, gen.prior_of(k))
    if gen.kv_reads_per_query_head and not model.is_mla and model.n_kv_heads < model.n_heads:
        eff["kv_memory"] = eff.get("kv_memory", 1.0) * model.n_kv_heads / model.n_heads
    if gen.nccl_allreduce:
        chip = replace(chip, system=replace(chip.system, scale_up=nccl().on(chip.system.scale_up)))
    return replace(chip, efficiency=eff)


def calibrated_toml(fits: Mapping[str, Mapping[str, float]], rows: Mapping[str, tuple[str, ...]],
                    rms: Mapping[str, float], today: str) -> str:
    """The fitted multipliers file written by ``siliconsim calibrate``."""
    lines = ["# Written by `siliconsim calibrate`: multipliers of each software generation (generations.toml) on the",
             "# chip's fitted efficiencies, fitted on that generation's suite rows alone. Do not edit by hand.", "",
             "[meta]", f'retrieved = "{today}"', ""]
    for gid, mult in sorted(fits.items()):
        ids = ", ".join(rows.get(gid, ()))
        lines.append(f"[generations.\"{gid}\"]")
        for k in KEYS:
            if k in mult:
                lines.append(f'{k} = {{ value = {mult[k]:.4g}, basis = "calibrated", source = "siliconsim calibrate '
                             f'{today}: fitted on {len(rows.get(gid, ()))} rows ({ids}); RMS log residual '
                             f'{rms.get(gid, float("nan")):.3f}" }}')
        lines.append("")
    return "\n".join(lines)
