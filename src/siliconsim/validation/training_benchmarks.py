"""MLPerf Training LLM benchmarks as data (``data/mlperf_training.toml``): what a steady-state
training throughput must be multiplied by to become an MLPerf time-to-train.

A benchmark converges after a number of training samples (the reference convergence points that
MLPerf's compliance checker enforces, interpolated to the submitted global batch) and evaluates periodically on a
fixed evaluation set; the official score is the wall time from the start of the timed run to the
quality target, evaluation included. So ``time = samples(GBS) x seq_len / tokens_per_s x (1 +
eval_fraction)``: the eval fraction is the evaluation's share of forward work, as data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from siliconsim.errors import CatalogError, InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.validation.suite import DATA


@dataclass(frozen=True)
class Benchmark:
    id: str
    models: tuple[str, ...]
    seq_len: int
    rcp_global_batch: tuple[float, ...]
    rcp_samples: tuple[float, ...]
    eval_fraction: float  # evaluation time over training time

    def samples_to_converge(self, global_batch: float) -> float:
        """Reference samples to the target at ``global_batch``: linear between RCP points,
        clamped to the end points."""
        return float(np.interp(global_batch, self.rcp_global_batch, self.rcp_samples))


@functools.cache
def benchmarks() -> dict[str, Benchmark]:
    path = DATA / "mlperf_training.toml"
    out = {}
    for bid, t in read_toml(path).get("benchmarks", {}).items():
        where = f"{path.name}: benchmarks.{bid}"
        try:
            vals = {k: sourced(t[k], "dimensionless", f"{where}.{k}").value for k in ("seq_len", "eval_fraction")}
            gbs, samples = [float(x) for x in t["rcp_global_batch"]], [float(x) for x in t["rcp_samples"]]
        except KeyError as exc:
            raise CatalogError(f"{where}: missing {exc.args[0]}") from None
        if len(gbs) != len(samples) or not gbs or sorted(gbs) != gbs:
            raise CatalogError(f"{where}: rcp_global_batch must be ascending and as long as rcp_samples")
        out[bid] = Benchmark(bid, tuple(t.get("models", ())), int(vals["seq_len"]), tuple(gbs), tuple(samples),
                             vals["eval_fraction"])
    return out


def benchmark_for(case) -> Benchmark:
    """The MLPerf benchmark a time-to-train row ran (by its model id); only MLPerf rows have one."""
    if case.trust != "mlperf":
        raise InputError("time to train outside MLPerf needs the run's token budget, which the row does not give")
    for b in benchmarks().values():
        if case.model in b.models:
            return b
    raise InputError(f"{case.id}: no MLPerf benchmark data for model {case.model!r} (mlperf_training.toml)")


def time_to_train_s(bench: Benchmark, tokens_per_s: float, global_batch: float) -> float:
    """MLPerf time to train at a steady ``tokens_per_s`` and the run's global batch."""
    return bench.samples_to_converge(global_batch) * bench.seq_len / tokens_per_s * (1.0 + bench.eval_fraction)


@dataclass(frozen=True)
class Recipe:
    """A published training script's settings (``data/training_recipes.toml``)."""

    seq_len: int
    per_chip_batch: int
    tp: int
    recompute: str
    source: str


@functools.cache
def recipes() -> dict[str, Recipe]:
    path = DATA / "training_recipes.toml"
    out = {}
    for key, t in read_toml(path).get("recipes", {}).items():
        try:
            out[key] = Recipe(int(t["seq_len"]), int(t["per_chip_batch"]), int(t["tp"]), str(t["recompute"]), str(t["source"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{path.name}: recipes.{key}: needs whole seq_len, per_chip_batch, tp and recompute, source ({exc})") from None
    return out


def recipe_for(framework_id: str, hardware: str, model: str) -> Recipe | None:
    return recipes().get(f"{framework_id}/{hardware}/{model}")
