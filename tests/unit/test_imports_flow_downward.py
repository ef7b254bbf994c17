"""Imports point downward only (DESIGN.md section 1): a module may import its own layer or lower."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "siliconsim"

# Higher number = higher layer. Unlisted top-level modules are treated as layer 0 helpers.
LAYERS = {
    "errors": 0, "units": 0,
    "hardware": 1, "models": 1, "workloads": 1,
    "perf": 2, "plans": 3,
    "inference": 4, "speculative": 4, "serving": 4, "training": 4,
    "accounting": 5, "audit": 6, "planner": 6, "validation": 6, "calibration": 6,
    "report": 7, "cli": 8, "explorer": 8,
}


def _layer(dotted: str) -> int | None:
    parts = dotted.split(".")
    if parts[0] != "siliconsim" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1], 0)


def test_every_import_points_down_or_sideways():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        mod = ".".join(rel.parts)
        own = _layer(mod if rel.parts[-1] != "__init__" else ".".join(rel.parts[:-1]))
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                target = _layer(n)
                if target is not None and target > own:
                    bad.append(f"{mod} imports {n}")
    assert not bad, "upward imports: " + "; ".join(bad)
