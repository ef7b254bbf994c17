"""Closed-form operating point of an MLPerf Server/Interactive run on one replica.

Model (documented in the README's accuracy section and ``data/serving.toml``):

* Continuous batching with chunked prefill (Sarathi-Serve). In steady state ``B`` requests
  decode at once and the steps also carry the prompt tokens of the requests that arrive. With
  arrival rate ``lam`` and mean lengths ``I`` in / ``O`` out, Little's law gives
  ``lam = B / (O * t)``: ``L = B * I / O`` prompt tokens arrive per step. A step that carries
  prompt work carries at least a chunk ``C = min(I, budget - B)`` (a whole prompt, or what the
  token budget leaves beside the decode batch), so ``P = max(L, C)`` tokens, on a share
  ``f = L / P`` of the steps (all of them once a chunk arrives every step):
  ``t = f * step(decode B at context I + O/2, prefill P at context I/2) + (1 - f) * step(decode B)``.
  Below one prompt per step this matters for MoE models: a prompt read in one step touches the
  experts once, not once per step of a thin per-step share.
* Mean TPOT = ``t``; mean TTFT = the residual of the step in flight (length-biased), an M/D/1 wait
  behind other prompts' chunks while fewer than one chunk arrives per step, then the prompt's own
  step: with Poisson arrivals the ``L`` prompt tokens that arrive meanwhile on average are scheduled
  with it, so it carries ``L + I`` prompt tokens (in pieces of what the token budget leaves beside
  the decode batch, first come first served).
* p99 = mean x a tail ratio derived from published p99/mean pairs (``serving.toml``), except where
  a queue is modelled (below).
* The steady-state prompt load plus the decode tokens must fit the per-step token budget.
* Throughput = ``B / t`` output tokens/s. Among the batches meeting both p99 limits, the
  largest reaching ``knee_fraction`` of the best feasible throughput is the operating point
  (1.0 for MLPerf: submitters run as close to the limits as the KV cache allows; a saturated
  engine's batch fills until a limit stops it, as AMD's runs show with p99 TPOT at 0.95-0.99 of
  the limit). p99 TPOT is ``p99_over_mean_tpot`` x the mean; p99 TTFT the same ratio on the part of
  TTFT outside the queue for room, plus that queue's exponential tail.

Dispatched stacks (``[stacks.*]`` of ``serving.toml``, e.g. AMD's MLPerf harness) put a batcher in
front of ``R`` data-parallel prefill-first engines: queries collect for a window ``w`` (or until
``k_max`` are pending) and go to one replica together. A replica with arrival rate ``lam`` so gets
a burst of ``k = min(lam R w, k_max)`` prompts (at least one) every ``P = k / lam`` seconds and
prefills it in one prefill-only step ``t_p(k)`` while its decoding pauses:

* prefill takes the fraction ``f = t_p(k) / P`` of the time, so mean TPOT = ``t_d(B) / (1 - f)``,
  with ``t_d`` a decode-only step at batch ``B``;
* Little's law ``B = lam O TPOT`` fixes ``lam`` for each ``B`` (solved by bisection: the right
  side's ``f`` grows with ``lam``);
* mean TTFT = ``w / 2`` (mean wait in the window) + ``t_d / 2`` (the decode step in flight when
  the burst lands) + ``t_p(k)``. The burst, and with it TTFT, grows with the number of replicas.
  Its p99 is ``0.99 (w + t_d) + t_p(k + 2.33 sqrt(k))``: the two waits are uniform, the burst size
  Poisson (no fixed p99/mean ratio).

A window may also be counted in decode steps (TGI's router admits waiting requests every
``max_waiting_tokens`` decode steps): then ``w = n t_d(B)`` and the burst lands on a step boundary, so
the ``t_d / 2`` term drops. A stack may also fix the replica size (``replica_chips``: the submitter's
tensor-parallel width, which the layout search then does not choose) and cap the decode batch
(``max_batch``); a stack with neither window is continuous batching under those two constraints.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.perf.step import StepCost, Work, decode_context, held_tokens
from siliconsim.plans import Deployment

DATA = Path(str(resources.files("siliconsim.serving") / "data"))


@dataclass(frozen=True)
class OperatingPoint:
    batch: float
    step_s: float
    ttft_mean_s: float
    tpot_mean_s: float
    output_tok_s: float  # per replica
    ttft_p99_s: float = float("nan")  # the p99 TTFT the limit was checked against

    @property
    def feasible(self) -> bool:
        return self.batch > 0


NONE = OperatingPoint(0.0, float("nan"), float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class Stack:
    """A submitter's serving stack (see module doc); every field but the name is optional."""

    name: str
    window_s: float = 0.0  # dispatch window in seconds (0: none)
    max_requests: float = math.inf  # prompts per dispatched burst at most
    window_steps: float = 0.0  # dispatch window in decode steps (0: none)
    replica_chips: int | None = None  # fixed replica size (None: the layout search chooses)
    max_batch: float | None = None  # cap on the decode batch (None: the KV cache and engine decide)
    token_budget: float | None = None  # tokens per engine step (None: serving.toml's default)
    admission_steps: float = 1.0  # new requests join every this many decode steps (multi-step scheduling)

    @property
    def dispatched(self) -> bool:
        return self.window_s > 0 or self.window_steps > 0

    def describe(self) -> str:
        parts = []
        if self.replica_chips is not None:
            parts.append(f"{self.replica_chips}-chip replicas")
        if self.max_batch is not None:
            parts.append(f"batch <= {self.max_batch:g}")
        if self.token_budget is not None:
            parts.append(f"{self.token_budget:g} tokens/step")
        if self.admission_steps > 1:
            parts.append(f"new requests every {self.admission_steps:g} decode steps")
        if self.window_s > 0:
            parts.append(f"{self.window_s * 1e3:.0f} ms dispatch window")
        if self.window_steps > 0:
            parts.append(f"prefill every {self.window_steps:g} decode steps")
        return f"{self.name}: {', '.join(parts)}"


# [stacks.*] fields: TOML key -> (Stack field, unit); a time must be > 0 s, a count a whole number >= 1
STACK_FIELDS = {"dispatch_window_s": ("window_s", "s"), "dispatch_max_requests": ("max_requests", "count"),
                "dispatch_window_steps": ("window_steps", "count"), "replica_chips": ("replica_chips", "count"),
                "max_batch": ("max_batch", "count")}


@functools.cache
def serving_constants() -> dict[str, float]:
    path = DATA / "serving.toml"
    table = read_toml(path)["serving"]
    return {k: sourced(v, "dimensionless", f"{path.name}: serving.{k}").value for k, v in table.items()}


@functools.cache
def _stacks() -> dict[tuple[str, str], Stack]:
    path = DATA / "serving.toml"
    out: dict[tuple[str, str], Stack] = {}
    for name, entry in read_toml(path).get("stacks", {}).items():
        where = f"{path.name}: stacks.{name}"
        fields: dict = {}
        for key, (field, unit) in STACK_FIELDS.items():
            if key not in entry:
                continue
            value = sourced(entry[key], unit, f"{where}.{key}").value
            if unit == "s" and not value > 0:
                raise CatalogError(f"{where}.{key}: expected a time > 0 s, got {value:g}")
            if unit == "count" and not (value >= 1 and value == int(value)):
                raise CatalogError(f"{where}.{key}: expected a whole number >= 1, got {value:g}")
            fields[field] = int(value) if field == "replica_chips" else value
        if not fields:
            raise CatalogError(f"{where}: expected at least one of {', '.join(STACK_FIELDS)}")
        if "window_s" in fields and "window_steps" in fields:
            raise CatalogError(f"{where}: expected dispatch_window_s or dispatch_window_steps, not both")
        stack = Stack(name, **fields)
        keys = {}
        for field in ("chips", "scenarios"):
            keys[field] = entry.get(field)
            if not (isinstance(keys[field], list) and keys[field] and all(isinstance(x, str) for x in keys[field])):
                raise CatalogError(f"{where}.{field}: expected a non-empty list of ids, got {keys[field]!r}")
        out.update(((chip, scenario), stack) for chip in keys["chips"] for scenario in keys["scenarios"])
    return out


def stack_for(chip_id: str, scenario: str) -> Stack | None:
    """The stack a suite row on ``chip_id`` in ``scenario`` ran with (None: continuous batching, any layout)."""
    return _stacks().get((chip_id, scenario))


def batch_grid(dep: Deployment, context_tokens: float, points: int = 64, max_batch: float | None = None) -> np.ndarray:
    """Whole batch sizes from 1 to what the KV cache, the engine and a stack's cap allow (per
    micro-batch of an HBM pipeline-parallel replica, whose ``pp`` micro-batches share its KV cache;
    ``Deployment.microbatches_in_flight``)."""
    cap = min(dep.kv_capacity_tokens / context_tokens / dep.microbatches_in_flight, dep.max_batch,
              max_batch if max_batch is not None else math.inf)
    if cap < 1:
        return np.zeros(0)
    return np.unique(np.floor(np.geomspace(1.0, cap, points)))


def operating_point(dep: Deployment, input_tokens: float, output_tokens: float, ttft_limit_s: float,
                    tpot_limit_s: float, stack: Stack | None = None, replicas: int = 1,
                    decode_context_tokens: float | None = None) -> OperatingPoint:
    """The steady state at the highest arrival rate meeting both p99 limits (see module doc).

    ``stack``: the submitter's serving stack feeding ``replicas`` replicas (its batch cap and token
    budget bound continuous batching); None for continuous batching with chunked prefill.
    ``decode_context_tokens``: the workload's mean decode context where lengths vary
    (``perf.step.length_biased_context``); None for ``input + output / 2``.
    """
    b = batch_grid(dep, float(held_tokens(input_tokens, output_tokens, decode_context_tokens)), max_batch=stack.max_batch if stack is not None else None)
    if b.size == 0:
        return NONE
    if stack is not None and stack.dispatched:
        return _dispatched(dep, b, input_tokens, output_tokens, ttft_limit_s, tpot_limit_s, stack, replicas,
                           decode_context_tokens)
    c = continuous_batching(dep, b, input_tokens, output_tokens,
                            token_budget=stack.token_budget if stack is not None else None,
                            admission_steps=stack.admission_steps if stack is not None else 1.0,
                            decode_context_tokens=decode_context_tokens)
    return _pick(b, c.step_s, c.ttft_mean_s, c.output_tok_s, c.ok, ttft_limit_s, tpot_limit_s, c.ttft_p99_s)


@dataclass(frozen=True)
class Curve:
    """Steady states of one replica over an array of decode batches (see module doc); with pipeline
    parallelism on an HBM replica ``batch`` is one micro-batch of the ``pp`` in flight (a wafer or
    dataflow step pipelines its whole batch itself: ``Deployment.microbatches_in_flight``)."""

    batch: np.ndarray
    step_s: np.ndarray  # mixed step: decode plus the prompt tokens that arrive during it
    decode_step_s: np.ndarray  # the same batch decoding with no prompt load (to split chip time)
    ttft_mean_s: np.ndarray
    output_tok_s: np.ndarray  # per replica
    ok: np.ndarray  # the per-step token budget holds
    step: StepCost  # the mixed step's breakdown (for power)
    queue_s: np.ndarray | float = 0.0  # mean wait for room in a step (part of ttft_mean_s)
    queue_p99_s: np.ndarray | float = 0.0  # its 99th percentile

    @property
    def ttft_p99_s(self) -> np.ndarray:
        """p99 TTFT: the published p99/mean ratio on the part outside the queue for room, plus the
        queue's own exponential tail (which dominates near saturation)."""
        return serving_constants()["p99_over_mean_ttft"] * (self.ttft_mean_s - self.queue_s) + self.queue_p99_s

    @property
    def tpot_mean_s(self) -> np.ndarray:
        return self.step_s


def continuous_batching(dep: Deployment, b: np.ndarray, input_tokens: float, output_tokens: float,
                        tokens_per_step: float = 1.0, token_budget: float | None = None,
                        admission_steps: float = 1.0, decode_context_tokens: float | None = None) -> Curve:
    """Chunked-prefill continuous batching at each batch in ``b`` (``tokens_per_step`` > 1: each
    sequence emits that many tokens per step on average, as with speculative decoding;
    ``token_budget``: the engine's tokens per step, else ``serving.toml``'s default;
    ``admission_steps`` = n > 1: the scheduler takes in new requests once per n decode steps, as vLLM's
    multi-step scheduling does, so a prompt waits (n - 1) / 2 steps more for the next one)."""
    k = serving_constants()
    budget = k["prefill_token_budget"] if token_budget is None else float(token_budget)
    load = b * tokens_per_step * input_tokens / output_tokens  # prompt tokens arriving per step
    # a step that carries prompt work carries at least one chunk: the whole prompt, or what the token
    # budget leaves beside the decode batch; below one chunk per step, only some steps carry one
    chunk = np.minimum(input_tokens, np.maximum(budget - b, 1.0))
    prompt = np.maximum(load, chunk)
    frac = load / prompt  # share of steps carrying prompt work
    ones = np.ones_like(b)
    decode_ctx = decode_context(input_tokens, output_tokens, decode_context_tokens)
    mixed = dep.step(Work(prefill_tokens=prompt, prefill_context=input_tokens * 0.5,
                          decode_batch=b, decode_context=decode_ctx))
    plain = dep.step(Work(decode_batch=b, decode_context=decode_ctx))
    t_mixed = np.asarray(mixed.latency_s, dtype=float) * ones
    t_plain = np.asarray(plain.latency_s, dtype=float) * ones
    t = frac * t_mixed + (1.0 - frac) * t_plain
    # the step in flight when a prompt arrives is length-biased (E[t^2] / 2 E[t]: a random arrival
    # more likely lands in a long, prompt-carrying step); then the prompt queues behind the prompt
    # work already waiting (M/D/1 with the steps' prompt share as utilisation) and is prefilled in
    # pieces of P tokens
    residual = (frac * t_mixed ** 2 + (1.0 - frac) * t_plain ** 2) / (2.0 * t)
    wait = np.where(frac < 1.0, frac / (2.0 * np.maximum(1.0 - frac, 1e-9)), 0.0) * t_mixed
    # once prompts arrive faster than one per step they compete for the room the budget leaves beside
    # the batch: a queue of Poisson arrivals (a = L / I prompts per step) served by c = room / I
    # prompt slots per step, each a step long (M/D/c; Sakasegawa's approximation, halved for
    # deterministic service, which is exact M/D/1 at c = 1)
    room = np.maximum(budget - b, 1.0)
    arrivals = load / input_tokens
    slots = room / input_tokens
    rho = np.minimum(load / room, 1.0 - 1e-9)
    queued = rho ** np.sqrt(2.0 * (slots + 1.0))  # share of prompts that wait (Sakasegawa)
    queue = 0.5 * queued / (1.0 - rho) / np.maximum(arrivals, 1e-12) * t_mixed
    wait = np.where(frac < 1.0, wait, queue)
    # the wait's tail is exponential (P(W > w) = P(wait) exp(-w / (mean wait of those who wait))),
    # so its 99th percentile is ln(100 P(wait)) waits of those who wait, not a fixed multiple of the mean
    queued = np.where(frac < 1.0, frac, queued)
    tail = np.where(queued > 0.01, np.log(100.0 * np.maximum(queued, 0.01)) / np.maximum(queued, 1e-12), 0.0) * wait
    # the prompt's own step: with Poisson arrivals the other prompts that arrived meanwhile (L tokens on
    # average, independent of this one) are scheduled with it, first come first served, so the steps up
    # to its first token carry L + I prompt tokens, in pieces of what the budget leaves beside the batch
    ahead = load + input_tokens
    own = dep.step(Work(prefill_tokens=np.minimum(ahead, room), prefill_context=input_tokens * 0.5,
                        decode_batch=b, decode_context=decode_ctx))
    t_own = np.asarray(own.latency_s, dtype=float) * ones
    ttft = residual + wait + np.maximum(1.0, ahead / room) * t_own + 0.5 * (max(admission_steps, 1.0) - 1.0) * t
    step = mixed.scaled(frac).plus(plain.scaled(1.0 - frac))
    # an HBM pipeline-parallel replica keeps one micro-batch of b per stage in flight (in-flight
    # batching over stages): each micro-batch's token takes the whole traversal t, the stages work on
    # the others meanwhile, so the replica emits pp times a micro-batch's tokens per t (a wafer or
    # dataflow step has already cut b over its stages: once)
    tput = dep.microbatches_in_flight * b * tokens_per_step / t
    return Curve(b, t, t_plain, ttft, tput, prompt + b <= budget, step, wait, tail)


def _pick(b: np.ndarray, tpot: np.ndarray, ttft: np.ndarray, tput: np.ndarray, ok: np.ndarray, ttft_limit_s: float,
          tpot_limit_s: float, ttft_p99: np.ndarray | None = None) -> OperatingPoint:
    """The operating point among the batches ``b`` whose p99 latencies meet the limits (``ttft_p99``:
    the p99 TTFT where the caller models it, else the published p99/mean ratio times the mean)."""
    k = serving_constants()
    p99 = k["p99_over_mean_ttft"] * ttft if ttft_p99 is None else ttft_p99
    ok = ok & (k["p99_over_mean_tpot"] * tpot <= tpot_limit_s) & (p99 <= ttft_limit_s)
    if not ok.any():
        return NONE
    tput = np.where(ok, tput, 0.0)
    i = int(np.flatnonzero(tput >= k["knee_fraction"] * tput.max())[-1])  # the largest such batch
    return OperatingPoint(float(b[i]), float(tpot[i]), float(ttft[i]), float(tpot[i]), float(tput[i]), float(p99[i]))


BISECTIONS = 40


def _dispatched(dep: Deployment, b: np.ndarray, input_tokens: float, output_tokens: float, ttft_limit_s: float,
                tpot_limit_s: float, stack: Stack, replicas: int,
                decode_context_tokens: float | None = None) -> OperatingPoint:
    """Operating point of a replica fed in bursts by a dispatch window (see module doc)."""
    zeros = np.zeros_like(b)
    decode = dep.step(Work(prefill_tokens=zeros, prefill_context=zeros, decode_batch=b,
                           decode_context=decode_context(input_tokens, output_tokens, decode_context_tokens)))
    t_d = np.asarray(decode.latency_s, dtype=float) * np.ones_like(b)
    window = stack.window_s + stack.window_steps * t_d
    kmax = stack.max_requests if math.isfinite(stack.max_requests) else float(b.max())
    bursts = np.geomspace(1.0, max(kmax, 1.0 + 1e-9), 64)  # prompts per burst: a grid, interpolated
    prefill = dep.step(Work(prefill_tokens=bursts * input_tokens, prefill_context=input_tokens * 0.5,
                            decode_batch=np.zeros_like(bursts), decode_context=np.zeros_like(bursts)))
    t_p = np.asarray(prefill.latency_s, dtype=float) * np.ones_like(bursts)

    def burst(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prompts per burst, fraction of the time spent prefilling) at per-replica rate ``lam``."""
        k = np.clip(lam * replicas * window, 1.0, kmax)  # a dispatch carries >= 1 prompt
        return k, np.interp(k, bursts, t_p) * lam / k

    lo, hi = zeros.copy(), b / (output_tokens * t_d)  # Little's law with no prefill at all
    for _ in range(BISECTIONS):  # lam = B (1 - f(lam)) / (O t_d): the left side grows, the right shrinks
        lam = 0.5 * (lo + hi)
        over = lam > b * (1.0 - burst(lam)[1]) / (output_tokens * t_d)
        hi, lo = np.where(over, lam, hi), np.where(over, lo, lam)
    lam = 0.5 * (lo + hi)
    k, frac = burst(lam)
    tpot = t_d / np.maximum(1.0 - frac, 1e-12)
    in_flight = 0.5 * t_d if stack.window_s > 0 else 0.0  # a timer window expires mid-step; a step count does not
    ttft = 0.5 * window + in_flight + np.interp(k, bursts, t_p)
    # p99: the wait in the window and the step in flight are bounded (uniform), and the burst a prompt
    # rides in is Poisson in size (99th percentile k + 2.33 sqrt(k), at most k_max)
    k99 = np.minimum(k + 2.33 * np.sqrt(k), max(kmax, 1.0))
    p99 = 0.99 * (window + 2.0 * in_flight) + np.interp(k99, bursts, t_p)
    return _pick(b, tpot, ttft, lam * output_tokens, frac < 1.0, ttft_limit_s, tpot_limit_s, p99)
