"""Render rows for people (rich tables) and machines (JSON, CSV). Writes are atomic."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from siliconsim.report.files import write_text_file


def _clean(v: Any) -> Any:
    """JSON-safe value: NaN/inf become null, NumPy scalars become Python numbers."""
    if hasattr(v, "item") and not isinstance(v, (list, dict)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n"


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = ";".join(str(_clean(x)) for x in v)
        else:
            out[key] = _clean(v)
    return out


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    flat = [_flatten(r) for r in rows]
    cols: list[str] = []
    for r in flat:
        cols.extend(c for c in r if c not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def write_text(text: str, path: str | None) -> None:
    """Write to stdout, or safely to ``path`` (regular files only, atomic, fsync'ed: ``report.files``)."""
    if not path:
        sys.stdout.write(text)
        return
    write_text_file(path, text)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None,
          justify_right: Sequence[int] = ()) -> Any:
    """Build a rich Table (imported lazily: the library never needs rich)."""
    from rich.table import Table

    t = Table(title=title, caption=caption, header_style="bold", title_justify="left", caption_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if i in justify_right else "left", overflow="fold", no_wrap=(i == 0))
    for r in rows:
        t.add_row(*[str(x) for x in r])
    return t


def print_rich(*renderables: Any, path: str | None = None) -> None:
    from rich.console import Console

    if path:
        buf = io.StringIO()
        console = Console(file=buf, width=160, force_terminal=False)
        for r in renderables:
            console.print(r)
        write_text(buf.getvalue(), path)
        return
    console = Console() if sys.stdout.isatty() else Console(width=160)
    for r in renderables:
        console.print(r)


def fmt(v: Any, digits: int = 3) -> str:
    """Compact human number: 3 significant digits, thousands separators for big values."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    v = float(v)
    if not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_short(v: float) -> str:
    """Two significant digits with a k/M suffix, for ranges: 1197 -> '1.2k', 230 -> '230', 2.31 -> '2.3'."""
    v = float(v)
    if not math.isfinite(v):
        return "–"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2g}{suffix}" if abs(v) < 10 * div else f"{v / div:.0f}{suffix}"
    return f"{v:.2g}" if abs(v) < 100 else f"{v:.0f}"
