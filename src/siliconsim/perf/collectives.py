"""alpha-beta cost of collectives over a link (Hockney model; Thakur, Rabenseifner & Gropp,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 2005).

``t = base + alpha * steps + bytes_on_wire / (efficiency * bandwidth)``, ``base`` the link's
per-call latency (0 for the catalog links, whose ``alpha`` is measured per call; NCCL's tuning
model has one, ``validation.generations``). All functions accept NumPy arrays for the message size.
"""

from __future__ import annotations

import math
from typing import Any

from siliconsim.hardware.spec import Link


def _steps(n: int, algorithm: str) -> float:
    if n <= 1:
        return 0.0
    if algorithm == "oneshot":  # NVSwitch multicast / TensorRT-LLM one-shot: one synchronisation
        return 1.0
    if algorithm == "tree":
        return 2.0 * math.ceil(math.log2(n))
    return 2.0 * (n - 1)  # ring: reduce-scatter + all-gather


def allreduce_s(link: Link, n: int, message_bytes: Any) -> Any:
    """All-reduce of ``message_bytes`` per chip among ``n`` chips."""
    if n <= 1:
        return message_bytes * 0.0
    wire = 2.0 * (n - 1) / n * message_bytes  # bandwidth-optimal lower bound on bytes sent
    return (link.base_latency_s + link.latency_s * _steps(n, link.algorithm)
            + wire / (link.efficiency * link.bandwidth_bytes_per_s))


def alltoall_s(link: Link, n: int, message_bytes: Any) -> Any:
    """All-to-all where each chip holds ``message_bytes`` and keeps 1/n of it."""
    if n <= 1:
        return message_bytes * 0.0
    wire = (n - 1) / n * message_bytes
    return link.base_latency_s + link.latency_s + wire / (link.efficiency * link.bandwidth_bytes_per_s)


def p2p_s(link: Link, message_bytes: Any) -> Any:
    """One point-to-point transfer (pipeline hand-off)."""
    return link.base_latency_s + link.latency_s + message_bytes / (link.efficiency * link.bandwidth_bytes_per_s)


def reducescatter_s(link: Link, n: int, message_bytes: Any) -> Any:
    """Reduce-scatter (or all-gather) of ``message_bytes`` per chip among ``n`` chips: half an
    all-reduce's wire bytes, ``n - 1`` ring steps (Thakur et al. 2005)."""
    if n <= 1:
        return message_bytes * 0.0
    steps = 1.0 if link.algorithm == "oneshot" else float(n - 1)
    wire = (n - 1) / n * message_bytes
    return link.base_latency_s + link.latency_s * steps + wire / (link.efficiency * link.bandwidth_bytes_per_s)


def group_collective_s(pattern: str, scale_up: Link, scale_out: Link | None, n: int, local: int,
                       message_bytes: Any) -> Any:
    """A collective among ``n`` chips of which ``local`` share each scale-up domain.

    Inside one domain it runs on the scale-up link. A group that spans domains runs
    hierarchically (NCCL's tree/ring across nodes; Jia et al. "Highly scalable deep learning
    training system with mixed-precision", 2018): reduce-scatter inside, the pattern across
    domains on ``1/local`` of the message over the scale-out link (each chip has its own NIC), then
    all-gather inside. An all-to-all sends ``(n - local)/n`` of its bytes across domains.
    """
    local = max(1, min(local, n))
    if local >= n or scale_out is None:
        one = {"allreduce": allreduce_s, "alltoall": alltoall_s}.get(pattern, reducescatter_s)
        return one(scale_up, n, message_bytes)
    across = n // local
    if pattern == "alltoall":
        inside = alltoall_s(scale_up, local, message_bytes * local / n) if local > 1 else 0.0
        return inside + alltoall_s(scale_out, across, message_bytes)  # (n - local)/n of it on the wire
    inside = reducescatter_s(scale_up, local, message_bytes)
    if pattern == "allreduce":
        return 2.0 * inside + allreduce_s(scale_out, across, message_bytes / local)
    return inside + reducescatter_s(scale_out, across, message_bytes / local)
