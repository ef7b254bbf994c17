"""Parameter groups and priors of the calibration fit (see ``fit.toml``)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from siliconsim.hardware.catalog import DATA as HW_DATA
from siliconsim.hardware.catalog import EFFICIENCY_DIMS, read_toml, sourced

KEYS = tuple(EFFICIENCY_DIMS)  # compute, memory, kernel_overhead, step_overhead
FIT_FILE = Path(str(resources.files("siliconsim.calibration") / "data" / "fit.toml"))


@dataclass(frozen=True)
class Group:
    name: str
    chips: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class FitConfig:
    groups: tuple[Group, ...]
    sigma: dict[str, float]
    max_iterations: int
    log_step: float
    unpredicted_residual: float

    def group_of(self, chip_id: str) -> Group | None:
        return next((g for g in self.groups if chip_id in g.chips), None)

    @property
    def n_parameters(self) -> int:
        return len(self.groups) * len(KEYS)


@functools.cache
def fit_config() -> FitConfig:
    doc = read_toml(FIT_FILE)
    groups = tuple(Group(name, tuple(g["chips"]), g.get("why", "")) for name, g in doc["groups"].items())
    s = doc["solver"]
    return FitConfig(groups, {k: float(doc["prior_sigma"][k]) for k in KEYS}, int(s["max_iterations"]),
                     float(s["log_step"]), float(s["unpredicted_residual"]))


@functools.cache
def prior_efficiency(chip_id: str) -> dict[str, float]:
    """The chip file's own ``[efficiency]`` values (the priors), ignoring any calibration overlay."""
    path = HW_DATA / "chips" / f"{chip_id}.toml"
    table = read_toml(path).get("efficiency", {})
    return {k: sourced(table[k], EFFICIENCY_DIMS[k], f"{path.name}: efficiency.{k}").value for k in KEYS if k in table}


def overrides_for(group: Group, theta: dict[str, float]) -> dict[str, dict[str, float]]:
    """Efficiency values of every chip in ``group`` at log-multipliers ``theta``."""
    out = {}
    for chip in group.chips:
        prior = prior_efficiency(chip)
        out[chip] = {k: prior[k] * math.exp(theta.get(k, 0.0)) for k in KEYS if k in prior}
    return out
