"""MLPerf Training LLM benchmarks as data (``data/mlperf_training.toml``): what a steady-state
training throughput must be multiplied by to become an MLPerf time-to-train.

A benchmark converges after a number of training samples (the reference convergence points of
the MLPerf training policies, at the submitted global batch) and evaluates periodically on a
fixed evaluation set; the official score is the wall time from the start of the timed run to the
quality target, evaluation included. So ``time = samples x seq_len / tokens_per_s x (1 +
eval_fraction)``: the eval fraction is the evaluation's share of forward work, as data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from siliconsim.errors import CatalogError, InputError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.validation.suite import DATA


@dataclass(frozen=True)
class Benchmark:
    id: str
    models: tuple[str, ...]
    seq_len: int
    samples_to_converge: float
    eval_fraction: float  # evaluation time over training time


@functools.cache
def benchmarks() -> dict[str, Benchmark]:
    path = DATA / "mlperf_training.toml"
    out = {}
    for bid, t in read_toml(path).get("benchmarks", {}).items():
        where = f"{path.name}: benchmarks.{bid}"
        try:
            vals = {k: sourced(t[k], "dimensionless", f"{where}.{k}").value
                    for k in ("seq_len", "samples_to_converge", "eval_fraction")}
        except KeyError as exc:
            raise CatalogError(f"{where}: missing {exc.args[0]}") from None
        out[bid] = Benchmark(bid, tuple(t.get("models", ())), int(vals["seq_len"]), vals["samples_to_converge"],
                             vals["eval_fraction"])
    return out


def benchmark_for(case) -> Benchmark:
    """The MLPerf benchmark a time-to-train row ran (by its model id)."""
    for b in benchmarks().values():
        if case.model in b.models:
            return b
    raise InputError(f"{case.id}: no MLPerf benchmark data for model {case.model!r} (mlperf_training.toml)")


def time_to_train_s(bench: Benchmark, tokens_per_s: float) -> float:
    return bench.samples_to_converge * bench.seq_len / tokens_per_s * (1.0 + bench.eval_fraction)
