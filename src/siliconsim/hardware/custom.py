"""Your own hardware: a chip file in the catalog's schema, and ``--set`` what-if overrides.

``resolve_chip(ref, sets)`` is what every front end calls with the user's hardware argument:

- ``ref`` is a catalog id (``h100-sxm``) or a path to a chip TOML (``./my-wafer.toml``; anything
  ending in ``.toml`` or containing a path separator). The file follows the catalog's chip schema
  (see any file under ``hardware/data/chips``); its ``meta.system`` names a catalog system, or the
  file carries its own ``[system]`` table in the systems schema (links are catalog ids).
- ``sets`` are ``KEY=VALUE`` overrides addressed by the dotted TOML path of a quantity
  (``memory.hbm.bandwidth=13 TB/s``). The value replaces the quantity's ``value``; its basis
  becomes ``assumed`` and its source names the override. Unknown keys fail with close matches.

Calibrated efficiencies (``data/calibration/<id>.toml``) belong to a catalog chip: they apply to
that chip's what-ifs and to a user file whose ``meta.id`` is that catalog id (a variant of the
part), never to a file with a new id, which runs on the efficiency priors it states. An
efficiency set with ``--set`` wins over the calibration.

A what-if chip's id is the catalog id with ``*`` appended and ``Chip.what_if`` lists the changes.
Every error is one CatalogError line naming the file and the field.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import _check_meta, _path, _Reader, chip_from, chip_ids, load_chip, read_toml, system_from
from siliconsim.hardware.spec import Chip


def is_path(ref: str) -> bool:
    """A hardware argument names a file when it ends in .toml or contains a path separator."""
    return ref.endswith(".toml") or os.sep in ref or "/" in ref


def resolve_chip(ref: str | Chip, sets: Sequence[str] = ()) -> Chip:
    """The chip a user means by ``ref`` (catalog id, chip file or Chip), with ``sets`` applied."""
    if isinstance(ref, Chip):
        if sets:
            raise CatalogError(f"{ref.id}: --set needs a catalog id or a chip file, not a built chip")
        return ref
    if not is_path(ref) and not sets:
        return load_chip(ref)
    if is_path(ref):
        path = Path(ref)
        doc = read_toml(path)
        file_note = (f"chip file {path.name}",)
    else:
        path = _path("chips", ref, "hardware")
        doc = read_toml(path)
        file_note = ()
    return _variant(path, doc, file_note, sets)


def chip_from_text(text: str, name: str, sets: Sequence[str] = ()) -> Chip:
    """A chip from TOML text (an uploaded chip file named ``name``), with ``sets`` applied."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{name}: malformed TOML: {exc}") from None
    return _variant(Path(name), doc, (f"chip file {name}",), sets)


def _variant(path: Path, doc: dict[str, Any], notes: tuple[str, ...], sets: Sequence[str]) -> Chip:
    """Apply ``sets`` to a parsed chip file and build it; the what-if list is ``notes`` plus the sets."""
    changes = parse_sets(sets)
    keep = frozenset(k for k, _ in changes if k.startswith("efficiency."))
    what_if = notes + tuple(f"{k} = {v}" for k, v in changes)
    return _build(path, apply_sets(doc, changes, path.name), what_if, keep)


def parse_sets(sets: Sequence[str]) -> list[tuple[str, str]]:
    """``["memory.hbm.bandwidth=13 TB/s"]`` -> ``[("memory.hbm.bandwidth", "13 TB/s")]``."""
    out = []
    for item in sets:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise CatalogError(f"--set {item!r}: expected KEY=VALUE, e.g. 'memory.hbm.bandwidth=13 TB/s'")
        out.append((key, value))
    return out


def _leaves(doc: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every settable field: quantities ({value, ...} tables) and plain strings."""
    out = []
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "value" in v:
            out.append(key)
        elif isinstance(v, dict):
            out.extend(_leaves(v, key + "."))
        elif isinstance(v, (str, int, float)):
            out.append(key)
    return out


def apply_sets(doc: dict[str, Any], changes: Sequence[tuple[str, str]], filename: str) -> dict[str, Any]:
    """A copy of the parsed chip file with each override written into its quantity."""
    doc = copy.deepcopy(doc)
    for key, value in changes:
        *parents, leaf = key.split(".")
        node: Any = doc
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            close = difflib.get_close_matches(key, _leaves(doc), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CatalogError(f"{filename}: --set {key}: no such field{hint}")
        old = node[leaf]
        if isinstance(old, dict) and "value" in old:
            node[leaf] = {"value": _number_or_text(value), "basis": "assumed", "source": f"what-if: --set {key}={value}"}
        elif isinstance(old, str):
            node[leaf] = value
        else:
            raise CatalogError(f"{filename}: --set {key}: not a quantity or a string field")
    return doc


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _build(path: Path, doc: dict[str, Any], what_if: tuple[str, ...], keep: frozenset[str]) -> Chip:
    r = _Reader(path, doc)
    file_id = r.text("meta.id")
    _check_meta(r, file_id)  # meta.id, sources and retrieved, as in the catalog
    known = file_id in chip_ids()
    chip_id = f"{file_id}*" if known and what_if else file_id
    system = None
    if isinstance(r.node("system", required=False), dict):
        system = system_from(r, f"{file_id}-system", r.text("meta.name"))
    return chip_from(r, chip_id, calibration_id=file_id if known else None, system=system, keep=keep,
                     what_if=what_if)
