"""Routing of arriving requests to replicas: a Protocol plus a dict from name to constructor.

- ``round-robin``: replicas in turn.
- ``least-loaded``: the replica with the fewest outstanding requests (ties: lowest index).
"""

from __future__ import annotations

from typing import Protocol, Sequence

from siliconsim.serving.replica import Replica


class Router(Protocol):
    def pick(self, replicas: Sequence[Replica]) -> Replica:
        ...


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def pick(self, replicas: Sequence[Replica]) -> Replica:
        rep = replicas[self._next % len(replicas)]
        self._next += 1
        return rep


class LeastLoaded:
    def pick(self, replicas: Sequence[Replica]) -> Replica:
        best = replicas[0]
        for rep in replicas:
            if rep.outstanding < best.outstanding:
                best = rep
        return best


ROUTERS = {"round-robin": RoundRobin, "least-loaded": LeastLoaded}
