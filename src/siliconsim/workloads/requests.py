"""A set of requests to serve: arrival times and token counts, as NumPy arrays.

A request either arrives at an absolute time (``parent == -1``: ``arrival_s`` is seconds from
the start of the run) or is a follow-up turn of a multi-turn session (``parent >= 0``: it
arrives ``arrival_s`` seconds after request ``parent`` completes, the user's or tool's think
time). ``cached_tokens`` of a follow-up's prompt are the earlier turns' context, assumed to be
served from a prefix cache, so only ``input_tokens - cached_tokens`` are prefilled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siliconsim.errors import InputError


@dataclass(frozen=True)
class RequestSet:
    """Requests in arrival order of the independent ones (see module docstring)."""

    arrival_s: np.ndarray  # float64
    input_tokens: np.ndarray  # int64, whole prompt including cached prefix
    output_tokens: np.ndarray  # int64, >= 1
    cached_tokens: np.ndarray  # int64, <= input_tokens - 1
    parent: np.ndarray  # int64, -1 or index of the previous turn
    source: str = ""

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def has_sessions(self) -> bool:
        return bool(np.any(self.parent >= 0))


def make_requests(arrival_s, input_tokens, output_tokens, *, cached_tokens=None, parent=None,
                  source: str = "") -> RequestSet:
    """Build and check a RequestSet from array-likes; errors name the field and value."""
    arr = np.asarray(arrival_s, dtype=np.float64)
    n = arr.size
    inp = np.asarray(input_tokens, dtype=np.int64)
    out = np.asarray(output_tokens, dtype=np.int64)
    cached = np.zeros(n, np.int64) if cached_tokens is None else np.asarray(cached_tokens, dtype=np.int64)
    par = np.full(n, -1, np.int64) if parent is None else np.asarray(parent, dtype=np.int64)
    for name, a in (("input_tokens", inp), ("output_tokens", out), ("cached_tokens", cached), ("parent", par)):
        if a.shape != arr.shape:
            raise InputError(f"{name}: expected {n} values, got {a.size}")
    if n == 0:
        raise InputError("requests: expected at least one request, got none")
    _check(arr, inp, out, cached, par)
    return RequestSet(arr, inp, out, cached, par, source)


def _check(arr: np.ndarray, inp: np.ndarray, out: np.ndarray, cached: np.ndarray, par: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        i = int(np.argmax(~np.isfinite(arr) | (arr < 0)))
        raise InputError(f"arrival_s[{i}]: expected a finite time >= 0, got {arr[i]!r}")
    checks = (("input_tokens", inp < 1, ">= 1"), ("output_tokens", out < 1, ">= 1"),
              ("cached_tokens", (cached < 0) | (cached >= inp), ">= 0 and < input_tokens"),
              ("parent", (par >= np.arange(arr.size)) | (par < -1), "-1 or the index of an earlier request"))
    for name, bad, expected in checks:
        if np.any(bad):
            i = int(np.argmax(bad))
            value = {"input_tokens": inp, "output_tokens": out, "cached_tokens": cached, "parent": par}[name][i]
            raise InputError(f"{name}[{i}]: expected {expected}, got {int(value)}")
    roots = arr[par < 0]
    if np.any(np.diff(roots) < 0):
        raise InputError("arrival_s: expected independent requests sorted by arrival time")


def take(rs: RequestSet, count: int | None = None, duration_s: float | None = None) -> RequestSet:
    """The first ``count`` requests and/or those whose root session arrives before ``duration_s``."""
    keep = np.ones(len(rs), bool)
    if duration_s is not None:
        root_time = _root_arrival(rs)
        keep &= root_time < duration_s
    idx = np.flatnonzero(keep)
    if count is not None:
        idx = idx[:count]
    if idx.size == 0:
        raise InputError(f"requests: no request arrives within the first {duration_s} s")
    # parents precede their follow-ups and share their root's arrival, so none is orphaned
    remap = np.full(len(rs), -1, np.int64)
    remap[idx] = np.arange(idx.size)
    par = rs.parent[idx]
    par = np.where(par >= 0, remap[np.maximum(par, 0)], -1)
    return RequestSet(rs.arrival_s[idx], rs.input_tokens[idx], rs.output_tokens[idx], rs.cached_tokens[idx],
                      par, rs.source)


def _root_arrival(rs: RequestSet) -> np.ndarray:
    """Arrival time of each request's session root (parents precede children)."""
    root = rs.arrival_s.copy()
    for i in np.flatnonzero(rs.parent >= 0):
        root[i] = root[rs.parent[i]]
    return root
