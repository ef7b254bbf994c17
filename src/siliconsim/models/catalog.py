"""Load models from Hugging Face ``config.json`` files.

The catalog keeps each file verbatim under ``models/data/<id>.json``; ``--model PATH`` accepts
any other config.json. The architecture is read from ``model_type`` (descending into
``text_config`` for multimodal wrappers). An unknown architecture raises: nothing is silently
defaulted.

Two families of dense files: Llama-style (``hidden_size``, ``intermediate_size``, gated MLP) and
GPT-2-style (``model_type: gpt2`` with ``n_embd``, ``n_layer``, ``n_head``, ``n_inner``,
``n_positions``; plain MLP). GPT-style models that never had a Hugging Face file of their own
(Megatron GPT, NeMo GPT-3 and Nemotron, OPT, BLOOM, MPT) are written as ``gpt2`` files: one
format and one parser instead of a native type each. Facts GPT-2's own config cannot say are
extension keys that only the gpt2 parser reads (see ``_gpt2_family``). GPT-J keeps its real
``gptj`` file, read by the same parser.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from siliconsim.errors import CatalogError, UnknownIdError
from siliconsim.models.spec import LayerGroup, ModelSpec

DATA = Path(str(resources.files("siliconsim.models") / "data"))


class _Cfg:
    """Typed access to a config dict; errors name the file and key."""

    def __init__(self, doc: dict[str, Any], where: str):
        self.doc, self.where = doc, where

    def has(self, key: str) -> bool:
        return self.doc.get(key) is not None

    def int(self, key: str, default: int | None = None) -> int:
        v = self.doc.get(key, default)
        if v is None:
            raise CatalogError(f"{self.where}: missing field '{key}'")
        return _whole(v, key, self.where, minimum=0)

    def bool(self, key: str, default: bool = False) -> bool:
        v = self.doc.get(key, default)
        if not isinstance(v, bool):
            raise CatalogError(f"{self.where}: field '{key}' = {v!r}, expected true or false")
        return v


def _dtype(c: _Cfg) -> str:
    """Native weight dtype: the checkpoint's quantized format when all linears are quantized (FP8)."""
    if _quant(c).get("quant_method") == "fp8":
        return "fp8"
    d = c.doc.get("torch_dtype") or c.doc.get("dtype") or "bfloat16"
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(d), "bf16")


def _quant(c: _Cfg) -> dict[str, Any]:
    q = c.doc.get("quantization_config")
    return q if isinstance(q, dict) else {}


def _quantized_experts(c: _Cfg) -> str:
    """Format of routed-expert weights when only they are quantized, else ""."""
    q = _quant(c)
    if q.get("quant_method") == "mxfp4":
        return "mxfp4"  # gpt-oss: attention, router and embeddings stay bf16
    if q.get("quant_method") == "compressed-tensors":
        groups = list((q.get("config_groups") or {}).values())
        ignore = " ".join(str(x) for x in q.get("ignore") or [])
        weights = (groups[0].get("weights") or {}) if len(groups) == 1 else {}
        if weights.get("num_bits") == 4 and weights.get("type") == "int" and "self_attn" in ignore:
            return "int4"  # Kimi K2.x: routed experts INT4 (group 32), the rest bf16
    return ""


def _common(c: _Cfg, model_id: str, arch: str, groups: tuple[LayerGroup, ...], **kw: Any) -> ModelSpec:
    heads = c.int("num_attention_heads")
    d = c.int("hidden_size")
    head_dim = c.doc.get("head_dim") or d // heads
    return ModelSpec(
        id=model_id, architecture=arch, n_layers=c.int("num_hidden_layers"), d_model=d,
        n_heads=heads, n_kv_heads=c.int("num_key_value_heads", heads), head_dim=int(head_dim),
        vocab_size=c.int("vocab_size"), tied_embeddings=c.bool("tie_word_embeddings", kw.pop("tied_default", False)),
        gated_mlp=kw.pop("gated_mlp", True), groups=groups, native_dtype=_dtype(c),
        max_context=c.int("max_position_embeddings", 0), source=c.where,
        mtp_layers=c.int("num_nextn_predict_layers", 0), notes=_notes(c), **kw)


def _notes(c: _Cfg) -> tuple[str, ...]:
    mtp = c.int("num_nextn_predict_layers", 0)
    return (f"{mtp} multi-token-prediction layer(s) in the checkpoint are not counted",) if mtp else ()


def _windows(c: _Cfg, n: int) -> list[int | None]:
    """Per-layer attention span: None for full attention, else the window in tokens."""
    types = c.doc.get("layer_types")
    if isinstance(types, list) and len(types) == n:
        w = c.int("sliding_window")
        return [w if t == "sliding_attention" else None for t in types]
    if c.doc.get("use_sliding_window") and c.has("sliding_window"):
        w = c.int("sliding_window")
        start = c.int("max_window_layers", n)
        return [None if i < start else w for i in range(n)] if start < n else [w] * n
    if c.has("sliding_window") and c.doc.get("model_type") in ("mistral", "mixtral"):
        return [c.int("sliding_window")] * n
    return [None] * n


def _group(layers: list[tuple]) -> tuple[LayerGroup, ...]:
    """Collapse per-layer descriptions into counted groups, in first-seen order."""
    counts: dict[tuple, int] = {}
    for key in layers:
        counts[key] = counts.get(key, 0) + 1
    return tuple(LayerGroup(count, *key) for key, count in counts.items())


def _dense(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    ff = c.int("intermediate_size")
    groups = _group([(w, False, ff) for w in _windows(c, n)])
    return _common(c, mid, arch, groups, attn_bias=c.bool("attention_bias", arch == "qwen2"),
                   qk_norm=arch == "qwen3")


def _mixtral_like(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    e = c.int("num_local_experts") if c.has("num_local_experts") else c.int("num_experts")
    k = c.int("num_experts_per_tok")
    ff = c.int("moe_intermediate_size") if c.has("moe_intermediate_size") else c.int("intermediate_size")
    sparse_step = c.int("decoder_sparse_step", 1) or 1
    dense_ids = set(c.doc.get("mlp_only_layers") or [])
    dense_ff = c.int("intermediate_size")
    shared_ff = c.int("shared_expert_intermediate_size", 0)  # Qwen2-MoE: one gated shared expert
    layers = []
    for i, w in enumerate(_windows(c, n)):
        if i in dense_ids or (i + 1) % sparse_step != 0:
            layers.append((w, False, dense_ff))
        else:
            layers.append((w, True, ff, e, k, 1 if shared_ff else 0, shared_ff))
    is_oss = arch == "gpt_oss"
    return _common(c, mid, arch, _group(layers), attn_bias=c.bool("attention_bias", is_oss),
                   expert_bias=is_oss, attn_sinks=is_oss, router_bias=is_oss,
                   qk_norm=arch == "qwen3_moe", quantized_experts=_quantized_experts(c))


def _deepseek(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    first_dense = c.int("first_k_dense_replace", 0)
    freq = c.int("moe_layer_freq", 1) or 1
    e, k = c.int("n_routed_experts"), c.int("num_experts_per_tok")
    shared, ff_e, ff = c.int("n_shared_experts", 0), c.int("moe_intermediate_size"), c.int("intermediate_size")
    layers = []
    for i in range(n):
        if i < first_dense or i % freq != 0:
            layers.append((None, False, ff))
        else:
            layers.append((None, True, ff_e, e, k, shared, ff_e))
    spec = _common(c, mid, arch, _group(layers),
                   q_lora_rank=c.int("q_lora_rank", 0) if c.has("q_lora_rank") else 0,
                   kv_lora_rank=c.int("kv_lora_rank"), qk_nope_head_dim=c.int("qk_nope_head_dim"),
                   qk_rope_head_dim=c.int("qk_rope_head_dim"), v_head_dim=c.int("v_head_dim"),
                   quantized_experts=_quantized_experts(c))
    return spec


def _glm4_moe(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    first_dense = c.int("first_k_dense_replace", 0)
    e, k = c.int("n_routed_experts"), c.int("num_experts_per_tok")
    shared, ff_e, ff = c.int("n_shared_experts", 0), c.int("moe_intermediate_size"), c.int("intermediate_size")
    layers = [(None, False, ff) if i < first_dense else (None, True, ff_e, e, k, shared, ff_e) for i in range(n)]
    return _common(c, mid, arch, _group(layers), attn_bias=c.bool("attention_bias", True),
                   qk_norm=c.bool("use_qk_norm", False), quantized_experts=_quantized_experts(c))


def _llama4(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    step = c.int("interleave_moe_layer_step", 1) or 1
    moe_layers = c.doc.get("moe_layers")
    if moe_layers is None:
        moe_layers = list(range(step - 1, n, step))
    moe_set = set(moe_layers)
    e, k = c.int("num_local_experts"), c.int("num_experts_per_tok")
    ff_e, ff_dense = c.int("intermediate_size"), c.int("intermediate_size_mlp")
    chunk = c.int("attention_chunk_size", 0) or None
    no_rope = _no_rope_layers(c, n)
    layers = []
    for i in range(n):
        # no_rope_layers[i] == 0 marks a global (NoPE) layer; the rest use chunked attention.
        window = None if no_rope[i] == 0 else chunk
        layers.append((window, True, ff_e, e, k, 1, ff_e) if i in moe_set else (window, False, ff_dense))
    return _common(c, mid, arch, _group(layers))


def _no_rope_layers(c: _Cfg, n: int) -> list[int]:
    """Per-layer RoPE flag (1 = RoPE + chunked attention, 0 = global NoPE), as transformers'
    Llama4TextConfig fills it when the file leaves ``no_rope_layers`` empty: every
    ``no_rope_layer_interval``-th layer (default 4) is global."""
    given = c.doc.get("no_rope_layers")
    if isinstance(given, list) and given:
        if len(given) != n:
            raise CatalogError(f"{c.where}: no_rope_layers has {len(given)} entries, expected {n}")
        return [int(x) for x in given]
    every = c.int("no_rope_layer_interval", 4) or 4
    return [int((i + 1) % every != 0) for i in range(n)]


def _falcon(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    d = c.int("hidden_size")
    ff = c.int("ffn_hidden_size", 4 * d)
    kv = c.int("num_kv_heads", 1) if c.bool("new_decoder_architecture") else (1 if c.bool("multi_query", True) else c.int("num_attention_heads"))
    doc = dict(c.doc, num_key_value_heads=kv)
    return _common(_Cfg(doc, c.where), mid, arch, _group([(None, False, ff)] * n), gated_mlp=False,
                   attn_bias=c.bool("bias", False), tied_default=True)


ARCHITECTURES: dict[str, Callable[[_Cfg, str, str], ModelSpec]] = {
    "llama": _dense, "mistral": _dense, "qwen2": _dense, "qwen3": _dense,
    "mixtral": _mixtral_like, "qwen3_moe": _mixtral_like, "qwen2_moe": _mixtral_like, "gpt_oss": _mixtral_like,
    "deepseek_v3": _deepseek, "deepseek_v2": _deepseek, "kimi_k2": _deepseek, "kimi_k25": _deepseek,
    "glm4_moe": _glm4_moe, "llama4_text": _llama4, "llama4": _llama4, "falcon": _falcon,
}


_POSITION_TYPES = ("learned_absolute", "rope", "alibi")


def _gpt2_family(c: _Cfg, mid: str, arch: str) -> ModelSpec:
    """GPT-2-style configs: HF ``gpt2`` (every bias on, LayerNorms with bias, learned positions,
    tied embeddings, ``n_inner`` null meaning 4 x ``n_embd``) and GPT-J's ``gptj`` (one LayerNorm
    shared by a parallel attention + MLP block, no attention biases, rotary, untied LM head with a
    bias). Extension keys a ``gpt2`` file may add, each defaulting to GPT-2's own behaviour:
    ``position_embedding_type`` (learned_absolute | rope | alibi; only a learned table adds
    n_positions x n_embd parameters), ``num_key_value_heads`` (GQA), ``bias`` (linear-layer
    biases), ``layer_norm_bias``, ``parallel_attn`` (one shared LayerNorm per layer) and
    ``embedding_layernorm`` (BLOOM). ``activation_function`` (e.g. gelu, relu, relu2 =
    squared ReLU) and ``rotary_pct`` are recorded or documentary: neither changes a count."""
    d, n, heads, positions = c.int("n_embd"), c.int("n_layer"), c.int("n_head"), c.int("n_positions")
    ff = c.int("n_inner") if c.has("n_inner") else 4 * d
    gptj = arch == "gptj"
    pos = c.doc.get("position_embedding_type", "rope" if gptj else "learned_absolute")
    if pos not in _POSITION_TYPES:
        raise CatalogError(f"{c.where}: field 'position_embedding_type' = {pos!r}, expected one of {', '.join(_POSITION_TYPES)}")
    act = c.doc.get("activation_function", "gelu_new")
    if not isinstance(act, str):
        raise CatalogError(f"{c.where}: field 'activation_function' = {act!r}, expected a name such as 'gelu'")
    bias = c.bool("bias", True)
    doc = dict(c.doc, hidden_size=d, num_hidden_layers=n, num_attention_heads=heads, max_position_embeddings=positions)
    return _common(_Cfg(doc, c.where), mid, arch, _group([(None, False, ff)] * n), gated_mlp=False,
                   tied_default=not gptj, attn_bias=bias and not gptj, mlp_bias=bias,
                   norm_bias=c.bool("layer_norm_bias", True),
                   norms_per_layer=1 if gptj or c.bool("parallel_attn") else 2,
                   learned_positions=positions if pos == "learned_absolute" else 0,
                   embedding_norm=c.bool("embedding_layernorm"), lm_head_bias=gptj,
                   position_embedding=pos, activation=act)


ARCHITECTURES.update({"gpt2": _gpt2_family, "gptj": _gpt2_family})


_INHERITED = ("torch_dtype", "dtype", "tie_word_embeddings", "quantization_config")


def _text_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The language model of a multimodal wrapper (Llama 4, Kimi K2.5/K2.6): its ``text_config``,
    with dtype, tying and quantization taken from the wrapper where the text part leaves them out.
    The vision tower is not modelled."""
    text = dict(doc["text_config"])
    for key in _INHERITED:
        if text.get(key) is None and doc.get(key) is not None:
            text[key] = doc[key]
    return text


def spec_from_config(doc: Any, model_id: str, where: str) -> ModelSpec:
    """Build a ModelSpec from a parsed config.json dict."""
    if not isinstance(doc, dict):
        raise CatalogError(f"{where}: expected a JSON object")
    arch = doc.get("model_type")
    if isinstance(doc.get("text_config"), dict):
        doc = _text_config(doc)
        arch = doc.get("model_type", arch)
    _validate_config(doc, arch, where)
    if arch not in ARCHITECTURES:
        raise CatalogError(f"{where}: model_type {arch!r} is not supported; supported: {', '.join(sorted(ARCHITECTURES))}")
    spec = ARCHITECTURES[arch](_Cfg(doc, where), model_id, arch)
    _validate_spec(spec, where)
    return spec


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path.name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path.name}: expected UTF-8 JSON text, found byte 0x{exc.object[exc.start]:02x} "
                           f"at offset {exc.start}") from None
    except RecursionError:
        raise CatalogError(f"{path.name}: JSON nested too deeply to be a config.json") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None


def model_ids() -> list[str]:
    return sorted(p.stem for p in DATA.glob("*.json"))


@functools.cache
def load_model(ref: str) -> ModelSpec:
    """Load a model by catalog id, or by path to any config.json (or a folder holding one)."""
    path = Path(ref)
    if ref.endswith(".json") or path.is_dir() or "/" in ref:
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise CatalogError(f"{ref}: no such config.json file")
        return spec_from_config(read_json(path), path.parent.name if path.name == "config.json" else path.stem, path.name)
    p = DATA / f"{ref}.json"
    if not p.is_file():
        raise UnknownIdError("model", ref, model_ids())
    return spec_from_config(read_json(p), ref, p.name)


# ---- validation --------------------------------------------------------------------------
# Checks kept apart from the per-architecture parsers above: ``_validate_config`` runs on the
# raw dict before any parser (types and ranges of the fields the parsers read), and
# ``_validate_spec`` on the derived spec (consistency: GQA grouping, expert counts). Each
# error names the file, the field, the value and what was expected.

MAX_SIZE = 2**31 - 1  # no transformer dimension, layer or expert count comes near int32's range

# Fields that, when present (and not null), must be whole numbers >= 1 ...
_POSITIVE = ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size", "intermediate_size",
             "num_key_value_heads", "num_kv_heads", "head_dim", "num_local_experts", "num_experts",
             "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size", "ffn_hidden_size",
             "intermediate_size_mlp", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim",
             "n_embd", "n_layer", "n_head", "n_inner")  # the last four: GPT-2-family names
# ... or >= 0 (0 meaning "none" or "off" for these).
_NON_NEGATIVE = ("first_k_dense_replace", "n_shared_experts", "num_nextn_predict_layers", "decoder_sparse_step",
                 "moe_layer_freq", "interleave_moe_layer_step", "attention_chunk_size", "no_rope_layer_interval",
                 "max_window_layers", "shared_expert_intermediate_size", "q_lora_rank", "qk_nope_head_dim",
                 "max_position_embeddings", "sliding_window", "n_positions")
_INT_LISTS = ("mlp_only_layers", "moe_layers", "no_rope_layers")


def _whole(v: Any, key: str, where: str, *, minimum: int) -> int:
    """``v`` as an int if it is a finite whole number in [minimum, MAX_SIZE], else CatalogError."""
    ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
          and minimum <= v <= MAX_SIZE and int(v) == v)
    if not ok:
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        expected = (f"a finite whole number >= {minimum}" if number and not math.isfinite(v)
                    else f"a whole number <= {MAX_SIZE}" if number and v > MAX_SIZE else f"a whole number >= {minimum}")
        raise CatalogError(f"{where}: field '{key}' = {_short(v)}, expected {expected}")
    return int(v)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate_config(doc: dict[str, Any], arch: Any, where: str) -> None:
    """Types and ranges of the raw config fields the parsers read."""
    if not isinstance(arch, str):
        raise CatalogError(f"{where}: field 'model_type' = {_short(arch)}, expected a string such as 'llama'")
    for keys, minimum in ((_POSITIVE, 1), (_NON_NEGATIVE, 0)):
        for key in keys:
            if doc.get(key) is not None:
                _whole(doc[key], key, where, minimum=minimum)
    for key in _INT_LISTS:
        v = doc.get(key)
        if v is not None and not (isinstance(v, list) and all(not isinstance(x, bool) and isinstance(x, int)
                                                               and 0 <= x <= MAX_SIZE for x in v)):
            raise CatalogError(f"{where}: field '{key}' = {_short(v)}, expected a list of layer indices (whole numbers >= 0)")
    types = doc.get("layer_types")
    if types is not None and not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
        raise CatalogError(f"{where}: field 'layer_types' = {_short(types)}, expected a list of strings")
    _validate_quantization(doc.get("quantization_config"), where)


def _validate_quantization(q: Any, where: str) -> None:
    if q is None:
        return
    if not isinstance(q, dict):
        raise CatalogError(f"{where}: field 'quantization_config' = {_short(q)}, expected an object")
    groups, ignore = q.get("config_groups"), q.get("ignore")
    if groups is not None and not (isinstance(groups, dict) and all(isinstance(g, dict) for g in groups.values())):
        raise CatalogError(f"{where}: field 'quantization_config.config_groups' = {_short(groups)}, "
                           "expected an object of objects")
    if groups and any(g.get("weights") is not None and not isinstance(g["weights"], dict) for g in groups.values()):
        raise CatalogError(f"{where}: field 'quantization_config.config_groups.*.weights', expected an object")
    if ignore is not None and not isinstance(ignore, list):
        raise CatalogError(f"{where}: field 'quantization_config.ignore' = {_short(ignore)}, expected a list")


def _validate_spec(spec: ModelSpec, where: str) -> None:
    """Consistency of the derived spec: sizes, attention grouping, widths, expert routing."""
    for name, v in (("hidden size", spec.d_model), ("layers", spec.n_layers), ("attention heads", spec.n_heads),
                    ("key/value heads", spec.n_kv_heads), ("vocab_size", spec.vocab_size)):
        if v < 1:
            raise CatalogError(f"{where}: {name} = {v}, expected a whole number >= 1")
    if spec.n_heads % spec.n_kv_heads:
        raise CatalogError(f"{where}: num_key_value_heads = {spec.n_kv_heads} does not divide "
                           f"num_attention_heads = {spec.n_heads}; expected a divisor (grouped-query attention)")
    if spec.head_dim < 1:
        raise CatalogError(f"{where}: head_dim = {spec.head_dim} (hidden_size / num_attention_heads), expected >= 1")
    for g in spec.groups:
        if g.d_ff < 1:
            raise CatalogError(f"{where}: MLP width {g.d_ff} ({'moe_' if g.moe else ''}intermediate_size), "
                               "expected a whole number >= 1")
        if g.moe and not 1 <= g.experts_per_token <= g.n_experts:
            raise CatalogError(f"{where}: num_experts_per_tok = {g.experts_per_token} with {g.n_experts} routed "
                               "experts, expected between 1 and the number of experts")
        if g.window is not None and g.window < 1:
            raise CatalogError(f"{where}: attention window {g.window}, expected >= 1")
