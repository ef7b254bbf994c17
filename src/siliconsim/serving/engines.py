"""Serving engines' published launch settings (``data/engines.toml``) and what they bound.

An engine run is bounded by a handful of launch settings: how many requests it runs at once
(``max_batch``), how many tokens one step may schedule (``token_budget``), how much memory becomes
KV cache (``memory_fraction``, meant per engine: SGLang counts weights + KV pool against the
chip's memory, TensorRT-LLM gives KV a fraction of what the weights leave free) and whether KV is
reserved for the whole sequence at admission (TensorRT-LLM's default GUARANTEED_NO_EVICT policy)
or grows as tokens are made (SGLang). ``engine_settings`` finds the entry of a run's
(hardware, engine, weight precision, layout, lengths); ``EngineSettings.serve_config`` turns it
into the ``ServeConfig`` the closed form and the simulator take, and ``scheduler_hold`` adds the time
the scheduler holds new prompts back (TensorRT-LLM's attention-DP balancing and batch waiting,
SGLang's polling interval) to a
closed-loop point. A run without an entry keeps the defaults, so nothing changes for engines the
file does not describe.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.plans.deploy import MEMORY_FRACTION_OF
from siliconsim.serving.closed_loop import ClosedLoopPoint, closed_loop_point
from siliconsim.serving.config import ServeConfig

DATA = Path(str(resources.files("siliconsim.serving") / "data"))
KV_RESERVATIONS = ("incremental", "full")  # KV grows as tokens are made / reserved for prompt + output
ENGINE_KEYS = {"memory_fraction_of", "chunked_prefill", "kv_reservation", "why", "source", "max_batch", "token_budget"}
MATCH_KEYS = {"hardware": str, "engine": str, "weight_dtype": str, "tp": int, "ep": int, "dp_attention": bool,
              "isl": int, "osl": int, "min_concurrency": int}
REQUIRED_MATCH = ("hardware", "engine", "weight_dtype", "tp")
COUNT_SETTINGS = ("max_batch", "token_budget", "cuda_graph_max_batch", "adp_timeout_iters", "batch_wait_iters",
                  "admission_interval_steps")
FRACTION_SETTINGS = ("memory_fraction", "batch_wait_tokens_ratio")
CONFIG_KEYS = set(MATCH_KEYS) | set(COUNT_SETTINGS) | set(FRACTION_SETTINGS) | {"token_budget_fits_prompt"}
PROMPT_MARGIN_TOKENS = 64  # InferenceX TensorRT-LLM scripts: max_num_tokens >= ceil64(concurrency + ISL + 64)


@dataclass(frozen=True)
class EngineSettings:
    """One configuration's launch settings; ``None``: not published (the default applies)."""

    name: str
    engine: str
    memory_fraction_of: str  # "total" (SGLang) or "free" (TensorRT-LLM), see plans.deploy.engine_memory
    chunked_prefill: bool
    kv_reservation: str  # "incremental" or "full"
    max_batch: int | None = None
    token_budget: int | None = None
    token_budget_fits_prompt: bool = False
    memory_fraction: float | None = None
    cuda_graph_max_batch: int | None = None  # recorded, not modelled: larger batches run eagerly
    adp_timeout_iters: int | None = None  # DP attention: prompts held until every rank has one, at most this long
    batch_wait_iters: int | None = None  # no DP attention: prompts held until the step is this full ...
    batch_wait_tokens_ratio: float | None = None  # ... (this fraction of the token budget), at most this long
    admission_interval_steps: int | None = None  # new prompts are taken in only every this many decode steps

    def budget(self, concurrency: int, nominal_input_tokens: float) -> int | None:
        """Tokens per step for a run of ``concurrency`` requests with prompts up to ``nominal_input_tokens``."""
        if self.token_budget is None or not self.token_budget_fits_prompt:
            return self.token_budget
        need = concurrency + math.ceil(nominal_input_tokens) + PROMPT_MARGIN_TOKENS
        return max(self.token_budget, -(-need // 64) * 64)

    def serve_config(self, concurrency: int, nominal_input_tokens: float, input_tokens: float,
                     output_tokens: float, kv_capacity_tokens: float) -> ServeConfig:
        """The ServeConfig of the run: batch cap, token budget and prefill chunking as launched; with
        ``kv_reservation == "full"`` the batch is also capped at the requests whose whole sequences
        (mean prompt + output) the KV cache ``kv_capacity_tokens`` holds at once."""
        cap = self.max_batch
        if self.kv_reservation == "full" and math.isfinite(kv_capacity_tokens):
            whole = max(int(kv_capacity_tokens // (input_tokens + output_tokens)), 1)
            cap = whole if cap is None else min(cap, whole)
        budget = self.budget(concurrency, nominal_input_tokens)
        kw: dict[str, Any] = {"max_batch": cap, "chunk_tokens": None if self.chunked_prefill else 0}
        if budget is not None:
            kw["token_budget"] = budget
        return ServeConfig(**kw)

    def describe(self, attn_dp: bool = True) -> str:
        """The settings in words; ``attn_dp``: the layout runs data-parallel attention (the
        attention-DP hold applies only then)."""
        parts = [f"{self.name}:"]
        if self.max_batch is not None:
            parts.append(f"max batch {self.max_batch}")
        if self.token_budget is not None:
            parts.append(f"{self.token_budget}{'+' if self.token_budget_fits_prompt else ''} tokens/step")
        if self.memory_fraction is not None:
            parts.append(f"memory {self.memory_fraction:g} of {self.memory_fraction_of}")
        if self.kv_reservation == "full":
            parts.append("KV reserved per whole sequence")
        if self.adp_timeout_iters and attn_dp:
            parts.append(f"DP-attention prompt hold <= {self.adp_timeout_iters} iterations")
        if self.batch_wait_iters:
            parts.append(f"TP batch wait <= {self.batch_wait_iters} iterations")
        if self.admission_interval_steps and self.admission_interval_steps > 1:
            parts.append(f"prompts taken in every {self.admission_interval_steps} decode steps")
        return " ".join(parts)


def scheduler_hold(op: ClosedLoopPoint, settings: EngineSettings, attention_ranks: int, token_budget: int | None,
                   input_tokens: float) -> ClosedLoopPoint:
    """``op`` with the time the engine's scheduler holds new prompts back (see ``data/engines.toml``).

    TensorRT-LLM: with DP attention over ``attention_ranks`` > 1 ranks and balancing on, prompts
    wait until every rank has one or ``adp_timeout_iters`` iterations pass; without, under a batch
    wait, until the step's tokens (running batch + whole prompts) reach ``batch_wait_tokens_ratio x
    token_budget`` or ``batch_wait_iters`` pass. Prompts arrive at ``a`` = request rate x iteration
    time per iteration (one iteration per output token), so a hold lasts ``E = min(timeout, needed /
    a)`` iterations and a prompt arriving at a uniform time within it waits ``E / 2`` on average
    (with balanced routing, ``needed`` is the number of ranks; under a batch wait, the prompts beyond
    the first that fill the step). (py_executor.py ``_balance_adp_requests``, ``_waiting_requests``.)

    SGLang: with ``admission_interval_steps`` = ``n`` > 1 (``--scheduler-recv-interval``: the
    scheduler polls for new requests once its counter reaches ``n``, each decode step adding 1 and a
    prompt step 1000; ``--num-continuous-decode-steps``: ``n`` decode steps run between scheduling
    points) a prompt that arrives while others decode waits for the next poll, ``n / 2`` decode
    steps on average instead of the half step of an engine that polls every step: ``(n - 1) / 2``
    iterations more. With one request in flight the engine idles between requests and its idle
    loop polls at once, so nothing is held.

    The held time adds to TTFT and, as each slot's cycle is longer, lowers throughput (Little's law;
    requests queued for a slot wait longer in proportion); TPOT is unchanged. Closed-form estimate,
    not simulated."""
    if not op.feasible:
        return op
    iterations = 0.0  # mean iterations a prompt is held
    per_iter = op.request_s * op.tpot_s  # prompts arriving per iteration
    timeout, needed = 0.0, 0.0
    if attention_ranks > 1 and settings.adp_timeout_iters:
        timeout, needed = settings.adp_timeout_iters, float(attention_ranks)
    elif attention_ranks <= 1 and settings.batch_wait_iters and token_budget:
        fill = settings.batch_wait_tokens_ratio * token_budget - op.in_service  # type: ignore[operator]
        timeout, needed = settings.batch_wait_iters, math.ceil(max(fill, 0.0) / input_tokens) - 1.0
    if needed > 0:
        iterations += 0.5 * min(float(timeout), needed / per_iter if per_iter > 0 else math.inf)
    interval = settings.admission_interval_steps or 1
    if interval > 1 and op.concurrency > 1:
        iterations += 0.5 * (interval - 1)
    if iterations <= 0:
        return op
    hold_s = iterations * op.tpot_s
    cycle_s = op.in_service / op.request_s  # a slot's cycle; the hold lengthens it (the slot stays taken)
    queued = op.concurrency / op.in_service  # with requests waiting for a slot, their wait grows in step
    return replace(op, ttft_s=op.ttft_s + queued * hold_s, output_tok_s=op.output_tok_s * cycle_s / (cycle_s + hold_s))


def engine_point(dep: Any, settings: EngineSettings, concurrency: int, input_tokens: float, output_tokens: float,
                 nominal_input_tokens: float | None = None) -> ClosedLoopPoint:
    """The closed-loop point of ``concurrency`` requests on ``dep`` as the engine was launched: its
    batch cap, token budget and prefill chunking (``settings.serve_config``; ``nominal_input_tokens``
    sizes a budget that must fit a whole prompt), then its scheduler holds (``scheduler_hold``)."""
    config = settings.serve_config(concurrency, nominal_input_tokens or input_tokens, input_tokens, output_tokens,
                                   dep.kv_capacity_tokens)
    op = closed_loop_point(dep, concurrency, input_tokens, output_tokens, config)
    return scheduler_hold(op, settings, dep.par.tp if dep.par.attn_dp else 1, config.token_budget, input_tokens)


def _engine(name: str, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a table, got {entry!r}"[:200])
    unknown = sorted(set(entry) - ENGINE_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown field '{unknown[0]}' (expected {', '.join(sorted(ENGINE_KEYS))})")
    out: dict[str, Any] = {"engine": name}
    for key, allowed in (("memory_fraction_of", MEMORY_FRACTION_OF), ("kv_reservation", KV_RESERVATIONS)):
        if entry.get(key) not in allowed:
            raise CatalogError(f"{where}.{key}: expected one of {', '.join(allowed)}, got {entry.get(key)!r}")
        out[key] = entry[key]
    if not isinstance(entry.get("chunked_prefill"), bool):
        raise CatalogError(f"{where}.chunked_prefill: expected true or false, got {entry.get('chunked_prefill')!r}")
    out["chunked_prefill"] = entry["chunked_prefill"]
    for key in ("max_batch", "token_budget"):
        if key in entry:
            out[key] = _count(entry[key], f"{where}.{key}")
    return out


def _count(entry: Any, where: str) -> int:
    value = sourced(entry, "count", where).value
    if not (value >= 1 and value == int(value)):
        raise CatalogError(f"{where}: expected a whole number >= 1, got {value:g}")
    return int(value)


def _match(entry: dict[str, Any], where: str) -> dict[str, Any]:
    for key in REQUIRED_MATCH:
        if key not in entry:
            raise CatalogError(f"{where}: missing field '{key}'")
    out = {}
    for key, kind in MATCH_KEYS.items():
        if key in entry:
            v = entry[key]
            if type(v) is not kind:
                raise CatalogError(f"{where}.{key}: expected a {kind.__name__}, got {v!r}")
            out[key] = v
    return out


def _config(entry: Any, where: str, engines: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], EngineSettings]:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a table, got {entry!r}"[:200])
    unknown = sorted(set(entry) - CONFIG_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown field '{unknown[0]}'")
    match = _match(entry, where)
    base = engines.get(match["engine"])
    if base is None:
        raise CatalogError(f"{where}.engine: {match['engine']!r} has no [engines.{match['engine']}] table")
    fields = dict(base)
    fields.update({k: _count(entry[k], f"{where}.{k}") for k in COUNT_SETTINGS if k in entry})
    for key in FRACTION_SETTINGS:
        if key in entry:
            frac = sourced(entry[key], "dimensionless", f"{where}.{key}").value
            if not 0.0 < frac <= 1.0:
                raise CatalogError(f"{where}.{key}: expected a fraction in (0, 1], got {frac:g}")
            fields[key] = frac
    if ("batch_wait_iters" in fields) != ("batch_wait_tokens_ratio" in fields):
        raise CatalogError(f"{where}: batch_wait_iters and batch_wait_tokens_ratio go together")
    fits = entry.get("token_budget_fits_prompt", False)
    if not isinstance(fits, bool):
        raise CatalogError(f"{where}.token_budget_fits_prompt: expected true or false, got {fits!r}")
    name = " ".join(f"{k}={v}" if k not in ("hardware", "engine", "weight_dtype") else str(v) for k, v in match.items())
    return match, EngineSettings(name=name, token_budget_fits_prompt=fits, **fields)


def load_engines(path: Path) -> list[tuple[dict[str, Any], EngineSettings]]:
    """(match keys, settings) of every ``[[configs]]`` entry of ``path``, in file order."""
    doc = read_toml(path)
    unknown = sorted(set(doc) - {"meta", "engines", "configs"})
    if unknown:
        raise CatalogError(f"{path.name}: unknown table '{unknown[0]}' (expected meta, engines, configs)")
    engines = {name: _engine(name, e, f"{path.name}: engines.{name}") for name, e in doc.get("engines", {}).items()}
    configs = doc.get("configs", [])
    if not isinstance(configs, list):
        raise CatalogError(f"{path.name}: configs: expected an array of tables ([[configs]])")
    return [_config(e, f"{path.name}: configs[{i}]", engines) for i, e in enumerate(configs)]


@functools.cache
def _catalog() -> tuple[tuple[dict[str, Any], EngineSettings], ...]:
    return tuple(load_engines(DATA / "engines.toml"))


def engine_settings(hardware: str, engine: str, weight_dtype: str, tp: int, ep: int = 1, dp_attention: bool = False,
                    isl: int | None = None, osl: int | None = None, concurrency: int = 1) -> EngineSettings | None:
    """The first entry whose keys all match the run (``isl``/``osl``: nominal lengths), or None."""
    run = {"hardware": hardware, "engine": engine, "weight_dtype": weight_dtype, "tp": tp, "ep": ep,
           "dp_attention": dp_attention, "isl": isl, "osl": osl}
    for match, settings in _catalog():
        if all(run.get(k) == v for k, v in match.items() if k != "min_concurrency") \
                and concurrency >= match.get("min_concurrency", 0):
            return settings
    return None
