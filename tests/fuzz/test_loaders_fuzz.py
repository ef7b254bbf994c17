"""Fuzz the public loaders (issue 16): random config.json dicts, trace lines, suite rows and chip
TOML files go through ``spec_from_config``/``load_model``, ``read_trace``, ``load_cases``,
``load_training_cases`` and ``load_chip``; whatever they get, only the project's own errors (``SiliconsimError``) may escape.

A model or chip that loads is also used once (parameter count, a batch-1 estimate), so a value
the loader let through cannot crash the code behind it either.

``make test`` runs a few thousand examples, derandomized so the suite is repeatable; set
``SILICONSIM_FUZZ_SCALE`` (a multiplier, e.g. 20) and ``SILICONSIM_FUZZ_RANDOM=1`` for a longer,
randomized run: ``benchmarks/fuzz_loaders.py`` does both.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siliconsim.errors import SiliconsimError
from siliconsim.hardware import catalog as hw
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import DATA as MODEL_DATA
from siliconsim.models.catalog import load_model, spec_from_config
from siliconsim.validation.suite import DEFAULT_SUITE, load_cases
from siliconsim.validation.training_suite import DEFAULT_TRAINING_SUITE, load_training_cases
from siliconsim.workloads.traces import read_trace

SCALE = float(os.environ.get("SILICONSIM_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("SILICONSIM_FUZZ_RANDOM") == "1"


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=not RANDOM,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                          HealthCheck.data_too_large, HealthCheck.filter_too_much])


# ---- values -------------------------------------------------------------------------------
NASTY = [None, True, False, 0, 1, -1, 2, 7, 8, 64, 128, 4096, 2**31, 2**63, 10**30, -(2**70), 0.5, -1.0, 1e300, -0.0,
         float("nan"), float("inf"), float("-inf"), "", "llama", "mixtral", "deepseek_v3", "128", "-1", "nan", "bf16",
         "fp8", [], [0], [1, 2], [-1], [1.5], ["x"], [[1]], [None], {}, {"a": 1}, {"weights": []},
         {"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 4, "type": "int"}}},
          "ignore": "self_attn"}]
SCALARS = st.one_of(st.sampled_from(NASTY), st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=6))
JSON_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2))


def _catalog_configs() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(MODEL_DATA.glob("*.json"))]


CONFIGS = _catalog_configs()
CONFIG_KEYS = sorted({k for c in CONFIGS for k in c} | {k for c in CONFIGS for k in c.get("text_config", {})})


@st.composite
def config_dicts(draw) -> object:
    """A catalog config with a few fields replaced, removed or added; or a random JSON value."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    doc = copy.deepcopy(draw(st.sampled_from(CONFIGS)))
    target = doc["text_config"] if isinstance(doc.get("text_config"), dict) and draw(st.booleans()) else doc
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=8)))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return doc


def loaded(load, *args):
    """``load(*args)``, or None when it raises a SiliconsimError (any other error fails the test);
    hypothesis' statistics count both outcomes."""
    try:
        out = load(*args)
    except SiliconsimError:
        event("rejected")
        return None
    event("loaded")
    return out


def _use_model(spec) -> None:
    assert spec.total_params > 0 and math.isfinite(spec.weight_bytes("bf16"))
    estimate(spec, hw.load_chip("h100-sxm"), Scenario(1, 128, 16))


@fuzz_settings(1000)
@given(config_dicts())
def test_config_dicts_fail_only_with_siliconsim_errors(doc):
    spec = loaded(spec_from_config, doc, "fuzz", "fuzz.json")
    if spec is not None:
        _use_model(spec)


@fuzz_settings(100)
@given(st.one_of(st.binary(max_size=300), config_dicts().map(lambda d: json.dumps(d).encode())))
def test_config_files_fail_only_with_siliconsim_errors(tmp_path, raw):
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    load_model.cache_clear()
    spec = loaded(load_model, str(path))
    if spec is not None:
        _use_model(spec)


# ---- traces -------------------------------------------------------------------------------
NUMBER_TEXT = st.one_of(st.sampled_from(["", " ", "0", "1", "-1", "1e300", "-0", "0x10", "1_000", "nan", "inf", "3.5",
                                         "1e10", "10000000001", "99999999999999999999", "\u0663", "a"]),
                        st.integers(-5, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.text(max_size=4))
STAMPS = st.one_of(
    st.sampled_from(["2023-11-16 18:17:03.9799600", "2023-11-16 18:17:03.9799600+05:00", "2023-11-16 18:17:03Z",
                     "2023-13-40 99:99:99", "2023-11-16 18:17:03.+05:00", "9999-12-31 23:59:59.9999999-23:59",
                     "0001-01-01 00:00:00", "1969-12-31 23:59:59", "2023-11-16T18:17:03", ""]),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")), st.text(max_size=6))
VALID_CELLS = {"azure": st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")),
               "plain": st.floats(0, 1e6).map(repr)}


@st.composite
def trace_files(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["azure", "plain", "jsonl", "noise"]))
    n = draw(st.integers(0, 6))
    if kind == "noise":
        return draw(st.sampled_from([".csv", ".jsonl"])), draw(st.binary(max_size=200))
    if kind == "jsonl":
        obj = st.fixed_dictionaries({"arrival_s": st.floats(0, 1e4) | JSON_VALUES,
                                     "input_tokens": st.integers(1, 4000) | JSON_VALUES,
                                     "output_tokens": st.integers(1, 400) | JSON_VALUES})
        lines = [json.dumps(draw(obj | JSON_VALUES)) for _ in range(n)]
        return ".jsonl", "\n".join(lines).encode()
    header = "TIMESTAMP,ContextTokens,GeneratedTokens" if kind == "azure" else "arrival_s,input_tokens,output_tokens"
    bad_time = STAMPS if kind == "azure" else NUMBER_TEXT
    rows = []
    for _ in range(n):  # mostly valid rows, so that files load often enough to reach the code behind
        ok = draw(st.integers(0, 3)) > 0
        rows.append(",".join([draw(VALID_CELLS[kind] if ok else bad_time),
                              draw(st.integers(1, 4000).map(str) if ok else NUMBER_TEXT),
                              draw(st.integers(1, 400).map(str) if ok else NUMBER_TEXT)]))
    if draw(st.integers(0, 3)) == 0:
        rows.append(draw(st.text(max_size=20)))
    return ".csv", "\n".join([header, *rows]).encode("utf-8", "surrogatepass")


@fuzz_settings(600)
@given(trace_files())
def test_trace_files_fail_only_with_siliconsim_errors(tmp_path, file):
    suffix, raw = file
    path = tmp_path / f"trace{suffix}"
    path.write_bytes(raw)
    rs = loaded(read_trace, str(path))
    assert rs is None or len(rs) >= 1 and rs.arrival_s[0] == 0 and (rs.input_tokens >= 1).all()


# ---- suite rows ---------------------------------------------------------------------------
def _suite_sample(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(csv.reader([lines[0]])), [next(csv.reader([ln])) for ln in lines[1:40]]


SUITES = {"inference": _suite_sample(DEFAULT_SUITE), "training": _suite_sample(DEFAULT_TRAINING_SUITE)}


@st.composite
def suite_files(draw, kind: str = "inference") -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header, sample = SUITES[kind]
    rows = [list(draw(st.sampled_from(sample))) for _ in range(draw(st.integers(0, 3)))]
    for row in rows:
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(row) - 1))
            row[i] = draw(NUMBER_TEXT | st.text(max_size=15) | st.sampled_from(["h100-sxm", "nochip", "none", "ms"]))
        if draw(st.integers(0, 6)) == 0:
            del row[draw(st.integers(0, len(row) - 1))]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header if draw(st.integers(0, 9)) else header[:-1])
    w.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


@fuzz_settings(300)
@given(suite_files())
def test_suite_files_fail_only_with_siliconsim_errors(tmp_path, raw):
    (tmp_path / "cases.csv").write_bytes(raw)
    cases = loaded(load_cases, tmp_path / "cases.csv")
    assert cases is None or cases and all(c.value > 0 for c in cases)


@fuzz_settings(150)
@given(suite_files("training"))
def test_training_suite_files_fail_only_with_siliconsim_errors(tmp_path, raw):
    (tmp_path / "training.csv").write_bytes(raw)
    cases = loaded(load_training_cases, tmp_path / "training.csv")
    assert cases is None or cases and all(c.value > 0 and c.chips >= 1 for c in cases)


# ---- chip TOML files ----------------------------------------------------------------------
def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items() if x is not None) + " }"
    return '""'


def dump_toml(doc: dict) -> str:
    """A minimal TOML writer: every top-level table becomes ``[name]`` with inline values."""
    lines = [f"{json.dumps(k)} = {_toml(v)}" for k, v in doc.items() if not isinstance(v, dict) and v is not None]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


CHIP_DOC = tomllib.loads((hw.DATA / "chips" / "h100-sxm.toml").read_text(encoding="utf-8"))
QUANTITIES = st.one_of(st.sampled_from(["80 GB", "-80 GB", "0 GB", "3.35 TB/s", "nan TB/s", "1e400 W", "700 W",
                                        "1 GHz", "", "80", "80 GiB", "inf B", "1e-30 s", "0.5", "1e-300 TB/s",
                                        "0 TFLOP/s", "-1 us", "2 us", 0.0, -0.5, 1.5, 0, 3]),
                       st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6), st.text(max_size=6))


def _paths(doc: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in doc.items():
        out.append(prefix + (k,))
        if isinstance(v, dict):
            out += _paths(v, prefix + (k,))
    return out


CHIP_PATHS = _paths(CHIP_DOC)


@st.composite
def chip_docs(draw) -> dict:
    doc = copy.deepcopy(CHIP_DOC)
    doc["meta"]["id"] = "fuzz-chip"  # must match the file name, else every example fails there
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(CHIP_PATHS))
        parent = doc
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if path[-1] == "value" or draw(st.booleans()):
            parent[path[-1]] = draw(QUANTITIES)
        elif draw(st.integers(0, 3)) == 0:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


@pytest.fixture()
def fuzz_catalog(tmp_path, monkeypatch):
    """A copy of the hardware catalog in tmp_path, with ``hardware.catalog.DATA`` pointing at it."""
    for kind in ("chips", "systems", "links"):
        (tmp_path / kind).mkdir()
        for p in (hw.DATA / kind).glob("*.toml"):
            (tmp_path / kind / p.name).write_bytes(p.read_bytes())
    (tmp_path / "calibration").mkdir()
    monkeypatch.setattr(hw, "DATA", tmp_path)
    hw.clear_caches()
    yield tmp_path
    hw.clear_caches()


@fuzz_settings(400)
@given(chip_docs())
def test_chip_files_fail_only_with_siliconsim_errors(fuzz_catalog, doc):
    (fuzz_catalog / "chips" / "fuzz-chip.toml").write_text(dump_toml(doc), encoding="utf-8")
    hw.clear_caches()
    chip = loaded(hw.load_chip, "fuzz-chip")
    if chip is not None:
        try:
            estimate(load_model("llama-3.2-1b"), chip, Scenario(1, 128, 16))
        except SiliconsimError:
            pass  # e.g. nothing fits: a one-line error, as the loader's are


def test_the_toml_writer_round_trips_the_chip_file():
    # the chip fuzzer only means something if its writer reproduces a valid file
    assert tomllib.loads(dump_toml(CHIP_DOC)) == CHIP_DOC


def test_random_catalog_mutations_do_load_sometimes():
    # a fuzzer whose every example fails at the first check explores nothing: the unmutated
    # bases must load, so mutations start from valid inputs
    for doc in CONFIGS:
        spec_from_config(doc, "base", "base.json")
    assert load_cases(DEFAULT_SUITE)
    assert Path(hw.DATA / "chips" / "h100-sxm.toml").is_file()
