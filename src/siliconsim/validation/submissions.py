"""MLPerf submitters' published launch settings (``data/submissions.toml``).

An MLPerf Inference result is one submitter's system running one benchmark in one scenario, and
its configuration files (published beside the results) fix what the harness ran: the model
instance's tensor/pipeline-parallel size, the engine's batch cap, its tokens per step and the
share of memory its KV cache takes. A suite row whose ``source_url`` names such a result
(``inference_results_<round>/tree/main/<division>/<submitter>/results/<system>/<benchmark>/<Scenario>``)
is predicted with those settings (``validation.scenarios``): the instance size replaces the
planner's split, the batch cap and token budget bound continuous batching (``serving.approx``), and
the KV fraction replaces the default usable memory, a power limit other than the TDP sets the
compute clock (``accounting.power.power_limited``), a multi-step scheduler holds new prompts for
its interval, and a harness batcher (``serving.toml`` ``[stacks]``) applies only where the entry
says the harness ran it. Rows without an entry keep the planner's choices.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.validation.suite import DATA, Case

SUBMISSIONS_FILE = DATA / "submissions.toml"
RESULT_URL = re.compile(r"inference_results_(v[\d.]+)/tree/[^/]+/(closed|open)/([^/]+)/results/([^/]+)/([^/]+)/(\w+)")
ENGINES = {"trtllm": "free", "vllm": "total"}  # what each engine's KV fraction is a fraction of
COUNTS = ("tp", "pp", "ep", "max_batch", "token_budget", "admission_interval_steps")
FLAGS = ("chunked_prefill", "attention_dp", "harness_batcher")
KEYS = {"results", "benchmark", "scenario", "engine", "notes", "kv_memory_fraction", "power_limit_w", *FLAGS, *COUNTS}


@dataclass(frozen=True)
class Submission:
    """One result's launch settings; ``None``: not set in its configuration."""

    results: str  # round/division/submitter/system, as in the result's address
    benchmark: str
    scenario: str
    engine: str
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None  # expert-parallel ranks of an MoE instance
    attention_dp: bool | None = None  # data-parallel attention: batch cap and token budget are per rank
    max_batch: int | None = None
    token_budget: int | None = None
    kv_memory_fraction: float | None = None
    chunked_prefill: bool | None = None
    admission_interval_steps: int | None = None  # new requests join only every n decode steps (vLLM multi-step)
    harness_batcher: bool | None = None  # the submitter's harness batches queries before the engine (serving.toml [stacks])
    power_limit_w: float | None = None  # the accelerators' power limit in this run, where it is not the chip's TDP

    @property
    def instance_chips(self) -> int | None:
        """Chips of one model instance (tensor x pipeline parallel), if published."""
        return None if self.tp is None else self.tp * (self.pp or 1)

    @property
    def memory_fraction_of(self) -> str:
        return ENGINES[self.engine]

    @property
    def per_instance(self) -> int:
        """How many schedulers an instance runs: its attention ranks under data-parallel attention
        (each with its own batch cap and token budget), else one."""
        return (self.tp or 1) if self.attention_dp else 1

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) is None for k in (*COUNTS, *FLAGS, "kv_memory_fraction", "power_limit_w"))

    def describe(self) -> str:
        parts = [f"{self.results.split('/')[2]} {self.results.split('/')[0]} settings:"]
        if self.tp is not None:
            parts.append("layout as published,")
        rank = " per attention rank" if self.per_instance > 1 else ""
        if self.max_batch is not None:
            parts.append(f"batch <= {self.max_batch}{rank}")
        if self.token_budget is not None:
            parts.append(f"{self.token_budget} tokens/step{rank}")
        if self.chunked_prefill is False:
            parts.append("no chunked prefill")
        if self.admission_interval_steps is not None and self.admission_interval_steps > 1:
            parts.append(f"new requests every {self.admission_interval_steps} decode steps")
        if self.kv_memory_fraction is not None:
            parts.append(f"KV {self.kv_memory_fraction:g} of {self.memory_fraction_of} memory")
        return " ".join(parts)


def _entry(e: Any, where: str) -> Submission:
    if not isinstance(e, dict):
        raise CatalogError(f"{where}: expected a table, got {e!r}"[:200])
    unknown = sorted(set(e) - KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown field '{unknown[0]}'")
    for key in ("results", "benchmark", "scenario"):
        if not (isinstance(e.get(key), str) and e[key]):
            raise CatalogError(f"{where}.{key}: expected a string, got {e.get(key)!r}")
    if len(e["results"].split("/")) != 4:
        raise CatalogError(f"{where}.results: expected round/division/submitter/system, got {e['results']!r}")
    if e.get("engine") not in ENGINES:
        raise CatalogError(f"{where}.engine: expected one of {', '.join(ENGINES)}, got {e.get('engine')!r}")
    fields: dict[str, Any] = {k: e[k] for k in ("results", "benchmark", "scenario", "engine")}
    for key in COUNTS:
        if key in e:
            v = sourced(e[key], "count", f"{where}.{key}").value
            if not (v >= 1 and v == int(v)):
                raise CatalogError(f"{where}.{key}: expected a whole number >= 1, got {v:g}")
            fields[key] = int(v)
    if "kv_memory_fraction" in e:
        v = sourced(e["kv_memory_fraction"], "dimensionless", f"{where}.kv_memory_fraction").value
        if not 0.0 < v <= 1.0:
            raise CatalogError(f"{where}.kv_memory_fraction: expected a fraction in (0, 1], got {v:g}")
        fields["kv_memory_fraction"] = v
    if "power_limit_w" in e:
        v = sourced(e["power_limit_w"], "w", f"{where}.power_limit_w").value
        if not v > 0:
            raise CatalogError(f"{where}.power_limit_w: expected a power > 0 W, got {v:g}")
        fields["power_limit_w"] = v
    for key in FLAGS:
        if key in e:
            entry = e[key]
            sourced({**entry, "value": 0} if isinstance(entry, dict) else entry, "dimensionless", f"{where}.{key}")
            if not isinstance(entry["value"], bool):
                raise CatalogError(f"{where}.{key}.value: expected true or false, got {entry['value']!r}")
            fields[key] = entry["value"]
    return Submission(**fields)


@functools.cache
def submissions(path: Path = SUBMISSIONS_FILE) -> dict[tuple[str, str, str], Submission]:
    """Every entry of ``path`` by (results, benchmark, scenario)."""
    doc = read_toml(path)
    entries = doc.get("submissions", [])
    if not isinstance(entries, list):
        raise CatalogError(f"{path.name}: submissions: expected an array of tables ([[submissions]])")
    out: dict[tuple[str, str, str], Submission] = {}
    for i, e in enumerate(entries):
        s = _entry(e, f"{path.name}: submissions[{i}]")
        key = (s.results, s.benchmark, s.scenario)
        if key in out:
            raise CatalogError(f"{path.name}: submissions[{i}]: {'/'.join(key)} appears twice")
        out[key] = s
    return out


def submission_for(case: Case) -> Submission | None:
    """The launch settings of the MLPerf result a row cites, or None."""
    m = RESULT_URL.search(case.source_url)
    if m is None:
        return None
    rnd, division, submitter, system, benchmark, scenario = m.groups()
    return submissions().get((f"{rnd}/{division}/{submitter}/{system}", benchmark, scenario))
