"""Compare one training job across systems: each at the smallest cluster that meets a deadline,
or at a chip or power budget.

Cluster sizes come from a grid of ``u x 2^k`` and ``u x 3 x 2^k`` chips (``u``: chips per node;
one system for wafers) up to the system's cluster limit. Under a deadline the first size tried
is the one a 40% MFU would need (``GUESS_MFU``); the layout search runs there, then the grid is
walked down re-using that layout's TP/PP/CP/VP/EP/micro-batch/ZeRO/recompute with DP resized
(a full search again only where the re-used layout does not fit), or up with full searches until the
deadline is met or the system's limit is reached; the size chosen gets a full search. Context parallelism is searched only for
sequences longer than ``CP_SEARCH_ABOVE`` tokens (it never wins at shorter ones in this model and
multiplies the search by about six). Wafer clusters are cheap to time, so every grid size is
tried.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from siliconsim.errors import InputError, SiliconsimError
from siliconsim.hardware.custom import resolve_chip
from siliconsim.hardware.spec import Chip
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.ops import model_flop_per_token
from siliconsim.training import Pins, TrainingJob, plan_training
from siliconsim.training.estimate import TrainEstimate

TRAIN_SYSTEMS = ("cs-3", "h100-sxm", "h200", "b200", "gb200-nvl72", "mi300x", "mi355x", "tpu-v5p", "gaudi3")
DEFAULT_DEADLINE_DAYS = 90.0
GUESS_MFU = 0.4
CP_SEARCH_ABOVE = 8192
MAX_GRID_CHIPS = 200_000
POWER_TRIES = 6


@dataclass(frozen=True)
class Target:
    """Exactly one of: a deadline, a chip budget, a power budget (W, chips and hosts)."""

    deadline_s: float | None = None
    chips: int | None = None
    power_w: float | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.deadline_s, self.chips, self.power_w)) != 1:
            raise InputError("give one of a deadline, a chip budget or a power budget")

    def describe(self) -> str:
        if self.deadline_s is not None:
            return f"smallest cluster training within {self.deadline_s / 86400:g} days"
        if self.chips is not None:
            return f"{self.chips} chips each"
        return f"largest cluster within {self.power_w / 1e6:g} MW (chips and hosts, before PUE)"


@dataclass(frozen=True)
class TrainRow:
    hardware_id: str
    estimate: TrainEstimate | None  # the chosen cluster's estimate (None: nothing feasible)
    reason: str  # why nothing is feasible, or why the target is missed ("" when met)
    sizes_tried: int

    @property
    def meets(self) -> bool:
        return self.estimate is not None and not self.reason


def size_grid(chip: Chip) -> list[int]:
    """Cluster sizes tried: u x 2^k and u x 3 x 2^k up to the cluster limit."""
    u = chip.system.chips_per_node
    top = min(chip.system.max_chips, MAX_GRID_CHIPS)
    out = set()
    k = 0
    while u * 2**k <= top:
        out.add(u * 2**k)
        if 3 * u * 2**k <= top:
            out.add(3 * u * 2**k)
        k += 1
    return sorted(out)


@dataclass
class _Timer:
    """Times one job on one system at different sizes; counts the sizes tried."""

    job: TrainingJob
    tried: int = 0
    reason: str = ""  # why the last size tried had no feasible layout

    def at(self, chips: int, pins: Pins | None = None) -> TrainEstimate | None:
        self.tried += 1
        base = Pins() if self.job.seq_len > CP_SEARCH_ABOVE or self.job.chip.family != "hbm" else Pins(cp=1)
        try:
            res = plan_training(replace(self.job, chips=chips), pins or base, keep=1)
        except SiliconsimError as exc:
            self.reason = f"{chips} chips: {str(exc).splitlines()[0]}"
            return None
        if res.best is None:
            self.reason = f"{chips} chips: " + (res.infeasible[0].reason if res.infeasible else "no feasible layout")
        return res.best

    def resized(self, est: TrainEstimate, chips: int) -> TrainEstimate | None:
        """``est``'s layout with DP resized to ``chips`` (a full search where it does not fit)."""
        lay = est.layout
        if self.job.chip.family != "hbm":
            return self.at(chips)
        inner = lay.tp * lay.pp * lay.cp
        if chips % inner:
            return self.at(chips)
        pins = Pins(tp=lay.tp, pp=lay.pp, cp=lay.cp, dp=chips // inner, ep=lay.ep, vp=lay.vp,
                    microbatch=lay.microbatch, zero=lay.zero, recompute=lay.recompute)
        return self.at(chips, pins) or self.at(chips)


def _days(est: TrainEstimate | None) -> float:
    return est.time_to_train_s / 86400.0 if est is not None and est.time_to_train_s else math.inf


def _deadline(t: _Timer, grid: list[int], deadline_s: float) -> tuple[TrainEstimate | None, str]:
    job = t.job
    if job.chip.family != "hbm":  # cheap: try every size
        ests = [e for e in (t.at(n) for n in grid) if e is not None]
        ok = [e for e in ests if e.time_to_train_s <= deadline_s]
        if ok:
            return min(ok, key=lambda e: e.job.chips), ""
        return _missed(ests, grid, deadline_s, t)
    need = model_flop_per_token(job.model, job.seq_len) * job.tokens / (
        deadline_s * job.chip.peak_flop_per_s("bf16") * GUESS_MFU)
    i = next((k for k, n in enumerate(grid) if n >= need), len(grid) - 1)
    best, seen = None, []
    est = t.at(grid[i])
    while est is None or est.time_to_train_s > deadline_s:  # walk up
        if est is not None:
            seen.append(est)
        if i + 1 >= len(grid):
            return _missed(seen, grid, deadline_s, t)
        i += 1
        est = t.at(grid[i])
    best = est
    for n in reversed(grid[:i]):  # walk down while the deadline holds (skipping sizes with no layout at all)
        est = t.resized(best, n)
        if est is None:
            continue
        if est.time_to_train_s > deadline_s:
            break
        best = est
    full = t.at(best.job.chips) if best is not est else None  # the re-used layout may not be this size's best
    return (full if full is not None and full.time_to_train_s < best.time_to_train_s else best), ""


def _missed(ests: Sequence[TrainEstimate], grid: list[int], deadline_s: float, t: _Timer) -> tuple[TrainEstimate | None, str]:
    if not ests:
        return None, f"no feasible layout at any size up to {grid[-1]} chips (last: {t.reason})"
    fastest = min(ests, key=lambda e: e.time_to_train_s)
    return fastest, (f"misses the deadline: fastest {fastest.time_to_train_s / 86400:.3g} days at "
                     f"{fastest.job.chips} chips (sizes up to {grid[-1]}, the cluster limit, tried)")


def _power(t: _Timer, grid: list[int], power_w: float, power_of: Callable[[TrainEstimate], float]) -> tuple[TrainEstimate | None, str]:
    per_chip = (t.job.chip.tdp_w + t.job.chip.system.host_power_per_chip_w)
    fits = [n for n in grid if n * per_chip <= power_w]
    if not fits:
        return None, f"one node draws more than {power_w / 1e6:g} MW"
    for n in list(reversed(fits))[:POWER_TRIES]:  # at TDP every size fits, so the largest feasible one is the answer
        est = t.at(n)
        if est is not None and power_of(est) <= power_w:
            return est, ""
    return None, f"no feasible layout within {power_w / 1e6:g} MW ({t.reason})"


def compare_training(model: ModelSpec, systems: Sequence[str | Chip], *, tokens: float, seq_len: int, global_batch: int,
                     target: Target, dtype: str = "bf16",
                     power_of: Callable[[TrainEstimate], float] | None = None) -> list[TrainRow]:
    """One row per system, in the order given (``power_of``: watts of an estimate's cluster,
    needed for a power budget)."""
    if tokens <= 0:
        raise InputError("--tokens: the training comparison needs a token budget > 0")
    rows = []
    for hw in systems:
        chip = resolve_chip(hw)
        job = TrainingJob(model=model, chip=chip, chips=1, seq_len=seq_len, global_batch=global_batch,
                          dtype=dtype, tokens=tokens)
        t = _Timer(job)
        grid = size_grid(chip)
        if target.chips is not None and target.chips > chip.system.max_chips:
            est, why = None, f"{target.chips} chips exceed the {chip.system.id} limit of {chip.system.max_chips}"
        elif target.chips is not None:
            est = t.at(target.chips)
            why = "" if est is not None else t.reason
        elif target.power_w is not None:
            if power_of is None:
                raise InputError("a power budget needs a power model")
            est, why = _power(t, grid, target.power_w, power_of)
        else:
            est, why = _deadline(t, grid, target.deadline_s)  # type: ignore[arg-type]
        rows.append(TrainRow(chip.id, est, why, t.tried))
    return rows
