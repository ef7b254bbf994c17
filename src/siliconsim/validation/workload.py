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


@dataclass(frozen=True)
class Dataset:
    """One MLPerf benchmark dataset's length statistics (``data/datasets.toml``)."""

    benchmark: str
    mean_input: Sourced
    weighted_input: Sourced | None = None  # E[I L] / E[L]
    output_cv: Sourced | None = None

    def decode_context(self, input_tokens: float, output_tokens: float) -> float | None:
        """The length-biased mean context of a decode step's sequences, scaled to a run's own mean
        lengths (None without the dataset's spread)."""
        if self.weighted_input is None or self.output_cv is None:
            return None
        weighted = input_tokens * self.weighted_input.value / self.mean_input.value
        return length_biased_context(weighted, output_tokens, self.output_cv.value)


@functools.cache
def _datasets() -> tuple[dict[str, Dataset], dict[str, Sourced]]:
    path = DATA / "datasets.toml"
    doc = read_toml(path)
    defaults = {k: sourced(v, "count", f"{path.name}: defaults.{k}") for k, v in doc["defaults"].items()}
    out = {}
    for model, entry in doc["datasets"].items():
        where = f"{path.name}: datasets.{model}"
        opt = {k: sourced(entry[k], unit, f"{where}.{k}") if k in entry else None
               for k, unit in (("output_weighted_input_tokens", "count"), ("output_length_cv", "dimensionless"))}
        out[model] = Dataset(entry["benchmark"], sourced(entry["mean_input_tokens"], "count", f"{where}.mean_input_tokens"),
                             opt["output_weighted_input_tokens"], opt["output_length_cv"])
    return out, defaults


def dataset_of(model_id: str) -> Dataset | None:
    """The MLPerf benchmark dataset for ``model_id`` (None where the catalog has none)."""
    return _datasets()[0].get(model_id)


def default_length(key: str) -> Sourced:
    return _datasets()[1][key]


def lengths(case: Case) -> Lengths:
    """The prompt and output lengths to simulate ``case`` with."""
    notes = []
    inp, out = case.input_tokens, case.output_tokens
    ds = dataset_of(case.model) if case.trust == "mlperf" else None
    if inp is None:
        if ds is not None:
            inp = ds.mean_input.value
            notes.append(f"input {inp:.0f} tok = {ds.benchmark} dataset mean ({ds.mean_input.basis})")
        else:
            inp = default_length("api_prompt_tokens").value
            notes.append(f"input {inp:.0f} tok assumed")
    if out is None:
        key = "single_stream_output_tokens" if case.scenario == "single_stream" else "offline_output_tokens"
        out = default_length(key).value
        notes.append(f"output {out:.0f} tok assumed")
    context = ds.decode_context(inp, out) if ds is not None else None
    if context is not None:
        notes.append(f"decode context {context:.0f} tok from the dataset's length spread "
                     f"(cv {ds.output_cv.value:.2f})")  # type: ignore[union-attr]
    return Lengths(float(inp), float(out), "; ".join(notes), context)
