"""`simulate` output does not move when the engine or the families get faster (issue 13, deliverable 5).

Source: ``tests/golden/data/simulate/*.json``, the ``--format json`` output of ``siliconsim simulate``
for the first 60 s of the Azure code trace on a GPU, a wafer and a dataflow deployment, as written
by the commit before the speed work (main at f7409ae). Tolerance: none, every number must be
identical to the last bit (compared as parsed JSON, whose floats round-trip exactly): caches and
precomputation may change how fast a number is found, never the number. The one field left out is
``simulator.cost_model_calls``, which counts the work the speed-up changes.

Regenerate only in a commit that changes serving predictions on purpose:
``.venv/bin/python tests/golden/test_simulate_invariance.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from siliconsim.cli.main import main

DATA = Path(__file__).parent / "data" / "simulate"
CASES = {
    "h100x8-llama-3.1-70b": ["-m", "llama-3.1-70b", "-H", "h100-sxm", "--chips", "8"],
    "cs-3x4-llama-3.1-70b": ["-m", "llama-3.1-70b", "-H", "cs-3", "--chips", "4"],
    "groq-llama-3.1-8b": ["-m", "llama-3.1-8b", "-H", "groq-lpu"],
    "cs-3x4-llama-3.1-70b-prefill-first": ["-m", "llama-3.1-70b", "-H", "cs-3", "--chips", "4",
                                           "--scheduler", "prefill-first"],
}


def simulate_json(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["simulate", *args, "--trace", "azure-code", "--duration", "60", "--format", "json"])
    assert code == 0
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(CASES))
def test_simulate_output_is_identical_to_the_recorded_one(name):
    now, then = json.loads(simulate_json(CASES[name])), json.loads((DATA / f"{name}.json").read_text())
    for rec in (now, then):
        del rec["simulator"]["cost_model_calls"]
    assert now == then


if __name__ == "__main__":
    for name, args in CASES.items():
        (DATA / f"{name}.json").write_text(simulate_json(args))
