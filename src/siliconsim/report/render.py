"""Render rows for people (rich tables) and machines (JSON, CSV). Writes are atomic."""

from __future__ import annotations

import csv
import io
import json
import math
import os
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


# Version of the JSON interface: every ``--format json`` output is one object whose first key is
# ``schema_version``. Bump it when a key is renamed or removed or changes meaning; adding keys
# does not bump it.
SCHEMA_VERSION = 1


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n"


def json_document(payload: Mapping[str, Any] | Sequence[Any], warnings: Sequence[str] = ()) -> str:
    """The JSON text of a command's output: an object with ``schema_version`` first, then the
    payload's keys (a list becomes ``results``), and ``warnings`` when there are any."""
    body = dict(payload) if isinstance(payload, Mapping) else {"results": list(payload)}
    doc = {"schema_version": SCHEMA_VERSION, **body}
    if warnings:
        doc["warnings"] = list(warnings)
    return to_json(doc)


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


def print_warnings(warnings: Sequence[str]) -> None:
    """Each warning as one line on stderr (the output itself stays machine-readable)."""
    for w in warnings:
        print(f"siliconsim: warning: {w}", file=sys.stderr)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None,
          justify_right: Sequence[int] = (), widths: Sequence[int] | None = None) -> Any:
    """Build a rich Table (imported lazily: the library never needs rich); ``widths`` fixes each
    column's width (see ``fit_columns``)."""
    from rich.table import Table

    t = Table(title=title, caption=caption, header_style="bold", title_justify="left", caption_justify="left")
    for i, c in enumerate(columns):
        numeric = i in justify_right
        t.add_column(c, justify="right" if numeric else "left", overflow="fold", no_wrap=(i == 0),
                     width=widths[i] if widths else None)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    return t


def _widest_word(cells: Any) -> int:
    """Width of the longest space-free piece of any cell, so a number is never split."""
    return max((len(w) for c in cells for w in str(c).split()), default=1)


def fit_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]], justify_right: Sequence[int],
                width: int | None, drop_order: Sequence[str], min_text: int = 8) -> tuple[list[int], list[int] | None]:
    """The columns to show in ``width`` characters, and their widths (None: rich may size them).

    A numeric (right-justified) column is never narrower than its longest word, so no number is
    split; a text column wraps at spaces down to ``min_text``. When even those widths do not fit
    (3 characters of padding and border per column, plus 1), columns are dropped in
    ``drop_order``; the first column always stays. Spare width goes to the columns that wrap."""
    from rich.text import Text

    plain = [[Text.from_markup(str(r[i])).plain for r in rows] for i in range(len(columns))]
    natural = [max([len(c) for c in cells] + [len(columns[i])]) for i, cells in enumerate(plain)]
    words = [_widest_word(cells + [columns[i]]) for i, cells in enumerate(plain)]
    least = [w if i in justify_right or i == 0 else min(w, max(min_text, _widest_word([columns[i]])))
             for i, w in enumerate(words)]
    keep = list(range(len(columns)))
    total = lambda ws: sum(w + 3 for w in ws) + 1  # noqa: E731
    if width is None or total(natural[i] for i in keep) <= width:
        return keep, None
    for name in drop_order:
        if total(least[i] for i in keep) <= width:
            break
        keep = [i for i in keep if columns[i] != name or i == 0]
    widths = [least[i] for i in keep]
    spare = width - total(widths)
    for n, i in enumerate(keep):
        extra = max(0, min(spare, natural[i] - widths[n]))
        widths[n] += extra
        spare -= extra
    return keep, widths


def console_width(*, to_file: bool = False) -> int | None:
    """Width for rich: ``COLUMNS`` when set; else the terminal's (None lets rich ask it); else
    160 for pipes and files."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    return None if sys.stdout.isatty() and not to_file else 160


def print_rich(*renderables: Any, path: str | None = None) -> None:
    from rich.console import Console

    if path:
        buf = io.StringIO()
        console = Console(file=buf, width=console_width(to_file=True), force_terminal=False)
        for r in renderables:
            console.print(r)
        write_text(buf.getvalue(), path)
        return
    console = Console(width=console_width())
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
