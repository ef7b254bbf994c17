"""The GPT-2-family parser (``model_type`` gpt2 and gptj) and the training suite's models."""

from __future__ import annotations

import json

import pytest

from siliconsim.errors import CatalogError
from siliconsim.models.catalog import load_model, model_ids, spec_from_config

# openai-community/gpt2's config.json (GPT-2 small), as stored in the search-index module that also
# holds llama-2-7b.json's source (id 7768956847); bookkeeping keys left out.
GPT2_SMALL = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
    "vocab_size": 50257,
}

# Every distinct `model` of validation/training-dev.csv (110 rows, 41 ids); "+lora" names LoRA
# fine-tuning of the base model, which must be in the catalog.
TRAINING_SUITE_MODELS = [
    "bloom-176b", "deepseek-v3", "gpt-j-6b", "gpt-oss-120b", "gpt3-175b", "gpt3-175b-megascale", "gpt3-5b",
    "llama-2-13b", "llama-2-70b", "llama-2-70b+lora", "llama-2-7b", "llama-3-70b", "llama-3-8b",
    "llama-3.1-405b", "llama-3.1-70b", "llama-3.1-8b", "llama-7b", "maxtext-synthetic-1024b",
    "maxtext-synthetic-128b", "maxtext-synthetic-16b", "maxtext-synthetic-256b", "maxtext-synthetic-32b",
    "maxtext-synthetic-512b", "maxtext-synthetic-64b", "megatron-1t", "megatron-22b", "megatron-gpt-1.7b",
    "megatron-gpt-1008.0b", "megatron-gpt-145.6b", "megatron-gpt-18.4b", "megatron-gpt-39.1b",
    "megatron-gpt-529.6b", "mpt-7b", "mt-nlg-530b", "nemotron-22b", "nemotron-4-340b", "nemotron-8b",
    "opt-175b", "qwen3-235b-a22b", "qwen3-30b-a3b", "turing-530b",
]


def _gpt2(**changes) -> dict:
    doc = dict(GPT2_SMALL, **changes)
    return {k: v for k, v in doc.items() if v is not ...}


def test_gpt2_small_counts_exactly_124_439_808():
    # Hugging Face's published total for openai-community/gpt2 (and nanoGPT's count): 85,054,464 in
    # the 12 blocks + 38,597,376 token embedding (tied head) + 786,432 positions + 1,536 final LayerNorm.
    spec = spec_from_config(GPT2_SMALL, "gpt2", "gpt2.json")
    assert spec.total_params == 124_439_808
    assert (spec.learned_positions, spec.norm_bias, spec.attn_bias, spec.mlp_bias) == (1024, True, True, True)
    assert spec.tied_embeddings and not spec.gated_mlp and spec.groups[0].d_ff == 4 * 768


@pytest.mark.parametrize("key", ["n_embd", "n_layer", "n_head", "n_positions", "vocab_size"])
def test_missing_gpt2_field_is_one_line_error_naming_file_and_key(tmp_path, key):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(_gpt2(**{key: ...})))
    with pytest.raises(CatalogError, match=rf"^partial\.json: missing field '{key}'$"):
        load_model(str(path))


def test_unknown_position_type_and_bad_activation_are_one_line_errors():
    with pytest.raises(CatalogError, match=r"^g\.json: field 'position_embedding_type' = 'sinusoid', expected one of"):
        spec_from_config(_gpt2(position_embedding_type="sinusoid"), "g", "g.json")
    with pytest.raises(CatalogError, match=r"^g\.json: field 'activation_function' = 3, expected a name"):
        spec_from_config(_gpt2(activation_function=3), "g", "g.json")
    with pytest.raises(CatalogError, match=r"^g\.json: field 'bias' = 'no', expected true or false$"):
        spec_from_config(_gpt2(bias="no"), "g", "g.json")


def test_learned_positions_are_parameters_but_not_matmul_flop():
    learned = spec_from_config(GPT2_SMALL, "a", "a.json")
    rope = spec_from_config(_gpt2(position_embedding_type="rope"), "b", "b.json")
    assert learned.total_params - rope.total_params == 1024 * 768  # n_positions x n_embd
    assert learned.flop_per_token(512) == rope.flop_per_token(512)  # a position row is a lookup
    assert learned.prefill_flop(512) == rope.prefill_flop(512)


def test_no_bias_file_drops_linear_and_layernorm_biases():
    d, f, layers = 768, 3072, 12
    full = spec_from_config(GPT2_SMALL, "a", "a.json")
    bare = spec_from_config(_gpt2(bias=False, layer_norm_bias=False), "b", "b.json")
    per_layer = (4 * d) + (f + d) + 2 * d  # q,k,v,o biases + MLP biases + two LayerNorm biases
    assert full.total_params - bare.total_params == layers * per_layer + d  # + the final LayerNorm's bias


def test_gptj_matches_its_architecture_by_hand():
    spec = load_model("gpt-j-6b")
    d, f, n, v = 4096, 16384, 28, 50400
    # per layer: q,k,v,o without bias; fc_in/fc_out with bias; ONE LayerNorm (weight+bias), parallel block
    layer = 4 * d * d + (2 * d * f + f + d) + 2 * d
    # untied embedding and LM head, the head's bias, final LayerNorm; rotary, so no position table
    assert spec.total_params == n * layer + 2 * v * d + v + 2 * d
    assert (spec.norms_per_layer, spec.learned_positions, spec.position_embedding) == (1, 0, "rope")


@pytest.mark.parametrize("mid", ["megatron-gpt-1.7b", "megatron-gpt-18.4b", "megatron-gpt-145.6b",
                                 "megatron-22b", "gpt3-175b", "megatron-1t"])
def test_megatron_gpt_matches_its_closed_form(mid):
    # Narayanan et al. 2021 (arXiv:2104.04473) section 5.1: P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12lh)),
    # which leaves out only the final LayerNorm (2h). Exact, up to float rounding.
    s = load_model(mid)
    l, h, v, seq = s.n_layers, s.d_model, s.vocab_size, s.learned_positions
    closed = 12 * l * h * h * (1 + 13 / (12 * h) + (v + seq) / (12 * l * h)) + 2 * h
    assert s.total_params == pytest.approx(closed, rel=1e-12)


def test_nemotron_is_a_gqa_squared_relu_gpt2_file():
    s = load_model("nemotron-4-340b")
    assert (s.architecture, s.activation, s.position_embedding) == ("gpt2", "relu2", "rope")
    assert (s.n_kv_heads, s.head_dim, s.attn_bias, s.mlp_bias, s.tied_embeddings) == (8, 192, False, False, False)
    assert s.attn_params() == 2 * 18432 * 18432 + 2 * 18432 * 8 * 192


def test_bloom_and_mpt_use_alibi_without_a_position_table():
    bloom, mpt = load_model("bloom-176b"), load_model("mpt-7b")
    assert bloom.position_embedding == mpt.position_embedding == "alibi"
    assert bloom.learned_positions == mpt.learned_positions == 0
    assert bloom.embedding_norm and not mpt.norm_bias and not mpt.mlp_bias


def test_every_training_suite_model_is_in_the_catalog():
    known = set(model_ids())
    missing = [m for m in TRAINING_SUITE_MODELS if m.split("+")[0] not in known]
    assert not missing, f"training-dev.csv models without a config.json: {missing}"


def test_llama_style_models_keep_the_old_defaults():
    # the new ModelSpec fields default to the Llama-style values, so earlier models count as before
    s = load_model("llama-3.1-8b")
    assert (s.mlp_bias, s.norm_bias, s.norms_per_layer, s.learned_positions, s.embedding_norm,
            s.lm_head_bias) == (False, False, 2, 0, False, False)
    assert s.total_params == 8_030_261_248  # the HF safetensors total of meta-llama/Llama-3.1-8B
