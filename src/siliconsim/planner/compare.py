"""Compare systems for one model and request shape: one row per system at its smallest
feasible size, sorted by the latency a user sees (TTFT + remaining tokens × TPOT). A system that
keeps weights and KV cache in on-chip SRAM is sized at the cheapest of a few multiples of its
smallest size (``compare.toml`` ``sram_size_factors``): its smallest size has no room for a batch.

Cost and power are priced at a loaded operating point chosen by an SLO (a workload preset's
p99 TTFT and TPOT, default code-completion): the batch with the most throughput whose closed-form
p99s meet it (``serving.approx.operating_point``). Where no batch meets it, the requested
scenario itself is priced and the row says so."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from siliconsim.accounting import Accounting, CostAssumptions, account
from siliconsim.accounting.power import power_limited
from siliconsim.accounting.pricing import Pricing
from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml
from siliconsim.hardware.custom import resolve_chip
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Estimate, Scenario, estimate, estimate_on
from siliconsim.models.spec import ModelSpec
from siliconsim.serving.approx import operating_point
from siliconsim.workloads import load_preset

DATA = Path(str(resources.files("siliconsim.planner") / "data"))


@dataclass(frozen=True)
class CompareDefaults:
    model: str
    systems: tuple[str, ...]
    scenario: Scenario
    slo: str  # workload preset whose p99 SLO picks the priced operating point
    sram_size_factors: tuple[float, ...] = (1.0,)  # sizes tried for SRAM-resident systems (x the smallest)


@functools.cache
def compare_defaults() -> CompareDefaults:
    path = DATA / "compare.toml"
    t = read_toml(path).get("compare")
    if not isinstance(t, dict):
        raise CatalogError(f"{path.name}: missing table [compare]")
    factors = t.get("sram_size_factors", [1.0])
    if not (isinstance(factors, list) and factors and all(isinstance(f, (int, float)) and f >= 1 for f in factors)):
        raise CatalogError(f"{path.name}: compare.sram_size_factors = {factors!r}; expected a list of multiples "
                           ">= 1 of the smallest size")
    try:
        return CompareDefaults(str(t["model"]), tuple(t["systems"]),
                               Scenario(t["batch"], t["input_tokens"], t["output_tokens"]), str(t["slo"]),
                               tuple(float(f) for f in factors))
    except KeyError as exc:
        raise CatalogError(f"{path.name}: missing compare.{exc.args[0]}") from None


@dataclass(frozen=True)
class Row:
    """One system: the requested scenario, and the loaded operating point its cost is priced at."""

    hardware_id: str
    estimate: Estimate
    accounting: Accounting | None
    loaded: Estimate | None = None
    note: str = ""  # how the priced operating point was chosen
    what_if: tuple[str, ...] = ()  # the chip's what-if changes (Chip.what_if)

    @property
    def request_latency_s(self) -> float:
        e = self.estimate
        return e.ttft_s + (e.scenario.output_tokens - 1) * e.tpot_s


def evaluate(model: ModelSpec, hardware: str | Chip, scenario: Scenario, *, chips: int | None = None,
             dtype: str | None = None, assumptions: CostAssumptions | None = None, slo: str | None = None,
             speculation: Any = None, pricing: Pricing | None = None, power_limit_w: float | None = None) -> Row:
    """Estimate one system; account for it at the scenario itself or, with ``slo`` (a workload
    preset), at the highest-throughput batch whose closed-form p99s meet that preset's SLO. With
    ``power_limit_w`` the chips run at that power limit (``accounting.power.power_limited``)."""
    # a catalog id, a chip file, or a built (what-if) Chip; at the run's power limit
    chip = power_limited(resolve_chip(hardware), power_limit_w, assumptions)
    hardware_id = chip.id
    if speculation is not None:
        from siliconsim.speculative import speculative_estimate

        est = speculative_estimate(model, chip, scenario, speculation, chips=chips, dtype=dtype)
    else:
        est = estimate(model, chip, scenario, chips=chips, dtype=dtype)
    if not est.feasible or est.decode is None or est.deployment is None:
        return Row(hardware_id, est, None, what_if=chip.what_if)
    point, note = est, f"priced at the requested batch {scenario.batch:g}"
    if slo is not None:
        point, note = _slo_point(model, est, slo)
    acct = price(point, assumptions, pricing, power_limit_w)
    return Row(hardware_id, est, acct, point if slo is not None else None, note, chip.what_if)


def _slo_point(model: ModelSpec, est: Estimate, slo: str) -> tuple[Estimate, str]:
    """The busiest batch on ``est``'s deployment whose closed-form p99s meet ``slo``'s limits."""
    preset = load_preset(slo)
    dep, sc = est.deployment, est.scenario
    op = operating_point(dep, sc.input_tokens, sc.output_tokens, preset.slo_ttft_s, preset.slo_tpot_s)  # type: ignore[arg-type]
    limits = f"{slo} SLO (p99 TTFT {preset.slo_ttft_s * 1e3:g} ms, TPOT {preset.slo_tpot_s * 1e3:g} ms)"
    if not op.feasible:
        return est, f"no batch meets the {limits}: priced at the requested batch {sc.batch:g}"
    # priced on the deployment the batch was found on (re-planning at that batch could choose another
    # layout, or none where the planner's fit is stricter than the KV-cache count)
    loaded = estimate_on(dep, Scenario(op.batch, sc.input_tokens, sc.output_tokens), est.replicas)  # type: ignore[arg-type]
    return loaded, f"priced at batch {op.batch:g}, the busiest meeting the {limits}"


def price(point: Estimate, assumptions: CostAssumptions | None = None, pricing: Pricing | None = None,
          power_limit_w: float | None = None) -> Accounting:
    """Power and money of one operating point; input tokens pay for the prefill share of the chip time."""
    sc = point.scenario
    cycle = point.ttft_s + sc.output_tokens * point.tpot_s
    return account(point.deployment.chip, point.chips, point.decode, point.aggregate_output_tok_s, assumptions,  # type: ignore[union-attr, arg-type]
                   pricing=pricing, prefill_share=point.ttft_s / cycle, input_per_output=sc.input_tokens / sc.output_tokens,
                   power_limit_w=power_limit_w)


def _sram_resident(row: Row) -> bool:
    """Weights and KV cache in on-chip SRAM (no HBM or DDR tier): more chips than the weights need
    buy KV room for a batch, which replicas cannot (each replica needs the same chips again)."""
    dep = row.estimate.deployment
    return dep is not None and all(t.kind == "sram" for t in dep.chip.memory)


def _sized(row: Row, model: ModelSpec, hw: str | Chip, scenario: Scenario, kw: dict[str, Any]) -> Row:
    """An SRAM-resident ``row`` at the cheapest (blended $/Mtok) of ``sram_size_factors`` times its
    smallest size; any other row as it is."""
    if row.accounting is None or not _sram_resident(row):
        return row
    smallest = row.estimate.deployment.par.chips  # type: ignore[union-attr]
    best = row
    for f in compare_defaults().sram_size_factors:
        n = math.ceil(smallest * f)
        if n == smallest:
            continue
        r = evaluate(model, hw, scenario, chips=n, **kw)
        if r.accounting is not None and r.accounting.usd_per_mtok_blended < best.accounting.usd_per_mtok_blended:  # type: ignore[union-attr]
            best = r
    if best is row:
        return row
    n = best.estimate.deployment.par.chips  # type: ignore[union-attr]
    top = math.ceil(smallest * max(compare_defaults().sram_size_factors))
    return replace(best, note=f"{best.note}; sized at {n} chips, the cheapest of {smallest}-{top} (the fewest "
                              "that hold the weights leave SRAM for few users' KV cache)")


def compare(model: ModelSpec, hardware_ids: list[str | Chip], scenario: Scenario, *, dtype: str | None = None,
            assumptions: CostAssumptions | None = None, slo: str | None = None, pricing: Pricing | None = None,
            progress: Any = None, power_limit_w: float | None = None) -> list[Row]:
    """One row per system; feasible rows first, fastest request first."""
    slo = slo or compare_defaults().slo
    rows = []
    for hw in hardware_ids:
        kw = dict(dtype=dtype, assumptions=assumptions, slo=slo, pricing=pricing, power_limit_w=power_limit_w)
        rows.append(_sized(evaluate(model, hw, scenario, **kw), model, hw, scenario, kw))  # type: ignore[arg-type]
        if progress:
            progress()
    return sorted(rows, key=lambda r: (not r.estimate.feasible, r.request_latency_s if r.estimate.feasible else 0.0))
