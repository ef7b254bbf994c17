"""Family-wide structural constants, loaded from ``perf/data/<family>.toml`` (sourced like the
hardware catalog: every entry is ``{value, basis, source}``)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced

DATA = Path(str(resources.files("siliconsim.perf") / "data"))


@functools.cache
def family_constants(family: str) -> Mapping[str, float]:
    """Every ``{value, basis, source}`` entry of the family's table, as dimensionless floats
    (keys ending in ``_s`` are parsed as seconds, ``_bytes`` as bytes)."""
    path = DATA / f"{family}.toml"
    doc = read_toml(path)
    table = doc.get(family)
    if not isinstance(table, dict):
        raise CatalogError(f"{path.name}: missing table [{family}]")
    out = {}
    for key, entry in table.items():
        expect = "s" if key.endswith("_s") else "bytes" if key.endswith("_bytes_total") else "dimensionless"
        out[key] = sourced(entry, expect, f"{path.name}: {family}.{key}").value
    return MappingProxyType(out)
