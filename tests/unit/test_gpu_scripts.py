"""The GPU measurement scripts run on a machine without CUDA: they say so in their JSON and exit 0."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["gpu_microbench", "gpu_moe_bench"])
def test_script_without_cuda_writes_a_skip(tmp_path, name):
    pytest.importorskip("numpy")
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present: the script would measure it")
    except ImportError:
        pass
    out = tmp_path / "out.json"
    assert _load(name).main(["--out", str(out), "--chip", "h200"]) == 0
    doc = json.loads(out.read_text())
    assert doc.get("skipped") or doc.get("cuda_available") is False
    if name == "gpu_moe_bench":
        assert doc["peaks"]["hbm_bytes_per_s"] == pytest.approx(4.8e12)  # h200's, read from the catalog


def test_moe_bench_reads_expert_shapes_from_the_catalog():
    mod = _load("gpu_moe_bench")
    shp = mod.expert_shape("deepseek-r1")
    assert (shp["experts"], shp["top_k"], shp["d_model"], shp["d_ff"]) == (256, 8, 7168, 2048)
