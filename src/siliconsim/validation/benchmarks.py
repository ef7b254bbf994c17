"""How a published benchmark ran, where its source documents it (``data/benchmarks.toml``).

A suite row carries its chip count but not whether those chips were one model instance or a pool
of data-parallel replicas; for an offline row the planner otherwise tries every split
(``validation.scenarios.offline``). A benchmark whose documentation fixes the instance (the
TensorRT-LLM performance overview runs one ``trtllm-bench`` process of the table's TP size) is
predicted on that one instance (an MoE model with data-parallel attention and expert parallelism
over all of it, where the benchmark documents that).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.validation.suite import DATA, SCENARIOS, Case

BENCHMARKS_FILE = DATA / "benchmarks.toml"
INSTANCES = ("whole",)


@dataclass(frozen=True)
class Benchmark:
    name: str
    sources: tuple[str, ...]  # glob patterns over a row's source addresses
    scenarios: frozenset[str]
    whole_instance: bool  # the row's chips are one model instance
    moe_attention_dp: bool = False  # an MoE instance runs data-parallel attention with expert parallelism
    generation: str = ""  # the software generation it ran (validation/data/generations.toml); "" = current
    # a finite run: (input tokens, output tokens) -> how many requests of exactly those lengths it ran
    requests: tuple[tuple[int, int, int], ...] = ()

    def requests_for(self, input_tokens: float, output_tokens: float) -> int | None:
        """The documented request count of a run with these lengths, or None."""
        return next((n for i, o, n in self.requests if i == input_tokens and o == output_tokens), None)


def _words(value: object, where: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(x, str) and x for x in value)):
        raise CatalogError(f"{where}: expected a non-empty list of strings, got {value!r}"[:200])
    bad = [x for x in value if allowed is not None and x not in allowed]
    if bad:
        raise CatalogError(f"{where}: {bad[0]!r} is not one of {', '.join(allowed or ())}")
    return tuple(value)


@functools.cache
def benchmarks(path: Path = BENCHMARKS_FILE) -> tuple[Benchmark, ...]:
    """Every benchmark of ``path``, in file order."""
    out = []
    for name, table in read_toml(path).items():
        if name == "meta":
            continue
        where = f"{path.name}: {name}"
        if not isinstance(table, dict):
            raise CatalogError(f"{where}: expected a table, got {table!r}"[:200])
        unknown = sorted(set(table) - {"sources", "scenarios", "instance", "moe_attention_dp", "generation", "requests"})
        if unknown:
            raise CatalogError(f"{where}: unknown field '{unknown[0]}' (expected sources, scenarios, instance, "
                               "moe_attention_dp, generation, requests)")
        gen = table.get("generation")
        if gen is not None:
            sourced({**gen, "value": 0} if isinstance(gen, dict) else gen, "dimensionless", f"{where}.generation")
            if not isinstance(gen["value"], str) or not gen["value"]:
                raise CatalogError(f"{where}.generation.value: expected a generation id, got {gen['value']!r}")
        adp = sourced_flag(table.get("moe_attention_dp"), f"{where}.moe_attention_dp")
        instance = table.get("instance")
        sourced({**instance, "value": 0} if isinstance(instance, dict) else instance, "dimensionless",
                f"{where}.instance")
        if instance["value"] not in INSTANCES:
            raise CatalogError(f"{where}.instance.value: {instance['value']!r} is not one of {', '.join(INSTANCES)}")
        out.append(Benchmark(name, _words(table.get("sources"), f"{where}.sources"),
                             frozenset(_words(table.get("scenarios"), f"{where}.scenarios", SCENARIOS)),
                             instance["value"] == "whole", bool(adp),
                             gen["value"] if gen is not None else "", _requests(table.get("requests"), where)))
    return tuple(out)


def sourced_flag(value: object, where: str) -> bool | None:
    """A sourced true/false setting ({ value, basis, source }), or None when absent."""
    if value is None:
        return None
    sourced({**value, "value": 0} if isinstance(value, dict) else value, "dimensionless", where)
    if not isinstance(value["value"], bool):  # type: ignore[index]
        raise CatalogError(f"{where}.value: expected true or false, got {value['value']!r}")  # type: ignore[index]
    return value["value"]  # type: ignore[index]


def _requests(value: object, where: str) -> tuple[tuple[int, int, int], ...]:
    """``requests``: { value = [[input tokens, output tokens, requests], ...], basis, source }."""
    if value is None:
        return ()
    sourced({**value, "value": 0} if isinstance(value, dict) else value, "dimensionless", f"{where}.requests")
    rows = value["value"]  # type: ignore[index]
    ok = isinstance(rows, list) and rows and all(
        isinstance(r, list) and len(r) == 3 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in r)
        for r in rows)
    if not ok:
        raise CatalogError(f"{where}.requests.value: expected [[input tokens, output tokens, requests], ...] of "
                           f"positive integers, got {rows!r}"[:200])
    return tuple((r[0], r[1], r[2]) for r in rows)


def benchmark_of(case: Case) -> Benchmark | None:
    """The documented benchmark a row comes from (first match), or None."""
    addresses = [a.strip() for a in case.source_url.split(";") if a.strip()]
    for bench in benchmarks():
        if case.scenario in bench.scenarios and any(fnmatchcase(a, p) for a in addresses for p in bench.sources):
            return bench
    return None
