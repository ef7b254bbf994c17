"""Hardware catalog: every chip, link and system file loads, is sourced, and is self-consistent."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from siliconsim.errors import CatalogError
from siliconsim.hardware import catalog
from siliconsim.hardware.spec import BASES, DTYPES

DATA = catalog.DATA

REQUIRED_CHIPS = {
    "h100-sxm", "h100-pcie", "h200", "gh200", "b200", "gb200-nvl72", "gb300-nvl72",
    "mi300x", "mi325x", "mi355x", "gaudi2", "gaudi3", "tpu-v5e", "tpu-v6e",
    "cs-2", "cs-3", "groq-lpu", "sn40l",
    # the training suite's chips
    "a100-sxm-40gb", "a100-sxm-80gb", "h800", "tpu-v4", "tpu-v5p", "mi350x", "b300",
}
REQUIRED_LINKS = {
    "nvlink4", "nvlink5", "ib-ndr", "ib-xdr", "infinity-fabric", "pcie-gen5", "nvlink-bridge",
    "gaudi-roce", "tpu-ici", "tpu-dcn", "ethernet-400g", "groq-c2c", "cerebras-io",
    "sambanova-rdu-net",
    "nvlink3", "nvlink4-h800", "ib-hdr", "tpu-ici-v4", "tpu-ici-v5p", "tpu-dcn-v4", "tpu-dcn-v5p",
}
REQUIRED_SYSTEMS = {
    "hgx-h100", "hgx-h100-pcie", "hgx-h200", "gh200-node", "hgx-b200", "gb200-nvl72-rack",
    "gb300-nvl72-rack", "mi300x-platform", "mi325x-platform", "mi355x-platform", "gaudi2-hls",
    "gaudi3-hls", "tpu-v5e-pod", "tpu-v6e-pod", "cs-2-cluster", "cs-3-cluster", "groq-rack",
    "sambanova-sn40l-16",
    "hgx-a100", "hgx-h800", "tpu-v4-pod", "tpu-v5p-pod", "mi350x-platform", "hgx-b300",
}
FAMILY = {cid: "hbm" for cid in REQUIRED_CHIPS}
FAMILY.update({"cs-2": "wafer", "cs-3": "wafer", "groq-lpu": "dataflow", "sn40l": "dataflow"})

# Dtypes with a native dense rate. Pins the "only list what the chip supports" rule.
NATIVE_DTYPES = {
    "h100-sxm": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "h100-pcie": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "h200": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "gh200": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "b200": {"bf16", "fp16", "fp8", "int8", "fp4"},
    "gb200-nvl72": {"bf16", "fp16", "fp8", "int8", "fp4"},
    "gb300-nvl72": {"bf16", "fp16", "fp8", "fp4"},
    "mi300x": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "mi325x": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "mi355x": {"bf16", "fp16", "fp8", "int8", "fp4"},
    "gaudi2": {"bf16", "fp8"},
    "gaudi3": {"bf16", "fp8"},
    "tpu-v5e": {"bf16", "int8"},
    "tpu-v6e": {"bf16", "int8"},
    "cs-2": {"bf16", "fp16"},
    "cs-3": {"bf16", "fp16"},
    "groq-lpu": {"int8", "fp16"},
    "sn40l": {"bf16"},
    "a100-sxm-40gb": {"bf16", "fp16", "int8", "fp32"},  # Ampere: no fp8 tensor cores
    "a100-sxm-80gb": {"bf16", "fp16", "int8", "fp32"},
    "h800": {"bf16", "fp16", "fp8", "int8", "fp32"},
    "tpu-v4": {"bf16", "int8"},
    "tpu-v5p": {"bf16", "int8"},
    "mi350x": {"bf16", "fp16", "fp8", "int8", "fp4"},
    "b300": {"bf16", "fp16", "fp8", "fp4"},  # Blackwell Ultra cuts int8, as gb300-nvl72
}

WAFER_MICROARCH = {
    "pe_count", "fabric_x", "fabric_y", "usable_x", "usable_y", "sram_per_pe_bytes",
    "simd_fp16_lanes", "clock_hz", "sram_read_bytes_per_cycle", "link_bytes_per_cycle",
    "hop_latency_cycles", "relay_latency_cycles", "io_bandwidth_bytes_per_s", "io_latency_s",
}
GROQ_MICROARCH = {"clock_hz", "c2c_links", "c2c_link_bandwidth_bytes_per_s", "c2c_hop_latency_s"}


def _files(kind: str) -> list[Path]:
    return sorted((DATA / kind).glob("*.toml"))


CHIP_FILES = _files("chips")
LINK_FILES = _files("links")
SYSTEM_FILES = _files("systems")
ALL_FILES = CHIP_FILES + LINK_FILES + SYSTEM_FILES


def _ids(files: list[Path]) -> list[str]:
    return [p.stem for p in files]


def _sourced_entries(node, dotted=""):
    """Yield (dotted, table) for every {value, basis, source} table in a parsed file."""
    if isinstance(node, dict):
        if "basis" in node or ("value" in node and "source" in node):
            yield dotted, node
            return
        for k, v in node.items():
            yield from _sourced_entries(v, f"{dotted}.{k}" if dotted else k)


def _check_sourced(where: str, basis: str, source: str) -> None:
    assert basis in BASES, f"{where}: basis {basis!r}"
    assert isinstance(source, str) and source.strip(), f"{where}: empty source"
    if basis == "datasheet":
        assert "http" in source, f"{where}: datasheet source without a URL: {source!r}"


# ---------------------------------------------------------------- presence and ids


def test_required_ids_exist():
    assert REQUIRED_CHIPS <= set(catalog.chip_ids()), REQUIRED_CHIPS - set(catalog.chip_ids())
    assert REQUIRED_LINKS <= set(catalog.link_ids()), REQUIRED_LINKS - set(catalog.link_ids())
    assert REQUIRED_SYSTEMS <= set(catalog.system_ids()), REQUIRED_SYSTEMS - set(catalog.system_ids())


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_meta_id_matches_file_name_and_meta_is_complete(path):
    doc = catalog.read_toml(path)
    meta = doc["meta"]
    assert meta["id"] == path.stem
    assert meta["name"].strip()
    assert meta["sources"] and all(isinstance(s, str) and s.strip() for s in meta["sources"])
    assert meta["retrieved"]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_quantity_in_every_file_is_sourced(path):
    doc = catalog.read_toml(path)
    entries = list(_sourced_entries(doc))
    assert entries, f"{path.name}: no sourced quantities"
    for dotted, tab in entries:
        assert set(tab) == {"value", "basis", "source"}, f"{path.name}: {dotted} keys {sorted(tab)}"
        _check_sourced(f"{path.name}: {dotted}", tab["basis"], tab["source"])


# ---------------------------------------------------------------- chips


@pytest.mark.parametrize("chip_id", _ids(CHIP_FILES))
def test_chip_loads_with_sourced_provenance(chip_id):
    chip = catalog.load_chip(chip_id)
    assert chip.id == chip_id
    assert chip.provenance, chip_id
    for dotted, s in chip.provenance.items():
        _check_sourced(f"{chip_id}: {dotted}", s.basis, s.source)
        assert math.isfinite(s.value)


@pytest.mark.parametrize("chip_id", _ids(CHIP_FILES))
def test_chip_quantities_are_positive_and_dense_below_headline(chip_id):
    chip = catalog.load_chip(chip_id)
    assert chip.dense_flop_per_s
    assert set(chip.dense_flop_per_s) <= set(DTYPES)
    assert set(chip.headline_flop_per_s) <= set(DTYPES)
    for dtype, rate in chip.dense_flop_per_s.items():
        assert rate > 0, dtype
        if dtype in chip.headline_flop_per_s:
            assert rate <= chip.headline_flop_per_s[dtype], f"{chip_id} {dtype}: dense > headline"
    for tier in chip.memory:
        assert tier.capacity_bytes > 0 and tier.bandwidth_bytes_per_s > 0, tier.name
    assert chip.tdp_w > 0
    assert chip.price_usd > 0
    if chip.die_area_m2 is not None:
        assert 1e-5 < chip.die_area_m2 < 0.1  # 10 mm^2 .. a whole 300 mm wafer
    for key, value in chip.microarch.items():
        assert value > 0, key


def test_native_dtypes_per_chip():
    for chip_id, expected in NATIVE_DTYPES.items():
        assert set(catalog.load_chip(chip_id).dense_flop_per_s) == expected, chip_id


@pytest.mark.parametrize("chip_id", sorted(FAMILY))
def test_families_and_family_specific_fields(chip_id):
    chip = catalog.load_chip(chip_id)
    assert chip.family == FAMILY[chip_id]
    raw = catalog.read_toml(DATA / "chips" / f"{chip_id}.toml")
    if chip.family == "hbm":
        assert chip.main_memory.kind == "hbm"
        assert set(raw["efficiency"]) == set(catalog.EFFICIENCY_DIMS)
        for key, s in raw["efficiency"].items():
            assert s["basis"] in ("assumed", "measured", "calibrated"), key
        assert 0 < chip.eff("compute", 0) <= 1 and 0 < chip.eff("memory", 0) <= 1
    else:  # wafer/dataflow chips may carry priors for the parts of them that behave like HBM (SN40L)
        assert set(raw.get("efficiency", {})) <= set(catalog.EFFICIENCY_DIMS)
        for key, s in raw.get("efficiency", {}).items():
            assert s["basis"] in ("assumed", "measured", "calibrated"), key
        assert chip.tier("sram") is not None


@pytest.mark.parametrize("chip_id", ["cs-2", "cs-3"])
def test_wafer_microarch_is_complete_and_consistent(chip_id):
    chip = catalog.load_chip(chip_id)
    m = chip.microarch
    assert WAFER_MICROARCH <= set(m), WAFER_MICROARCH - set(m)
    assert m["usable_x"] <= m["fabric_x"] and m["usable_y"] <= m["fabric_y"]
    assert m["fabric_x"] * m["fabric_y"] <= m["pe_count"]
    assert m["sram_per_pe_bytes"] == 48 * 1024
    derived = m["pe_count"] * m["simd_fp16_lanes"] * 2 * m["clock_hz"]
    assert chip.dense_flop_per_s["fp16"] == pytest.approx(derived, rel=0.01)
    sram = chip.tier("sram")
    assert sram.capacity_bytes == pytest.approx(m["pe_count"] * m["sram_per_pe_bytes"], rel=0.10)
    assert chip.headline_flop_per_s["bf16"] > 4 * chip.dense_flop_per_s["bf16"]  # vendor "AI compute"
    assert chip.system.chips_per_node == 1
    assert chip.system.scale_up.bandwidth_bytes_per_s == m["io_bandwidth_bytes_per_s"]


def test_wafer_generations():
    cs2, cs3 = catalog.load_chip("cs-2"), catalog.load_chip("cs-3")
    assert (cs2.microarch["fabric_x"], cs2.microarch["fabric_y"]) == (757, 996)
    assert (cs3.microarch["fabric_x"], cs3.microarch["fabric_y"]) == (762, 1172)
    assert (cs2.microarch["simd_fp16_lanes"], cs3.microarch["simd_fp16_lanes"]) == (4, 8)
    assert cs2.capacity_bytes == 40e9 and cs3.capacity_bytes == 44e9
    assert cs3.microarch["io_bandwidth_bytes_per_s"] >= cs2.microarch["io_bandwidth_bytes_per_s"]


def test_groq_lpu():
    chip = catalog.load_chip("groq-lpu")
    assert GROQ_MICROARCH <= set(chip.microarch)
    assert chip.capacity_bytes == 220 * 2**20  # ISCA 2022: 220 MiB
    assert [t.kind for t in chip.memory] == ["sram"]
    assert chip.system.chips_per_node == 8
    assert chip.system.scale_up_domain >= 576  # a 70B deployment spans ~576 chips on one C2C fabric


def test_sn40l_three_tiers():
    chip = catalog.load_chip("sn40l")
    kinds = {t.kind: t for t in chip.memory}
    assert set(kinds) == {"sram", "hbm", "ddr"}
    assert kinds["sram"].capacity_bytes < kinds["hbm"].capacity_bytes < kinds["ddr"].capacity_bytes
    assert kinds["sram"].bandwidth_bytes_per_s > kinds["hbm"].bandwidth_bytes_per_s > kinds["ddr"].bandwidth_bytes_per_s
    assert chip.main_memory.kind == "hbm"
    assert chip.system.scale_up_domain == 16


def test_gh200_has_grace_ddr_tier():
    chip = catalog.load_chip("gh200")
    assert chip.tier("hbm").capacity_bytes == 144 * 2**30  # HBM stacks are binary-sized: 144 GiB
    assert chip.tier("ddr") is not None


def test_rack_scale_domains():
    for chip_id in ("gb200-nvl72", "gb300-nvl72"):
        assert catalog.load_chip(chip_id).system.scale_up_domain == 72
    assert catalog.load_chip("h100-pcie").system.scale_up_domain == 2


# The training suite's fabrics, per chip and per direction, as the catalog files source them:
# (scale-up link, GB/s, domain, scale-out link, GB/s, torus dimensions).
TRAINING_FABRICS = {
    "a100-sxm-40gb": ("nvlink3", 300, 8, "ib-hdr", 25, 0),  # 600 GB/s bidir; HDR 200 Gb/s
    "a100-sxm-80gb": ("nvlink3", 300, 8, "ib-hdr", 25, 0),
    "h800": ("nvlink4-h800", 200, 8, "ib-ndr", 50, 0),  # 400 GB/s bidir; DeepSeek: NDR 400 Gb/s
    "tpu-v4": ("tpu-ici-v4", 300, 4096, "tpu-dcn-v4", 6.25, 3),  # 6 links x 50 GB/s; pod
    "tpu-v5p": ("tpu-ici-v5p", 600, 6144, "tpu-dcn-v5p", 6.25, 3),  # 1,200 GB/s bidir; max slice
    "mi350x": ("infinity-fabric-mi355x", 537.6, 8, "ethernet-400g", 50, 0),
    "b300": ("nvlink5", 900, 8, "ib-xdr", 100, 0),  # CX-8 800 Gb/s
}


@pytest.mark.parametrize("chip_id", sorted(TRAINING_FABRICS))
def test_training_chip_fabrics(chip_id):
    up_id, up_gbs, domain, out_id, out_gbs, torus = TRAINING_FABRICS[chip_id]
    system = catalog.load_chip(chip_id).system
    assert system.scale_up.id == up_id
    assert system.scale_up.bandwidth_bytes_per_s == pytest.approx(up_gbs * 1e9)
    assert system.scale_up_domain == domain
    assert system.scale_out.id == out_id
    assert system.scale_out.bandwidth_bytes_per_s == pytest.approx(out_gbs * 1e9)
    assert system.torus_dims == torus


def test_scale_up_is_faster_than_scale_out_on_every_hbm_chip():
    for chip_id in catalog.chip_ids():
        chip = catalog.load_chip(chip_id)
        up, out = chip.system.scale_up, chip.system.scale_out
        if chip.family == "hbm" and out is not None:
            assert up.bandwidth_bytes_per_s > out.bandwidth_bytes_per_s, chip_id


def test_tpu_torus_generations():
    chips = {c: catalog.load_chip(c) for c in ("tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e")}
    assert {c: ch.system.torus_dims for c, ch in chips.items()} == {
        "tpu-v4": 3, "tpu-v5e": 2, "tpu-v5p": 3, "tpu-v6e": 2}
    v4, v5p = chips["tpu-v4"], chips["tpu-v5p"]
    assert v5p.system.scale_up.bandwidth_bytes_per_s == 2 * v4.system.scale_up.bandwidth_bytes_per_s
    assert v4.system.chips_per_node == v5p.system.chips_per_node == 4
    assert v5p.system.scale_up_domain < 8960 < v5p.system.max_chips  # largest slice < pod < Multislice
    assert v5p.capacity_bytes == 95 * 2**30 and v4.capacity_bytes == 32 * 2**30
    for chip_id in ("h100-sxm", "b200", "mi355x", "gaudi3"):
        assert catalog.load_chip(chip_id).system.torus_dims == 0  # switched or full-mesh fabrics


def test_training_chips_against_their_siblings():
    a40, a80 = catalog.load_chip("a100-sxm-40gb"), catalog.load_chip("a100-sxm-80gb")
    assert a40.dense_flop_per_s == a80.dense_flop_per_s and a40.tdp_w == a80.tdp_w == 400
    assert (a40.capacity_bytes, a80.capacity_bytes) == (40 * 2**30, 80 * 2**30)  # binary-sized HBM stacks
    assert a40.bandwidth_bytes_per_s < a80.bandwidth_bytes_per_s
    h800, h100 = catalog.load_chip("h800"), catalog.load_chip("h100-sxm")
    assert h800.dense_flop_per_s == h100.dense_flop_per_s
    assert h800.main_memory == h100.main_memory
    assert h800.system.scale_up.bandwidth_bytes_per_s == pytest.approx(
        h100.system.scale_up.bandwidth_bytes_per_s * 400 / 900)  # NVLink 400 vs 900 GB/s bidir
    mi350x, mi355x = catalog.load_chip("mi350x"), catalog.load_chip("mi355x")
    assert mi350x.main_memory == mi355x.main_memory and mi350x.tdp_w < mi355x.tdp_w
    for dtype in ("bf16", "fp8", "fp4"):  # same die at 2.2 vs 2.4 GHz: ~8% less peak
        assert 0.88 < mi350x.dense_flop_per_s[dtype] / mi355x.dense_flop_per_s[dtype] < 0.96, dtype
    b300, b200 = catalog.load_chip("b300"), catalog.load_chip("b200")
    assert b300.dense_flop_per_s["bf16"] == b200.dense_flop_per_s["bf16"]
    assert b300.dense_flop_per_s["fp4"] > 1.4 * b200.dense_flop_per_s["fp4"]
    assert b300.capacity_bytes == 288 * 2**30 > b200.capacity_bytes


# ---------------------------------------------------------------- links and systems


@pytest.mark.parametrize("link_id", _ids(LINK_FILES))
def test_link_loads_and_is_sane(link_id):
    link = catalog.load_link(link_id)
    assert link.bandwidth_bytes_per_s > 0
    assert 0 < link.latency_s < 1e-3
    assert 0 < link.efficiency <= 1
    assert link.algorithm in ("ring", "tree", "oneshot")
    raw = catalog.read_toml(DATA / "links" / f"{link_id}.toml")
    assert {"bandwidth", "latency", "efficiency", "algorithm"} <= set(raw["link"])


@pytest.mark.parametrize("system_id", _ids(SYSTEM_FILES))
def test_system_loads_and_is_sane(system_id):
    system = catalog.load_system(system_id)
    assert system.chips_per_node >= 1 and system.scale_up_domain >= 1
    assert system.scale_up_domain <= system.max_chips
    assert system.chips_per_node <= system.max_chips
    assert system.host_power_per_chip_w >= 0 and system.host_price_per_chip_usd >= 0
    assert system.scale_up.id in catalog.link_ids()
    if system.scale_out is not None:
        assert system.scale_out.id in catalog.link_ids()


def test_every_chip_system_and_link_file_is_used():
    used_systems = {catalog.load_chip(c).system.id for c in catalog.chip_ids()}
    assert used_systems == set(catalog.system_ids())
    used_links = set()
    for s in catalog.system_ids():
        system = catalog.load_system(s)
        used_links.add(system.scale_up.id)
        if system.scale_out is not None:
            used_links.add(system.scale_out.id)
    assert used_links == set(catalog.link_ids())


# ---------------------------------------------------------------- error paths


@pytest.fixture
def tmp_catalog(tmp_path, monkeypatch):
    for kind in ("chips", "links", "systems"):
        (tmp_path / kind).mkdir()
    monkeypatch.setattr(catalog, "DATA", tmp_path)
    catalog.clear_caches()
    yield tmp_path
    catalog.clear_caches()


_LINK = """
[meta]
id = "{meta_id}"
name = "test link"
sources = ["https://example.org"]
retrieved = "2026-11-22"

[link]
bandwidth = {{ value = "50 GB/s", basis = "assumed", source = "test" }}
latency = {{ value = "10 us", basis = "assumed", source = "test" }}
"""


def test_wrong_meta_id_names_the_file(tmp_catalog):
    (tmp_catalog / "links" / "zz-test-link.toml").write_text(_LINK.format(meta_id="something-else"))
    with pytest.raises(CatalogError, match=r"zz-test-link\.toml.*does not match"):
        catalog.load_link("zz-test-link")


def test_matching_meta_id_loads_from_tmp_catalog(tmp_catalog):
    (tmp_catalog / "links" / "zz-ok-link.toml").write_text(_LINK.format(meta_id="zz-ok-link"))
    link = catalog.load_link("zz-ok-link")
    assert link.bandwidth_bytes_per_s == 50e9 and link.latency_s == pytest.approx(10e-6)


def test_malformed_toml_names_the_file(tmp_path, tmp_catalog):
    bad = tmp_catalog / "chips" / "zz-broken.toml"
    bad.write_text('[meta]\nid = "zz-broken"\nname = "unterminated\n')
    with pytest.raises(CatalogError, match=r"zz-broken\.toml"):
        catalog.read_toml(bad)
    with pytest.raises(CatalogError, match=r"zz-broken\.toml.*malformed"):
        catalog.load_chip("zz-broken")


_SYSTEM = """
[meta]
id = "zz-sys"
name = "test system"
sources = ["https://example.org"]
retrieved = "2026-11-27"

[system]
chips_per_node = {{ value = 4, basis = "assumed", source = "test" }}
scale_up_domain = {{ value = 64, basis = "assumed", source = "test" }}
scale_up_link = "zz-ok-link"
host_power_per_chip = {{ value = "100 W", basis = "assumed", source = "test" }}
host_price_per_chip = {{ value = "1000 USD", basis = "assumed", source = "test" }}
{extra}
"""


def test_torus_dims_is_optional_and_checked(tmp_catalog):
    (tmp_catalog / "links" / "zz-ok-link.toml").write_text(_LINK.format(meta_id="zz-ok-link"))
    path = tmp_catalog / "systems" / "zz-sys.toml"
    path.write_text(_SYSTEM.format(extra=""))
    assert catalog.load_system("zz-sys").torus_dims == 0  # absent: a switched fabric
    path.write_text(_SYSTEM.format(extra='torus_dims = { value = 3, basis = "assumed", source = "test" }'))
    catalog.clear_caches()
    assert catalog.load_system("zz-sys").torus_dims == 3
    path.write_text(_SYSTEM.format(extra='torus_dims = { value = 2.5, basis = "assumed", source = "test" }'))
    catalog.clear_caches()
    with pytest.raises(CatalogError, match=r"zz-sys\.toml: system\.torus_dims"):
        catalog.load_system("zz-sys")


def test_bad_basis_and_empty_source_are_rejected():
    with pytest.raises(CatalogError, match="basis"):
        catalog.sourced({"value": "1 W", "basis": "guessed", "source": "x"}, "w", "f.toml: power.tdp")
    with pytest.raises(CatalogError, match="source"):
        catalog.sourced({"value": "1 W", "basis": "assumed", "source": " "}, "w", "f.toml: power.tdp")
    with pytest.raises(CatalogError, match="f.toml"):
        catalog.sourced({"value": "1 GB", "basis": "assumed", "source": "x"}, "w", "f.toml: power.tdp")
