"""Loader behaviour (errors, paths, wrappers) and the formulas of ModelSpec."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from siliconsim.errors import CatalogError, UnknownIdError
from siliconsim.models.catalog import DATA, load_model, model_ids, spec_from_config


def _llama_doc() -> dict:
    return json.loads((DATA / "llama-3.1-8b.json").read_text())


# ---- errors ---------------------------------------------------------------------------------
def test_unknown_model_type_names_the_file(tmp_path):
    path = tmp_path / "weird.json"
    path.write_text(json.dumps(dict(_llama_doc(), model_type="mamba_xl")))
    with pytest.raises(CatalogError, match=r"weird\.json.*'mamba_xl'"):
        load_model(str(path))


def test_unknown_model_type_inside_text_config_names_the_file():
    doc = {"model_type": "wrapper", "text_config": {"model_type": "nope"}}
    with pytest.raises(CatalogError, match=r"wrap\.json.*'nope'"):
        spec_from_config(doc, "x", "wrap.json")


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "model_type": "llama",\n  "hidden_size": 4096,,\n}\n')
    with pytest.raises(CatalogError, match=r"broken\.json: malformed JSON at line 3"):
        load_model(str(path))


def test_missing_field_names_file_and_key(tmp_path):
    doc = _llama_doc()
    del doc["num_attention_heads"]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match=r"partial\.json: missing field 'num_attention_heads'"):
        load_model(str(path))


def test_unknown_id_suggests_a_close_match():
    with pytest.raises(UnknownIdError, match=r"did you mean .*llama-3\.1-8b"):
        load_model("llama-3.1-8")


def test_missing_path_is_a_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="no such config.json"):
        load_model(str(tmp_path / "nothing" / "config.json"))


# ---- --model PATH ---------------------------------------------------------------------------
def test_load_by_file_path_and_by_directory(tmp_path):
    folder = tmp_path / "my-llama"
    folder.mkdir()
    shutil.copy(DATA / "llama-3.1-8b.json", folder / "config.json")
    by_file = load_model(str(folder / "config.json"))
    by_dir = load_model(str(folder))
    catalog = load_model("llama-3.1-8b")
    assert by_file.id == by_dir.id == "my-llama"
    assert by_file.total_params == by_dir.total_params == catalog.total_params


def test_every_catalog_id_loads():
    ids = model_ids()
    assert len(ids) >= 20
    for mid in ids:
        spec = load_model(mid)
        assert spec.total_params > 0 and spec.n_layers == sum(g.count for g in spec.groups)


def test_multimodal_wrapper_reads_the_text_config():
    spec = load_model("kimi-k2.6")  # KimiK25 wrapper around a kimi_k2 (DeepSeek-V3) text model
    assert spec.architecture == "kimi_k2" and spec.is_mla and spec.is_moe
    assert spec.d_model == 7168 and spec.n_layers == 61


# ---- structure and formulas -----------------------------------------------------------------
def test_moe_active_is_below_total():
    for mid in ("mixtral-8x7b", "deepseek-r1", "gpt-oss-120b", "qwen3-235b-a22b", "llama-4-maverick"):
        spec = load_model(mid)
        assert spec.is_moe and spec.active_params < 0.3 * spec.total_params


def test_dense_active_equals_total():
    spec = load_model("qwen3-32b")
    assert not spec.is_moe and spec.active_params == spec.total_params


def test_gpt_oss_sliding_window_caps_kv():
    spec = load_model("gpt-oss-120b")
    full_equiv = spec.kv_elements_per_token_layer() * 2 * spec.n_layers * 100_000
    held = spec.kv_bytes(100_000, "bf16")
    assert held < 0.51 * full_equiv  # half the layers keep only 128 tokens
    assert spec.kv_bytes_per_token("bf16", context=100_000) < 0.51 * spec.kv_bytes_per_token("bf16")


def test_kv_bytes_vectorises_over_numpy():
    spec = load_model("gpt-oss-20b")
    tokens = np.array([64, 128, 1000])
    out = spec.kv_bytes(tokens, "bf16")
    assert out.shape == (3,)
    assert out[0] == spec.kv_bytes(64, "bf16") and out[2] == spec.kv_bytes(1000, "bf16")


def test_flop_per_token_grows_with_context():
    for mid in ("llama-3.1-8b", "deepseek-r1", "gpt-oss-20b"):
        spec = load_model(mid)
        short, long = spec.flop_per_token(1_000), spec.flop_per_token(100_000)
        assert long > short > 2 * (spec.active_params - spec.embedding_params())


def test_flop_per_token_attention_term():
    spec = load_model("llama-3.1-8b")
    extra = spec.flop_per_token(2_000) - spec.flop_per_token(1_000)
    assert extra == pytest.approx(32 * 1_000 * 4 * 32 * 128)  # layers x keys x 4 x heads x head_dim


def test_prefill_flop_is_about_prompt_times_matmul():
    spec = load_model("llama-3.1-8b")
    matmul = 2 * (spec.active_params - spec.embedding_params())
    assert spec.prefill_flop(1000) == pytest.approx(1000 * matmul, rel=0.05)


def test_mxfp4_experts_shrink_weight_bytes():
    spec = load_model("gpt-oss-120b")
    assert spec.weight_bytes("bf16") < 0.35 * spec.total_params * 2  # experts stay at 4.25 bits
    assert spec.weight_bytes("fp4") <= spec.weight_bytes("bf16")


def test_qwen3_counts_qk_norm():
    spec = load_model("qwen3-32b")
    assert spec.qk_norm
    g = spec.groups[0]
    without = spec.attn_params() + 2 * spec.d_model + spec._mlp_params(g.d_ff)
    assert spec.layer_params(g)[0] - without == 2 * spec.head_dim


def test_mtp_layers_are_excluded():
    spec = load_model("glm-4.7")
    assert spec.mtp_layers == 1 and spec.n_layers == 92 and any("multi-token" in n for n in spec.notes)


def test_falcon_is_plain_gelu_mlp_with_gqa():
    spec = load_model("falcon-180b")
    assert not spec.gated_mlp and spec.n_kv_heads == 8 and spec.head_dim == 64
    assert spec.groups[0].d_ff == 4 * spec.d_model and spec.tied_embeddings
