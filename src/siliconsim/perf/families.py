"""Execution families by name: a plain dict from family name to its constructor's location.

Modules are imported on first use. A family whose module is not built yet maps to ``None``,
so callers can report "not built yet" instead of crashing.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

FAMILY_CLASSES: dict[str, tuple[str, str]] = {
    "hbm": ("siliconsim.perf.hbm", "HbmFamily"),
    "wafer": ("siliconsim.perf.wafer", "WaferFamily"),
    "dataflow": ("siliconsim.perf.dataflow", "DataflowFamily"),
}


@functools.cache
def get_family(name: str) -> Any | None:
    """The family object for ``name``, or None if its module does not exist yet."""
    module, cls = FAMILY_CLASSES[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, cls)()
