"""Read request traces: the Azure LLM inference CSV, or plain CSV / JSONL of
``arrival_s,input_tokens,output_tokens``.

Formats (chosen by the first line, or by ``.jsonl``/``.json`` extension):

- Azure (Patel et al., Splitwise, ISCA 2024): header ``TIMESTAMP,ContextTokens,GeneratedTokens``,
  timestamps like ``2023-11-16 18:17:03.9799600``; times become seconds after the first row. A
  timestamp without an offset is UTC; an offset (``+05:00``, ``Z``) is honoured.
- Plain CSV: header ``arrival_s,input_tokens,output_tokens`` (seconds, any origin).
- JSONL: one object per line with the keys ``arrival_s``, ``input_tokens``, ``output_tokens``.

Named traces shipped as package data: ``azure-code`` (see ``data/README.md``). A malformed line
raises InputError naming the file, the line number, the value and what was expected.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from siliconsim.errors import InputError
from siliconsim.workloads.requests import RequestSet, make_requests

DATA = Path(str(resources.files("siliconsim.workloads") / "data"))
NAMED_TRACES: dict[str, str] = {"azure-code": "azure-code.csv"}
AZURE_HEADER = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
PLAIN_HEADER = ("arrival_s", "input_tokens", "output_tokens")
MAX_TIME_S = 1e10  # about 317 years: POSIX seconds up to the year 2286, or any relative clock
MAX_TOKENS = 10**9  # per request; a thousand times the longest context any catalog model serves
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def trace_path(ref: str) -> Path:
    """A named trace's packaged file, or ``ref`` as a path."""
    if ref in NAMED_TRACES:
        return DATA / NAMED_TRACES[ref]
    return Path(ref)


def read_trace(ref: str) -> RequestSet:
    """Read a named trace or a trace file into a RequestSet whose first arrival is at 0 s."""
    path = trace_path(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(NAMED_TRACES)
        raise InputError(f"--trace {ref}: no such file or named trace (named traces: {known})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: expected UTF-8 text") from None
    lines = text.splitlines()
    if path.suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(lines, path.name)
    else:
        rows = _csv_rows(lines, path.name)
    if not rows:
        raise InputError(f"{path.name}: expected at least one request, found none")
    t, inp, out = (np.array(col) for col in zip(*rows))
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order][0]
    return make_requests(t, inp[order], out[order], source=ref)


def _csv_rows(lines: list[str], name: str) -> list[tuple[float, int, int]]:
    if not lines:
        raise InputError(f"{name}: empty trace")
    header = tuple(h.strip() for h in lines[0].split(","))
    if header == AZURE_HEADER:
        parse_time = _azure_time
    elif header == PLAIN_HEADER:
        parse_time = float
    else:
        raise InputError(f"{name}:1: expected header {','.join(AZURE_HEADER)} or {','.join(PLAIN_HEADER)}, "
                         f"got {lines[0][:80]!r}")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 3:
            raise InputError(f"{name}:{lineno}: expected 3 comma-separated fields, got {line[:80]!r}")
        rows.append(_row(parse_time, parts[0], parts[1], parts[2], name, lineno, line))
    return rows


def _jsonl_rows(lines: list[str], name: str) -> list[tuple[float, int, int]]:
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            values = [obj[k] for k in PLAIN_HEADER]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{name}:{lineno}: expected a JSON object with keys {', '.join(PLAIN_HEADER)}, "
                             f"got {line[:80]!r}") from None
        rows.append(_row(float, *(str(v) for v in values), name, lineno, line))
    return rows


def _row(parse_time, t: str, i: str, o: str, name: str, lineno: int, line: str) -> tuple[float, int, int]:
    try:
        time_s = parse_time(t.strip())
        inp, out = int(i), int(o)
    except ValueError:
        raise InputError(f"{name}:{lineno}: expected time,input_tokens,output_tokens "
                         f"(whole token counts), got {line[:80]!r}") from None
    if not (np.isfinite(time_s) and 0 <= time_s <= MAX_TIME_S):
        raise InputError(f"{name}:{lineno}: expected a time between 0 and {MAX_TIME_S:,.0f} s, got {t.strip()[:40]!r}")
    if not (1 <= inp <= MAX_TOKENS and 1 <= out <= MAX_TOKENS):
        raise InputError(f"{name}:{lineno}: expected input_tokens and output_tokens between 1 and {MAX_TOKENS:,}, "
                         f"got {inp}, {out}")
    return time_s, inp, out


def _azure_time(stamp: str) -> float:
    """``2023-11-16 18:17:03.9799600`` -> POSIX seconds. Naive stamps are UTC; an offset
    (``+05:00`` or ``Z``) is applied, never dropped. Any number of fractional digits."""
    m = _STAMP.match(stamp)
    if not m:
        raise ValueError(stamp)
    whole, frac, offset = m.groups()
    dt = datetime.fromisoformat(whole + ("+00:00" if offset in (None, "Z") else offset))
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def rescale(rs: RequestSet, rate_per_s: float) -> RequestSet:
    """Scale inter-arrival times so the independent requests arrive at ``rate_per_s`` on average.

    The measured rate is ``(n - 1) / (last - first)`` over independent arrivals; the burst
    pattern is kept, only the time axis is stretched.
    """
    roots = rs.arrival_s[rs.parent < 0]
    span_s = float(roots[-1] - roots[0]) if roots.size > 1 else 0.0
    if span_s <= 0:
        return rs
    factor = (roots.size - 1) / span_s / rate_per_s
    arr = np.where(rs.parent < 0, (rs.arrival_s - roots[0]) * factor, rs.arrival_s)
    return RequestSet(arr, rs.input_tokens, rs.output_tokens, rs.cached_tokens, rs.parent, rs.source)
