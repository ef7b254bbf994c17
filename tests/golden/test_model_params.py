"""Parameter counts and KV-cache sizes of the catalog models against published figures.

The published figures, their sources (model cards, papers) and any counting convention live in
``src/siliconsim/models/data/SOURCES.toml``; each case below is parametrized by model id and
shows its source URL in the failure message. Tolerances: 2% for dense models, 3% for MoE,
unless SOURCES.toml states (and justifies in ``notes``) another.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from siliconsim.models.catalog import load_model, model_ids
from siliconsim.models.spec import ModelSpec

SOURCES: dict[str, dict] = tomllib.loads(
    (resources.files("siliconsim.models") / "data" / "SOURCES.toml").read_text(encoding="utf-8"))


def _tolerance(entry: dict, spec: ModelSpec) -> float:
    return float(entry.get("tolerance", 0.03 if spec.is_moe else 0.02))


def _active(spec: ModelSpec, convention: str) -> float:
    """Active parameters counted the way the publisher counts them (see SOURCES.toml)."""
    lookup = spec.vocab_size * spec.d_model  # the input embedding table: a gather, not compute
    if convention == "no_input_embedding":
        return spec.active_params - lookup
    if convention == "no_embeddings":
        return spec.active_params - spec.embedding_params()
    assert convention == "all", convention
    return spec.active_params


def test_every_catalog_file_has_a_source_entry():
    assert sorted(SOURCES) == model_ids()
    for mid, entry in SOURCES.items():
        for key in ("hf_repo", "source", "verbatim", "retrieved", "published_total_params", "params_source"):
            assert key in entry, f"SOURCES.toml [{mid}] lacks {key}"
        if not entry["verbatim"]:
            assert entry.get("notes"), f"SOURCES.toml [{mid}]: a reconstructed file must say from what"


@pytest.mark.parametrize("mid", sorted(SOURCES))
def test_total_params_match_published(mid):
    entry, spec = SOURCES[mid], load_model(mid)
    want = float(entry["published_total_params"])
    tol = _tolerance(entry, spec)
    got = spec.total_params
    assert got == pytest.approx(want, rel=tol), (
        f"{mid}: {got / 1e9:.2f}B vs published {want / 1e9:.2f}B ({entry['params_source']})")


@pytest.mark.parametrize("mid", sorted(m for m in SOURCES if "published_active_params" in SOURCES[m]))
def test_active_params_match_published(mid):
    entry, spec = SOURCES[mid], load_model(mid)
    assert spec.is_moe, f"{mid}: an active count is published, so it should load as MoE"
    want = float(entry["published_active_params"])
    got = _active(spec, entry.get("active_convention", "all"))
    assert got == pytest.approx(want, rel=_tolerance(entry, spec)), (
        f"{mid}: {got / 1e9:.2f}B active vs published {want / 1e9:.2f}B ({entry['params_source']})")
    assert spec.active_params < spec.total_params


# KV cache per token at bf16, worked by hand from each config.json:
KV_BYTES_PER_TOKEN = [
    ("llama-3.1-8b", 32 * 2 * 8 * 128 * 2),  # 131072: layers x (K,V) x kv_heads x head_dim x 2 B
    ("llama-3.1-70b", 80 * 2 * 8 * 128 * 2),  # 327680
    ("llama-2-7b", 32 * 2 * 32 * 128 * 2),  # 524288: MHA, no GQA
    ("deepseek-r1", 61 * (512 + 64) * 2),  # 70272: MLA latent (kv_lora_rank + rope dim), arXiv:2405.04434 2.1
    ("qwen3-235b-a22b", 94 * 2 * 4 * 128 * 2),  # 192512
    ("gpt-oss-120b", 36 * 2 * 8 * 64 * 2),  # 73728 while context <= 128 (the window)
    ("megatron-22b", 48 * 2 * 6144 * 2),  # 1179648: GPT-2-style MHA, 64 heads x 96
    ("nemotron-4-340b", 96 * 2 * 8 * 192 * 2),  # 589824: GQA, 8 query groups of head_dim 192
    ("qwen3-30b-a3b", 48 * 2 * 4 * 128 * 2),  # 98304
]


@pytest.mark.parametrize("mid,want", KV_BYTES_PER_TOKEN)
def test_kv_bytes_per_token(mid, want):
    assert load_model(mid).kv_bytes_per_token("bf16") == want


def test_gpt_oss_sliding_layers_stop_growing_past_the_window():
    spec = load_model("gpt-oss-120b")
    per_layer_token = 2 * 8 * 64 * 2
    # 18 full-attention layers hold every token, 18 sliding layers hold at most 128.
    assert spec.kv_bytes(100_000, "bf16") == per_layer_token * (18 * 100_000 + 18 * 128)


def test_llama4_scout_layer_pattern():
    spec = load_model("llama-4-scout")
    # Every 4th layer is global NoPE; the other 36 attend in 8192-token chunks. All 48 are MoE.
    windows = sorted((g.window or 0, g.count) for g in spec.groups)
    assert windows == [(0, 12), (8192, 36)]
    assert all(g.moe and g.n_shared_experts == 1 for g in spec.groups)


def test_quantized_checkpoints_are_recognised():
    assert load_model("gpt-oss-20b").quantized_experts == "mxfp4"
    assert load_model("kimi-k2.6").quantized_experts == "int4"
    assert load_model("deepseek-r1").native_dtype == "fp8"
    assert load_model("deepseek-r1").mtp_layers == 1  # present in the checkpoint, not counted
