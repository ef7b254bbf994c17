"""Workload presets (``data/presets.toml``) and the requests they generate.

A preset is data: an arrival process (rate, CV), prompt and output length distributions,
default SLOs and, for multi-turn presets, a session shape. Every number carries a basis and a
source in the TOML file.

Multi-turn sessions (``agentic-coding``): turn 1 has a prompt from ``input_tokens``. Turn k + 1
arrives an exponential think time after turn k completes; its prompt is turn k's prompt, plus
turn k's output, plus ``new_input_tokens`` (tool output). The earlier context is assumed to hit a
prefix cache (vLLM automatic prefix caching, SGLang RadixAttention) with hit rate 1, so only the
new tokens are prefilled, while the KV cache holds the whole context again once the turn is
admitted. Turns per session are geometric (>= 1) with the given mean; a session stops early when its
context would exceed ``max_context_tokens``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from siliconsim.errors import CatalogError, UnknownIdError
from siliconsim.workloads.arrivals import arrival_times_s
from siliconsim.workloads.requests import RequestSet, make_requests, take

PRESETS_FILE = Path(str(resources.files("siliconsim.workloads") / "data" / "presets.toml"))


@dataclass(frozen=True)
class LengthDist:
    """Token-count distribution: an empirical inverse CDF or a clipped lognormal."""

    kind: str  # "quantiles" | "lognormal"
    p: tuple[float, ...] = ()
    v: tuple[float, ...] = ()
    median: float = 0.0
    sigma: float = 0.0
    min: float = 1.0
    max: float = float("inf")

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` whole token counts >= 1."""
        if self.kind == "quantiles":
            x = np.interp(rng.random(count), self.p, self.v)
        else:
            x = np.clip(rng.lognormal(np.log(self.median), self.sigma, count), self.min, self.max)
        return np.maximum(np.rint(x), 1).astype(np.int64)


@dataclass(frozen=True)
class Sessions:
    turns_mean: float
    think_s_mean: float
    max_context_tokens: int
    new_input: LengthDist


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    rate_per_s: float
    cv: float
    input_tokens: LengthDist
    output_tokens: LengthDist
    slo_ttft_s: float
    slo_tpot_s: float
    trace: str | None = None
    sessions: Sessions | None = None


def _dist(entry: Any, where: str) -> LengthDist:
    if not isinstance(entry, dict) or entry.get("kind") not in ("quantiles", "lognormal"):
        raise CatalogError(f"{where}.kind: expected 'quantiles' or 'lognormal', got {entry!r:.60}")
    try:
        if entry["kind"] == "quantiles":
            p, v = tuple(map(float, entry["p"])), tuple(map(float, entry["v"]))
            if len(p) != len(v) or len(p) < 2 or p[0] != 0.0 or p[-1] != 1.0 or list(p) != sorted(p) \
                    or list(v) != sorted(v) or v[0] < 1:
                raise CatalogError(f"{where}: expected sorted p from 0 to 1 and sorted v >= 1 of equal length")
            return LengthDist("quantiles", p=p, v=v)
        return LengthDist("lognormal", median=float(entry["median"]), sigma=float(entry["sigma"]),
                          min=float(entry.get("min", 1)), max=float(entry.get("max", float("inf"))))
    except KeyError as exc:
        raise CatalogError(f"{where}: missing {exc.args[0]}") from None


def _value(entry: Any, key: str, where: str) -> float:
    if not isinstance(entry, dict) or key not in entry or "basis" not in entry or "source" not in entry:
        raise CatalogError(f"{where}: expected a table with {key}, basis and source")
    return float(entry[key])


def _preset(name: str, d: dict[str, Any]) -> Preset:
    where = f"presets.toml: presets.{name}"
    slo = d.get("slo", {})
    sessions = None
    if "sessions" in d:
        s = d["sessions"]
        sessions = Sessions(_value(s, "turns_mean", f"{where}.sessions"), float(s["think_s_mean"]),
                            int(s["max_context_tokens"]), _dist(d.get("new_input_tokens"), f"{where}.new_input_tokens"))
    return Preset(name=name, description=str(d.get("description", "")),
                  rate_per_s=_value(d.get("rate_per_s"), "value", f"{where}.rate_per_s"),
                  cv=_value(d.get("arrival"), "cv", f"{where}.arrival"),
                  input_tokens=_dist(d.get("input_tokens"), f"{where}.input_tokens"),
                  output_tokens=_dist(d.get("output_tokens"), f"{where}.output_tokens"),
                  slo_ttft_s=_value(slo, "ttft_ms", f"{where}.slo") / 1e3,
                  slo_tpot_s=_value(slo, "tpot_ms", f"{where}.slo") / 1e3,
                  trace=d.get("trace"), sessions=sessions)


@functools.cache
def load_presets() -> dict[str, Preset]:
    """All presets by name (parsed once)."""
    try:
        doc = tomllib.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"presets.toml: malformed TOML: {exc}") from None
    return {name: _preset(name, d) for name, d in doc.get("presets", {}).items()}


def load_preset(name: str) -> Preset:
    presets = load_presets()
    if name not in presets:
        raise UnknownIdError("workload preset", name, presets)
    return presets[name]


def generate(preset: Preset, rng: np.random.Generator, *, rate_per_s: float | None = None,
             count: int | None = None, duration_s: float | None = None) -> RequestSet:
    """Requests of ``preset``: ``count`` requests, or every one whose session starts before ``duration_s``."""
    rate = rate_per_s or preset.rate_per_s
    if preset.sessions is None:
        t = arrival_times_s(rng, rate, preset.cv, count=count, duration_s=duration_s)
        n = t.size
        return make_requests(t, preset.input_tokens.sample(rng, n), preset.output_tokens.sample(rng, n),
                             source=preset.name)
    sessions = None if count is None else count  # at most `count` sessions are needed for `count` requests
    t = arrival_times_s(rng, rate, preset.cv, count=sessions, duration_s=duration_s)
    rs = _sessions(preset, preset.sessions, rng, t)
    if count is not None and len(rs) > count:
        rs = take(rs, count)
    return rs


def _sessions(preset: Preset, s: Sessions, rng: np.random.Generator, starts: np.ndarray) -> RequestSet:
    """Expand session start times into turns (see module docstring)."""
    n = starts.size
    turns = rng.geometric(1.0 / max(s.turns_mean, 1.0), n)  # >= 1, mean turns_mean
    first_turn = np.concatenate(([0], np.cumsum(turns)))
    first_in = preset.input_tokens.sample(rng, n)
    total = int(turns.sum())
    outs = preset.output_tokens.sample(rng, total)
    new_in = s.new_input.sample(rng, total)
    think = rng.exponential(s.think_s_mean, total)
    arr, inp, out, cached, parent = [], [], [], [], []
    for i in range(n):
        k = int(first_turn[i])
        prompt, prev = int(min(first_in[i], s.max_context_tokens - 1)), -1
        for turn in range(int(turns[i])):
            if turn > 0:
                grown = prompt + int(out[-1]) + int(new_in[k])
                if grown + int(outs[k]) > s.max_context_tokens:
                    break
                cached.append(prompt + int(out[-1]))
                prompt = grown
                arr.append(float(think[k]))
            else:
                cached.append(0)
                arr.append(float(starts[i]))
            inp.append(prompt)
            out.append(int(min(outs[k], s.max_context_tokens - prompt)))
            parent.append(prev)
            prev = len(inp) - 1
            k += 1
    return make_requests(arr, inp, out, cached_tokens=cached, parent=parent, source=preset.name)
