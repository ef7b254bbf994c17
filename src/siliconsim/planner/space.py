"""What the planner searches: the problem (model, demand, SLO, money and power settings) and the
tasks it splits into, one per hardware x layout x precision x serving mode x speculation.

A task is the unit the executors ship to workers and the checkpoint records: small, hashable,
and turned into a stable string key. Its batch axis (and, from the demand, its replica count) is
evaluated inside the task as one vectorised call (``planner.closed_form``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

from siliconsim.accounting import CostAssumptions, default_assumptions
from siliconsim.accounting.pricing import Pricing
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Chip
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import BYTES_PER_ELEMENT, ModelSpec
from siliconsim.perf.families import get_family
from siliconsim.perf.step import Parallel, decode_context
from siliconsim.planner.compare import DATA

MODES = ("aggregated", "disaggregated")
LOW_PRECISIONS = ("fp8", "int8", "fp4")  # tried below the model's native precision where the chip runs them


@functools.cache
def planner_constants() -> dict[str, float]:
    path = DATA / "planner.toml"
    table = read_toml(path)["planner"]
    return {k: sourced(v, "dimensionless", f"{path.name}: planner.{k}").value for k, v in table.items()}


@dataclass(frozen=True)
class Problem:
    """Everything a worker needs to evaluate tasks (picklable: ids and numbers only)."""

    model: str  # id or path of a HF config.json
    hardware: tuple[str, ...]
    input_tokens: float
    output_tokens: float
    rate_per_s: float
    ttft_p99_s: float
    tpot_p99_s: float
    max_chips: int = 4096
    pricing: Pricing = Pricing("capex")
    assumptions: CostAssumptions = field(default_factory=default_assumptions)
    chip_power_limit_w: float | None = None
    modes: tuple[str, ...] = MODES
    long_input_tokens: float | None = None  # p99 prompt (default: the mean): sizes the prefill stall
    short_output_tokens: float | None = None  # p10 output (default: the mean): who feels a stall most
    # mean context of a decode step's sequences (length-biased where lengths vary; default input + output / 2)
    decode_context_tokens: float | None = None
    what_if: tuple[str, ...] = ()  # --set KEY=VALUE changes for the hardware written "ref*"

    def chip(self, hardware: str) -> Chip:
        """The chip behind a hardware entry: a catalog id, a chip TOML path, or ``ref*``, the
        what-if variant of ``ref`` with this problem's ``--set`` changes (resolved in each worker)."""
        return _chip(hardware[:-1], self.what_if) if hardware.endswith("*") else _chip(hardware, ())

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "rate_per_s", "ttft_p99_s", "tpot_p99_s", "max_chips"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"{name}: expected a number > 0, got {v!r}")
        if not self.hardware:
            raise InputError("hardware: expected at least one hardware id")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise InputError(f"modes: {bad[0]!r} is not one of {', '.join(MODES)}")

    @property
    def context_tokens(self) -> float:
        return self.input_tokens + self.output_tokens

    @property
    def decode_context(self) -> float:
        return decode_context(self.input_tokens, self.output_tokens, self.decode_context_tokens)

    def describe(self) -> dict:
        d = asdict(self)
        d["pricing"] = self.pricing.describe()
        return d


@dataclass(frozen=True, order=True)
class Task:
    hardware: str
    tp: int
    pp: int
    ep: int
    attn_dp: bool
    dtype: str
    mode: str
    speculative: bool

    @property
    def par(self) -> Parallel:
        return Parallel(self.tp, self.pp, self.ep, self.attn_dp)

    @property
    def key(self) -> str:
        return (f"{self.hardware}|{self.tp}|{self.pp}|{self.ep}|{int(self.attn_dp)}|{self.dtype}|{self.mode}|"
                f"{int(self.speculative)}")

    @classmethod
    def from_key(cls, key: str) -> "Task":
        hw, tp, pp, ep, dp, dtype, mode, spec = key.split("|")
        return cls(hw, int(tp), int(pp), int(ep), dp == "1", dtype, mode, spec == "1")


def precisions(model: ModelSpec, chip: Chip) -> list[str]:
    """The model's native weight precision, and lower ones the chip has a native rate for."""
    native = model.native_dtype
    out = [native]
    for d in LOW_PRECISIONS:  # one format per width: fp8 before int8 (same bytes and, on most chips, rate)
        width = BYTES_PER_ELEMENT[d]
        if d in chip.dense_flop_per_s and width < BYTES_PER_ELEMENT.get(native, 2.0) \
                and all(BYTES_PER_ELEMENT[x] != width for x in out):
            out.append(d)
    return out


def hardware_tasks(problem: Problem, hardware_id: str) -> list[Task]:
    """Every task of one hardware (layouts no larger than ``max_chips``); [] when none exists."""
    model, chip = load_model(problem.model), problem.chip(hardware_id)
    family = get_family(chip.family)
    if family is None:
        return []
    specs = (False, True) if model.mtp_layers > 0 else (False,)
    pars = [p for p in family.candidates(model, chip, None) if p.chips <= problem.max_chips]
    return [Task(hardware_id, p.tp, p.pp, p.ep, p.attn_dp, d, m, s)
            for p in pars for d in precisions(model, chip) for m in problem.modes for s in specs]


def tasks(problem: Problem) -> list[Task]:
    """All tasks in a stable order (hardware as given, then layout, precision, mode, speculation)."""
    return [t for hw in problem.hardware for t in hardware_tasks(problem, hw)]


@functools.lru_cache(maxsize=64)
def _chip(ref: str, what_if: tuple[str, ...]) -> Chip:
    from siliconsim.hardware.custom import resolve_chip

    return resolve_chip(ref, what_if)
