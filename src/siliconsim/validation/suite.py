"""Load a validation suite: published measurements in the CSV schema of ``data/README.md``.

Each row becomes a frozen :class:`Case`. A malformed row raises :class:`InputError` naming the
file, the row (line number and id) and the column, so a hand-edited suite fails loudly on the
first bad cell instead of being skipped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

from siliconsim.errors import InputError, UnknownIdError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model

_C = TypeVar("_C")
DATA = Path(str(resources.files("siliconsim.validation") / "data"))
DEFAULT_SUITE = DATA / "dev.csv"

COLUMNS = ("id", "hardware", "chips", "model", "weight_dtype", "scenario", "input_tokens", "output_tokens",
           "concurrency", "ttft_limit_ms", "tpot_limit_ms", "speculative", "metric", "value", "unit",
           "source_url", "notes")
# Optional columns of serving-sweep suites (``inferencex-dev.csv``): the published layout and engine.
LAYOUT_COLUMNS = ("tp", "ep", "dp_attention", "prefill_chips", "decode_chips", "engine")
SCENARIOS = ("single_stream", "offline", "server", "interactive", "concurrency")
METRICS = {  # metric -> unit
    "aggregate_output_tok_s": "tok/s",
    "output_tok_s_per_user": "tok/s",
    "ttft_ms": "ms",
    "ttft_mean_ms": "ms",
    "tpot_mean_ms": "ms",
    "tpot_median_ms": "ms",
    "ttft_median_ms": "ms",
    "system_power_w": "W",
    "energy_j_per_output_token": "J/tok",
}
POWER_METRICS = ("system_power_w", "energy_j_per_output_token")
# packaged suites by name (``--cases power``)
SUITES = {"dev": "dev.csv", "power": "power-dev.csv", "concurrency": "inferencex-dev.csv"}
DTYPES = ("bf16", "fp16", "fp8", "fp4", "int8", "int4")
SPECULATIVE = ("none", "eagle3", "mtp", "specdec", "unknown-spec")
TRUST = ("mlperf", "vendor-benchmark", "independent", "vendor-claim", "academic")


@dataclass(frozen=True)
class Case:
    """One published measurement with the setup needed to predict it (see data/README.md)."""

    id: str
    hardware: str
    chips: int | None
    model: str
    weight_dtype: str
    scenario: str
    input_tokens: float | None
    output_tokens: float | None
    concurrency: int | None
    ttft_limit_ms: float | None
    tpot_limit_ms: float | None
    speculative: str
    metric: str
    value: float
    unit: str
    source_url: str
    notes: str
    chip_power_limit_w: float | None = None  # the run's accelerator power cap (optional column)
    # the published serving layout and engine (optional columns, see LAYOUT_COLUMNS)
    tp: int | None = None
    ep: int | None = None
    dp_attention: bool | None = None
    prefill_chips: int | None = None
    decode_chips: int | None = None
    engine: str = ""

    @property
    def trust(self) -> str:
        """The trust tag at the start of ``notes`` (``mlperf``, ``vendor-claim`` ...)."""
        return self.notes[1:self.notes.index("]")]

    @property
    def is_speculative(self) -> bool:
        return self.speculative != "none"

    @property
    def closed_loop(self) -> bool:
        """A serving-sweep row (any layout column set): predicted as a closed-loop run with
        ``concurrency`` requests in flight, not as one static batch."""
        return self.scenario == "concurrency" and (
            bool(self.engine) or self.tp is not None or self.metric in ("tpot_median_ms", "ttft_median_ms"))

    @property
    def group(self) -> tuple[str, str]:
        """The group used for leave-one-group-out error: (hardware, model), or (hardware, engine)
        for a serving-sweep row, whose sweeps share one model and differ by stack."""
        if self.closed_loop:
            return self.hardware, f"engine:{self.engine or '-'}"
        return self.hardware, self.model


class _Row:
    """Parses the cells of one CSV row, naming file, line, id and column in errors."""

    def __init__(self, where: str, cells: dict[str, str]):
        self.where, self.cells = where, cells

    def fail(self, column: str, expected: str) -> InputError:
        return InputError(f"{self.where}, column {column}: expected {expected}, got {self.cells[column]!r}")

    def text(self, column: str, choices: tuple[str, ...] | None = None) -> str:
        v = self.cells[column].strip()
        if not v or (choices is not None and v not in choices):
            raise self.fail(column, f"one of {', '.join(choices)}" if choices else "a non-empty value")
        return v

    def number(self, column: str, *, required: bool = False, whole: bool = False) -> float | None:
        raw = self.cells[column].strip()
        if not raw:
            if required:
                raise self.fail(column, "a number")
            return None
        try:
            v = float(raw)
        except ValueError:
            raise self.fail(column, "a number") from None
        if not math.isfinite(v) or v <= 0 or (whole and v != int(v)):
            raise self.fail(column, "a whole number > 0" if whole else "a finite number > 0")
        return v


def _case(row: _Row) -> Case:
    metric = row.text("metric", tuple(METRICS))
    unit = row.text("unit")
    if unit != METRICS[metric]:
        raise row.fail("unit", f"{METRICS[metric]!r} for metric {metric}")
    notes = row.cells["notes"].strip()
    tag = notes[1:notes.find("]")] if notes.startswith("[") and "]" in notes else ""
    if tag not in TRUST:
        raise row.fail("notes", f"a trust tag [{'], ['.join(TRUST)}] at the start")
    chips, conc = row.number("chips", whole=True), row.number("concurrency", whole=True)
    scenario = row.text("scenario", SCENARIOS)
    if scenario == "concurrency" and conc is None:
        raise row.fail("concurrency", "a number of requests in flight for scenario concurrency")
    return Case(
        id=row.text("id"), hardware=row.text("hardware"), chips=int(chips) if chips else None,
        model=row.text("model"), weight_dtype=row.text("weight_dtype", DTYPES), scenario=scenario,
        input_tokens=row.number("input_tokens"), output_tokens=row.number("output_tokens"),
        concurrency=int(conc) if conc else None, ttft_limit_ms=row.number("ttft_limit_ms"),
        tpot_limit_ms=row.number("tpot_limit_ms"), speculative=row.text("speculative", SPECULATIVE),
        metric=metric, value=row.number("value", required=True), unit=unit,  # type: ignore[arg-type]
        source_url=row.cells["source_url"].strip(), notes=notes,
        chip_power_limit_w=row.number("chip_power_limit_w") if "chip_power_limit_w" in row.cells else None,
        **_layout(row))


def _layout(row: _Row) -> dict[str, object]:
    """The optional layout columns (absent or empty: None, engine "")."""
    out: dict[str, object] = {}
    for column in ("tp", "ep", "prefill_chips", "decode_chips"):
        v = row.number(column, whole=True) if column in row.cells else None
        out[column] = int(v) if v else None
    flag = row.cells.get("dp_attention", "").strip()
    if flag not in ("", "0", "1"):
        raise row.fail("dp_attention", "0, 1 or empty")
    out["dp_attention"] = None if not flag else flag == "1"
    out["engine"] = row.cells.get("engine", "").strip()
    return out


def load_cases(path: str | Path | None = None) -> list[Case]:
    """Every row of the suite at ``path``, or of a packaged suite by name (``SUITES``; default ``dev``)."""
    path = DATA / SUITES[str(path)] if str(path) in SUITES else Path(path) if path else DEFAULT_SUITE
    return read_suite(path, COLUMNS, _case)


def read_suite(path: Path, columns: tuple[str, ...], parse: Callable[[_Row], _C]) -> list[_C]:
    """Every row of the CSV at ``path`` parsed by ``parse``; InputError names the file (and the
    line, id and column) on non-UTF-8 bytes, malformed CSV, missing columns, a short row, a
    duplicate id or no rows at all. Shared by the inference and training suites."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            cases = _read_rows(csv.DictReader(fh), path, columns, parse)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: expected UTF-8 CSV text, found byte 0x{exc.object[exc.start]:02x} "
                         f"at offset {exc.start}") from None
    except csv.Error as exc:
        raise InputError(f"{path.name}: malformed CSV: {exc}") from None
    if not cases:
        raise InputError(f"{path.name}: no rows")
    return cases


def _read_rows(reader: csv.DictReader, path: Path, columns: tuple[str, ...], parse: Callable[[_Row], _C]) -> list[_C]:
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path.name}: header lacks column(s) {', '.join(missing)}")
    cases, seen = [], set()
    for cells in reader:
        where = f"{path.name} line {reader.line_num} ({(cells.get('id') or '?').strip()})"
        if None in cells or any(cells[c] is None for c in columns):
            raise InputError(f"{where}: expected {len(reader.fieldnames or [])} cells per row")
        case = parse(_Row(where, cells))
        if case.id in seen:  # type: ignore[attr-defined]
            raise InputError(f"{where}, column id: duplicate id {case.id!r}")  # type: ignore[attr-defined]
        seen.add(case.id)  # type: ignore[attr-defined]
        cases.append(case)
    return cases


def check_catalog_ids(cases: list[Case], path: str | Path | None = None) -> None:
    """Raise InputError on the first row whose hardware or model id is not in the catalog.

    ``run_suite`` lists such rows as not predicted (it never skips a row); the command line
    refuses them instead, since a suite whose rows cannot be predicted scores nothing.
    """
    name = Path(path).name if path else DEFAULT_SUITE.name
    for case in cases:
        for column, load in (("hardware", load_chip), ("model", load_model)):
            try:
                load(getattr(case, column))
            except UnknownIdError as exc:
                raise InputError(f"{name}: row {case.id}, column {column}: {exc}") from None
