"""Prompt and output lengths for a suite row, filling gaps from ``data/datasets.toml``.

MLPerf rows leave ``input_tokens`` empty (no summary log records it): the benchmark dataset's
mean prompt length is used and the assumption is reported. Their outputs vary in length, so a
decode step's sequences carry a length-biased mean context (``perf.step.length_biased_context``)
from the dataset's spread. Other rows without lengths take the documented defaults (the ~1k-token
Artificial Analysis prompt, a 500-token answer) and equal lengths.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.hardware.spec import Sourced
from siliconsim.perf.step import length_biased_context
from siliconsim.validation.suite import DATA, Case


@dataclass(frozen=True)
class Lengths:
    input_tokens: float
    output_tokens: float
    assumption: str = ""  # what was filled in, for the report ("" when the row gave both)
    decode_context_tokens: float | None = None  # mean context of a decode step's sequences; None: equal lengths


@functools.cache
def _datasets() -> dict[str, Any]:
    path = DATA / "datasets.toml"
    doc = read_toml(path)
    out: dict[str, Any] = {"defaults": {k: sourced(v, "count", f"{path.name}: defaults.{k}")
                                        for k, v in doc["defaults"].items()}}
    for model, entry in doc["datasets"].items():
        out[model] = (entry["benchmark"], sourced(entry["mean_input_tokens"], "count",
                                                f"{path.name}: datasets.{model}.mean_input_tokens"))
        spread = [entry.get(k) for k in ("output_weighted_input_tokens", "output_length_cv")]
        if any(v is not None for v in spread):
            out[("spread", model)] = (
                sourced(spread[0], "count", f"{path.name}: datasets.{model}.output_weighted_input_tokens"),
                sourced(spread[1], "dimensionless", f"{path.name}: datasets.{model}.output_length_cv"))
    return out


def dataset_input(model_id: str) -> tuple[str, Sourced] | None:
    """(MLPerf benchmark name, mean prompt length) of the MLPerf benchmark for ``model_id``."""
    return _datasets().get(model_id)


def dataset_spread(model_id: str) -> tuple[Sourced, Sourced] | None:
    """(output-weighted mean prompt, output-length coefficient of variation) of the MLPerf dataset
    for ``model_id``, or None where the catalog has no spread for it."""
    return _datasets().get(("spread", model_id))


def default_length(key: str) -> Sourced:
    return _datasets()["defaults"][key]


def lengths(case: Case) -> Lengths:
    """The prompt and output lengths to simulate ``case`` with."""
    notes = []
    inp, out = case.input_tokens, case.output_tokens
    if inp is None:
        ds = dataset_input(case.model) if case.trust == "mlperf" else None
        if ds is not None:
            inp = ds[1].value
            notes.append(f"input {inp:.0f} tok = {ds[0]} dataset mean ({ds[1].basis})")
        else:
            inp = default_length("api_prompt_tokens").value
            notes.append(f"input {inp:.0f} tok assumed")
    if out is None:
        key = "single_stream_output_tokens" if case.scenario == "single_stream" else "offline_output_tokens"
        out = default_length(key).value
        notes.append(f"output {out:.0f} tok assumed")
    context = None
    spread = dataset_spread(case.model) if case.trust == "mlperf" else None
    if spread is not None and dataset_input(case.model) is not None:
        weighted, cv = spread
        mean_in = dataset_input(case.model)[1].value  # type: ignore[index]
        context = length_biased_context(inp * weighted.value / mean_in, out, cv.value)
        notes.append(f"decode context {context:.0f} tok from the dataset's length spread (cv {cv.value:.2f})")
    return Lengths(float(inp), float(out), "; ".join(notes), context)
