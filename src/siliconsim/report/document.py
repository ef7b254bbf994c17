"""The neutral report model: a Document of tables and figures, built from a command's JSON record.

Commands produce typed records (``--format json``); ``report.figures`` turns a record into a
Document; back ends render a Document: ``report.html`` (one self-contained HTML file), and here
rich tables, CSV and JSON. A Figure says *what* to draw (kind, axes with units, series), never
*how*; the HTML back end draws it with matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from siliconsim.report.render import fmt, to_csv, to_json


@dataclass(frozen=True)
class Column:
    name: str
    unit: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str = ""

    def records(self) -> list[dict[str, Any]]:
        return [{c.label: v for c, v in zip(self.columns, r)} for r in self.rows]


@dataclass(frozen=True)
class Series:
    """One named series: x and y values (a stacked-bar segment uses x as its category labels)."""

    name: str
    x: tuple[Any, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class Figure:
    """``kind``: ``stacked_bars`` (horizontal, x = categories), ``scatter`` (log-log predicted vs
    measured; ``bands`` are fractional error bands around y = x), ``lines`` (log-log curves, e.g.
    a roofline: attainable FLOP/s over arithmetic intensity, with ``markers`` as points)."""

    kind: str
    title: str
    x_label: str  # with its unit, e.g. "arithmetic intensity (FLOP/byte)"
    y_label: str
    series: tuple[Series, ...]
    bands: tuple[float, ...] = ()
    markers: tuple[Series, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class Document:
    title: str
    command: str
    argv: tuple[str, ...]
    version: str
    tables: tuple[Table, ...]
    figures: tuple[Figure, ...]
    assumptions: tuple[str, ...]
    record: Any = field(default=None, compare=False)  # the JSON behind it


def to_rich(doc: Document) -> list[Any]:
    """Rich renderables: one table per Table, then the assumptions."""
    from siliconsim.report.render import table

    out: list[Any] = []
    for t in doc.tables:
        numeric = tuple(i for i, v in enumerate(t.rows[0]) if isinstance(v, (int, float))) if t.rows else ()
        out.append(table(t.title, [c.label for c in t.columns], [[fmt(v) for v in r] for r in t.rows],
                         caption=t.caption or None, justify_right=numeric))
    out.extend(f"assumed: {a}" for a in doc.assumptions)
    return out


def tables_csv(doc: Document) -> str:
    """CSV of the first table (the one a spreadsheet wants); every table is in the JSON."""
    return to_csv(doc.tables[0].records()) if doc.tables else ""


def document_json(doc: Document) -> str:
    return to_json({"title": doc.title, "command": doc.command, "argv": list(doc.argv), "version": doc.version,
                    "tables": [{"title": t.title, "rows": t.records(), "caption": t.caption} for t in doc.tables],
                    "assumptions": list(doc.assumptions), "record": doc.record})


def series(name: str, x: Sequence[Any], y: Sequence[float]) -> Series:
    return Series(name, tuple(x), tuple(float(v) for v in y))
