"""tests/catalog: every MemoryX/SwarmX file under hardware/data/stores loads, names itself and
sources every quantity; each wafer chip with training data points at stores that exist."""

import tomllib

import pytest

from siliconsim.hardware.catalog import DATA, load_chip
from siliconsim.hardware.spec import BASES
from siliconsim.hardware.stores import load_memoryx, load_swarmx
from siliconsim.training.wafer import stores_of, wafer_data

FILES = sorted((DATA / "stores").glob("*.toml"))


def _entries(node, dotted=""):
    if isinstance(node, dict):
        if "basis" in node:
            yield dotted, node
            return
        for k, v in node.items():
            yield from _entries(v, f"{dotted}.{k}" if dotted else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _entries(v, f"{dotted}[{i}]")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_store_file_loads_and_sources_every_quantity(path):
    doc = tomllib.loads(path.read_text())
    loader = {"memoryx": load_memoryx, "swarmx": load_swarmx}[doc["meta"]["kind"]]
    assert loader(path.stem).id == path.stem == doc["meta"]["id"] and doc["meta"]["sources"]
    entries = list(_entries(doc))
    assert entries
    for where, e in entries:
        assert e["basis"] in BASES and e["source"].strip(), where


def test_every_wafer_chip_with_training_data_has_its_stores():
    assert set(wafer_data().memoryx) == {"cs-2", "cs-3"}
    for chip in ("cs-2", "cs-3"):
        memx, swx = stores_of(load_chip(chip))
        assert swx.max_systems == load_chip(chip).system.max_chips
        assert memx.bandwidth_per_system_bytes_per_s == swx.bandwidth_per_system_bytes_per_s
