"""alpha-beta cost of collectives over a link (Hockney model; Thakur, Rabenseifner & Gropp,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 2005).

``t = alpha * steps + bytes_on_wire / (efficiency * bandwidth)``. All functions accept NumPy
arrays for the message size.
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
    return link.latency_s * _steps(n, link.algorithm) + wire / (link.efficiency * link.bandwidth_bytes_per_s)


def alltoall_s(link: Link, n: int, message_bytes: Any) -> Any:
    """All-to-all where each chip holds ``message_bytes`` and keeps 1/n of it."""
    if n <= 1:
        return message_bytes * 0.0
    wire = (n - 1) / n * message_bytes
    return link.latency_s + wire / (link.efficiency * link.bandwidth_bytes_per_s)


def p2p_s(link: Link, message_bytes: Any) -> Any:
    """One point-to-point transfer (pipeline hand-off)."""
    return link.latency_s + message_bytes / (link.efficiency * link.bandwidth_bytes_per_s)
