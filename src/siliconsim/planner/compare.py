"""Compare systems for one model and request shape: one row per system at its smallest
feasible size, sorted by the latency a user sees (TTFT + remaining tokens × TPOT)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from siliconsim.accounting import Accounting, CostAssumptions, account
from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml
from siliconsim.hardware.custom import resolve_chip
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Estimate, Scenario, estimate, max_throughput
from siliconsim.models.spec import ModelSpec

DATA = Path(str(resources.files("siliconsim.planner") / "data"))


@dataclass(frozen=True)
class CompareDefaults:
    model: str
    systems: tuple[str, ...]
    scenario: Scenario
    loaded_tpot_factor: float


@functools.cache
def compare_defaults() -> CompareDefaults:
    path = DATA / "compare.toml"
    t = read_toml(path).get("compare")
    if not isinstance(t, dict):
        raise CatalogError(f"{path.name}: missing table [compare]")
    try:
        return CompareDefaults(str(t["model"]), tuple(t["systems"]),
                               Scenario(t["batch"], t["input_tokens"], t["output_tokens"]),
                               float(t["loaded_tpot_factor"]))
    except KeyError as exc:
        raise CatalogError(f"{path.name}: missing compare.{exc.args[0]}") from None


@dataclass(frozen=True)
class Row:
    """One system: the requested scenario, and the loaded operating point its cost is priced at."""

    hardware_id: str
    estimate: Estimate
    accounting: Accounting | None
    loaded: Estimate | None = None
    what_if: tuple[str, ...] = ()  # the chip's what-if changes (Chip.what_if)

    @property
    def request_latency_s(self) -> float:
        e = self.estimate
        return e.ttft_s + (e.scenario.output_tokens - 1) * e.tpot_s


def evaluate(model: ModelSpec, hardware: str | Chip, scenario: Scenario, *, chips: int | None = None,
             dtype: str | None = None, assumptions: CostAssumptions | None = None,
             loaded_tpot_factor: float | None = None, speculation: Any = None) -> Row:
    """Estimate one system; account for it at the scenario itself or, with
    ``loaded_tpot_factor``, at the highest-throughput batch whose TPOT stays within that factor
    of the scenario's."""
    chip = resolve_chip(hardware)
    hardware_id = chip.id
    if speculation is not None:
        from siliconsim.speculative import speculative_estimate

        est = speculative_estimate(model, chip, scenario, speculation, chips=chips, dtype=dtype)
    else:
        est = estimate(model, chip, scenario, chips=chips, dtype=dtype)
    if not est.feasible or est.decode is None or est.deployment is None:
        return Row(hardware_id, est, None, what_if=chip.what_if)
    if loaded_tpot_factor is None:
        acct = account(chip, est.chips, est.decode, est.aggregate_output_tok_s, assumptions)
        return Row(hardware_id, est, acct, what_if=chip.what_if)
    dep = est.deployment
    loaded = max_throughput(model, chip, scenario.input_tokens, scenario.output_tokens, chips=dep.par.chips,
                            dtype=dep.dtype, kv_dtype=dep.kv_dtype, max_tpot_s=loaded_tpot_factor * est.tpot_s)
    point = loaded if loaded.feasible and loaded.decode is not None else est
    acct = account(chip, point.chips, point.decode, point.aggregate_output_tok_s, assumptions)  # type: ignore[arg-type]
    return Row(hardware_id, est, acct, point, chip.what_if)


def compare(model: ModelSpec, hardware_ids: list[str | Chip], scenario: Scenario, *, dtype: str | None = None,
            assumptions: CostAssumptions | None = None, loaded_tpot_factor: float | None = None,
            progress: Any = None) -> list[Row]:
    """One row per system; feasible rows first, fastest request first."""
    factor = loaded_tpot_factor or compare_defaults().loaded_tpot_factor
    rows = []
    for hw in hardware_ids:
        rows.append(evaluate(model, hw, scenario, dtype=dtype, assumptions=assumptions, loaded_tpot_factor=factor))
        if progress:
            progress()
    return sorted(rows, key=lambda r: (not r.estimate.feasible, r.request_latency_s if r.estimate.feasible else 0.0))
