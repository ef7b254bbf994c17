"""Disaggregated prefill and decode pools (xPyD) in a closed loop of ``N`` requests in flight.

``prefill_chips`` chips run prefill replicas, ``decode_chips`` chips run decode replicas (DistServe,
OSDI 2024; Splitwise, ISCA 2024). A request is prefilled on a prefill replica, its KV cache moves
to a decode replica over the link the pools share, and it decodes there to its last token; the
client then sends the next prompt at once (closed loop, as ``serving.closed_loop``).

Layouts (``plan_pools``): the decode pool runs a given layout (a row's published ``tp``/``ep``/
``dp_attention``) or the smallest one that fits; the prefill pool takes the layout and replica size
that prefill the most prompt tokens per second on its chips (every replica size dividing them,
every layout the family offers for it).

KV link (``pool_link``): both pools inside one scale-up domain (an NVLink domain of 8 HGX GPUs or
an NVL72 rack) move KV over the scale-up link; otherwise over the scale-out link of the chip's
system catalog. A prompt's transfer is ``perf.collectives.p2p_s`` of the bytes one chip sends or
receives, whichever is more (every chip uses its own port in parallel): a tensor-parallel decode
replica holds its shard of every request (all of it for MLA, whose latent is replicated), a
data-parallel-attention replica holds a whole request on one chip. The transfer is not overlapped
with the prefill (an upper bound; Splitwise overlaps it layer by layer).

Steady state (``disaggregated_point``), with mean lengths ``I``/``O``, ``D`` decode replicas of at
most ``S`` slots each (``min(max batch, KV capacity / (I + O/2))``) and ``P`` prefill replicas:

* a decode replica at batch ``b`` steps in ``t_d(b)`` (decode only: no prefill interference) and
  holds each request for ``O`` steps, so the pool completes ``x = D b / (O t_d(b))`` requests/s;
  a slot is reserved when the transfer starts (engines pre-allocate the KV the prompt will
  arrive into), so a replica holds ``b (1 + T_kv / (O t_d))`` slots, at most ``S``;
* a prefill replica gets ``x / P`` prompts/s and prefills in each step the prompts that arrived
  during the last one, ``k`` of them (``k = x t_p(k) / P``, at most ``token_budget / I`` and what
  its KV cache holds), in
  ``t_p(k)``; a prompt waits for the step in progress with the probability that the replica is
  busy (``u``), half a step on average: residence ``R_p = t_p(k) (1 + u / 2)``. It saturates at
  ``P k_max / t_p(k_max)`` prompts/s;
* Little's law: ``N = D b + x (R_p + T_kv + A)`` (``A``: the API latency below) fixes ``b``.
  When no ``b`` carries ``N`` (the decode slots or the prefill capacity are used up), throughput
  stays at that bound and the rest wait, ``W = (N - N_max) / x``, before admission.

TTFT = ``W`` + the API's first-token latency (``closed_loop.api_overhead_s``, during which the client
holds the request) + ``R_p`` + ``T_kv`` + the first decode step; TPOT = ``t_d(b)``; output throughput =
``x O`` for the whole system, both pools' chips. The event engine's ``ServeConfig(disaggregate=
(P, D))`` runs the same system when both pools share one layout (``tests/unit/test_disagg.py``
compares them); it emits the first token at the end of the prefill, so its TTFT leaves out the
transfer and the first decode step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siliconsim.hardware.spec import Chip, Link
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.collectives import p2p_s
from siliconsim.perf.step import Parallel, Work
from siliconsim.plans import Deployment, fit_layout, plan_deployment
from siliconsim.serving.closed_loop import ClosedLoopPoint, api_overhead_s
from siliconsim.serving.config import ServeConfig

NAN = float("nan")


@dataclass(frozen=True)
class Pools:
    """One prefill and one decode replica and how many of each; ``link`` carries the KV."""

    prefill: Deployment
    prefill_replicas: int
    decode: Deployment
    decode_replicas: int
    link: Link
    link_scope: str  # "scale-up" or "scale-out"

    @property
    def prefill_chips(self) -> int:
        return self.prefill.par.chips * self.prefill_replicas

    @property
    def decode_chips(self) -> int:
        return self.decode.par.chips * self.decode_replicas

    @property
    def chips(self) -> int:
        return self.prefill_chips + self.decode_chips

    def describe(self) -> str:
        return (f"{self.prefill_chips}P{self.decode_chips}D: prefill {self.prefill_replicas}× "
                f"{self.prefill.describe()}, decode {self.decode_replicas}× {self.decode.describe()}, "
                f"KV over {self.link.id} ({self.link_scope})")


@dataclass(frozen=True)
class DisaggPoint(ClosedLoopPoint):
    """``ClosedLoopPoint`` of the whole disaggregated system plus where a request's TTFT goes."""

    queue_s: float = NAN  # waiting for admission beyond what the pools hold (closed-loop excess)
    prefill_s: float = NAN  # at the prefill replica: the step in progress and its own step
    kv_transfer_s: float = NAN
    first_step_s: float = NAN  # the decode step that emits the first token
    bound: str = ""  # what caps throughput: "decode slots", "prefill", or "" (the N requests)
    reason: str = ""  # why nothing runs ("" when feasible)


def pool_link(chip: Chip, chips: int) -> tuple[Link, str]:
    """The link KV moves over between pools of ``chips`` chips in all (see module doc)."""
    system = chip.system
    if chips <= system.scale_up_domain or system.scale_out is None:
        return system.scale_up, "scale-up"
    return system.scale_out, "scale-out"


def kv_transfer_s(pools: Pools, tokens: float) -> float:
    """Seconds to move one request's KV of ``tokens`` tokens from its prefill to its decode replica."""
    def per_chip_bytes(dep: Deployment) -> float:
        whole = dep.par.chips if dep.par.attn_dp else 1  # DP attention: the request sits on one chip
        return tokens * dep.kv_bytes_per_token * whole

    return float(p2p_s(pools.link, max(per_chip_bytes(pools.prefill), per_chip_bytes(pools.decode))))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _decode_layout(model: ModelSpec, chip: Chip, chips: int, dtype: str, kv_dtype: str, context: float,
                   par: Parallel | None) -> Deployment | str:
    """The given layout, or the smallest replica size dividing ``chips`` that holds the model."""
    if par is not None:
        if chips % par.chips:
            return f"decode layout {par.describe()} ({par.chips} chips) does not divide {chips} decode chips"
        return fit_layout(model, chip, par, dtype, kv_dtype, context)
    reason = f"no replica size dividing {chips} decode chips holds {model.id}"
    for n in _divisors(chips):
        plan = plan_deployment(model, chip, chips=n, dtype=dtype, kv_dtype=kv_dtype, context_tokens=context)
        if plan.feasible:
            return plan.deployment  # type: ignore[return-value]
        reason = plan.reason or reason
    return reason


def _prefill_layout(model: ModelSpec, chip: Chip, chips: int, dtype: str, kv_dtype: str, input_tokens: float,
                    token_budget: int) -> Deployment | str:
    """The layout and replica size that prefill the most prompt tokens/s on ``chips`` chips."""
    tokens = max(1.0, token_budget // input_tokens) * input_tokens
    best: tuple[float, Deployment] | None = None
    reason = f"no replica size dividing {chips} prefill chips holds {model.id}"
    for n in _divisors(chips):
        plan = plan_deployment(model, chip, chips=n, dtype=dtype, kv_dtype=kv_dtype, context_tokens=input_tokens)
        if not plan.feasible:
            reason = plan.reason or reason
            continue
        family = plan.deployment.family  # type: ignore[union-attr]
        for par in family.candidates(model, chip, n):
            dep = fit_layout(model, chip, par, dtype, kv_dtype, input_tokens)
            if isinstance(dep, str):
                continue
            rate = (chips // n) * tokens / float(dep.step(Work(prefill_tokens=tokens, prefill_context=input_tokens / 2)).latency_s)
            if best is None or rate > best[0]:
                best = (rate, dep)
    return best[1] if best is not None else reason


def plan_pools(model: ModelSpec, chip: Chip, prefill_chips: int, decode_chips: int, *, dtype: str, kv_dtype: str,
               input_tokens: float, output_tokens: float, decode_par: Parallel | None = None,
               token_budget: int = ServeConfig.token_budget) -> Pools | str:
    """The pools of an xPyD system (see module doc), or why it cannot run."""
    decode = _decode_layout(model, chip, decode_chips, dtype, kv_dtype, input_tokens + output_tokens, decode_par)
    if isinstance(decode, str):
        return f"decode pool: {decode}"
    prefill = _prefill_layout(model, chip, prefill_chips, dtype, kv_dtype, input_tokens, token_budget)
    if isinstance(prefill, str):
        return f"prefill pool: {prefill}"
    link, scope = pool_link(chip, prefill_chips + decode_chips)
    return Pools(prefill, prefill_chips // prefill.par.chips, decode, decode_chips // decode.par.chips, link, scope)


def _batch_grid(slots: int) -> np.ndarray:
    """Decode batches per replica from a fraction of one (fewer requests than replicas) to ``slots``."""
    frac = np.geomspace(1e-3, 1.0, 24)[:-1]
    whole = np.arange(1.0, min(slots, 64) + 1.0)
    wide = np.geomspace(64.0, slots, 96) if slots > 64 else np.empty(0)
    return np.unique(np.concatenate((frac, whole, wide)))


def _prefill_residence(x_per_replica: np.ndarray, k: np.ndarray, t_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(residence at a prefill replica, saturated?) for each arrival rate (see module doc)."""
    ok = x_per_replica[:, None] * t_p[None, :] <= k[None, :]
    idx = np.argmax(ok, axis=1)
    step = t_p[idx]
    busy = np.minimum(x_per_replica * step / k[idx], 1.0)
    return step * (1.0 + busy / 2.0), ~ok.any(axis=1)


def _infeasible(n: int, o: float, reason: str) -> DisaggPoint:
    return DisaggPoint(n, 0.0, NAN, NAN, NAN, o, reason=reason)


def disaggregated_point(pools: Pools, concurrency: int, input_tokens: float, output_tokens: float,
                        config: ServeConfig | None = None) -> DisaggPoint:
    """The closed-form steady state of ``concurrency`` requests in flight on ``pools`` (module doc)."""
    cfg = config or ServeConfig()
    i, o, n = float(input_tokens), float(output_tokens), int(concurrency)
    dec, pre, d, p = pools.decode, pools.prefill, pools.decode_replicas, pools.prefill_replicas
    fit = dec.kv_capacity_tokens // (i + o / 2) if np.isfinite(dec.kv_capacity_tokens) else n
    slots = int(min(cfg.effective_max_batch(dec.max_batch), fit))
    if slots < 1:
        return _infeasible(n, o, f"the KV cache of the decode replica {dec.describe()} holds no {i + o:.0f}-token request")
    if pre.kv_capacity_tokens < i:
        return _infeasible(n, o, f"the KV cache of the prefill replica {pre.describe()} holds no {i:.0f}-token prompt")
    t_kv = kv_transfer_s(pools, i)
    b = _batch_grid(slots)
    t_d = np.asarray(dec.step(Work(decode_batch=np.maximum(b, 1.0), decode_context=i + o / 2)).latency_s, float)
    k = np.arange(1.0, max(1.0, min(cfg.token_budget, pre.kv_capacity_tokens) // i) + 1.0)  # prompts per step
    t_p = np.broadcast_to(np.asarray(pre.step(Work(prefill_tokens=k * i, prefill_context=i / 2)).latency_s, float),
                          k.shape)
    x = d * b / (o * t_d)
    r_p, saturated = _prefill_residence(x / p, k, t_p)
    held = b * (1.0 + t_kv / (o * t_d))
    api = api_overhead_s(dec)  # the API server's first-token latency: the client holds the request meanwhile
    in_flight = np.maximum.accumulate(d * b + x * (r_p + t_kv + api))
    ok = ~saturated & (held <= slots)
    if not ok.any():
        return _infeasible(n, o, f"the prefill pool cannot keep one decode sequence busy on {pools.describe()}")
    last = int(np.flatnonzero(ok)[-1])
    queue, bound = 0.0, ""
    if n >= in_flight[last]:
        j, queue = last, (n - in_flight[last]) / x[last]
        bound = "decode slots" if last == b.size - 1 or held[last + 1] > slots else "prefill"
        bb, td, xx, rp = b[j], t_d[j], x[j], r_p[j]
    else:
        good = np.flatnonzero(ok)
        bb = float(np.interp(n, in_flight[good], b[good]))
        td, xx, rp = (float(np.interp(bb, b, v)) for v in (t_d, x, r_p))
    ttft = queue + api + rp + t_kv + td
    return DisaggPoint(n, float(d * bb), float(xx * o), float(td), float(ttft), o, queue_s=float(queue),
                       prefill_s=float(rp), kv_transfer_s=t_kv, first_step_s=float(td), bound=bound)
