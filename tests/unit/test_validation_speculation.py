"""Suite rows that name a speculative technique: per-technique defaults, drafter rules, predictions."""

from dataclasses import replace

import pytest

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import load_chip, read_toml
from siliconsim.hardware.spec import BASES
from siliconsim.models.catalog import load_model
from siliconsim.speculative import draft_head, expected_tokens_per_step
from siliconsim.validation.runner import run_case
from siliconsim.validation.scenarios import single_stream
from siliconsim.validation.speculation import SERVICES_FILE, SPECULATION_FILE, draft_model_for, services, speculation_for, \
    techniques
from siliconsim.validation.suite import SPECULATIVE, load_cases
from siliconsim.validation.workload import lengths


@pytest.fixture(scope="module")
def cases():
    return {c.id: c for c in load_cases()}


def test_every_technique_of_the_suite_has_sourced_defaults():
    doc = read_toml(SPECULATION_FILE)
    assert doc["meta"]["sources"] and doc["meta"]["retrieved"]
    assert set(techniques()) == set(SPECULATIVE) - {"none"}
    for name in techniques():
        for key, entry in doc[name].items():
            assert entry["basis"] in BASES, f"{name}.{key}"
            assert len(entry["source"]) > 40, f"{name}.{key} needs a real source"
        t = techniques()[name]
        assert t.draft_len >= 1 and 0 < t.acceptance < 1


def test_unknown_spec_borrows_the_draft_model_defaults():
    assert replace(techniques()["unknown-spec"], name="specdec") == techniques()["specdec"]


@pytest.mark.parametrize(("source", "word", "bad", "load", "where"), [
    (SPECULATION_FILE, "head", "tree", techniques, "eagle3.drafter"),
    (SERVICES_FILE, "target-chips", "elsewhere", services, "sn40l.draft_placement")])
def test_a_bad_word_names_file_and_key(tmp_path, source, word, bad, load, where):
    text = source.read_text(encoding="utf-8").replace(f'value = "{word}"', f'value = "{bad}"')
    path = tmp_path / source.name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=rf"{source.name}: {where}.value: '{bad}'"):
        load(path)


@pytest.mark.parametrize("row", ["M0005", "M0009", "M0065"])
def test_speculative_rows_are_faster_than_plain_decoding(cases, row):
    case = cases[row]
    model, chip, ln = load_model(case.model), load_chip(case.hardware), lengths(case)
    plain = single_stream(replace(case, speculative="none"), model, chip, ln)
    spec = run_case(case).prediction
    assert spec.covered and plain.covered
    assert spec.value > 1.3 * plain.value
    assert f"{case.speculative} assumed" in spec.layout and "assumed" not in plain.layout
    assert spec.layout.split("×")[0] == plain.layout.split("×")[0]  # same target system


def test_draft_model_rule_picks_a_same_tokenizer_model_two_orders_smaller():
    spec = techniques()["specdec"]
    assert draft_model_for(load_model("llama-3.1-70b"), spec).id == "llama-3.2-1b"
    assert draft_model_for(load_model("llama-2-70b"), spec).id == "llama-2-7b"
    assert draft_model_for(load_model("llama-4-maverick"), spec) is None  # Scout: same 17B active, no draft


def test_head_drafters_are_one_layer_of_the_target():
    maverick, r1 = load_model("llama-4-maverick"), load_model("deepseek-r1")
    eagle, mtp = draft_head(maverick), draft_head(r1, moe=True)
    assert eagle.n_layers == 1 and not eagle.is_moe and eagle.groups[0].d_ff == 16384  # intermediate_size_mlp
    assert eagle.vocab_size == maverick.vocab_size and eagle.d_model == maverick.d_model
    assert mtp.n_layers == 1 and mtp.is_moe and mtp.is_mla
    assert 0 < mtp.active_params < r1.active_params / 10


def test_mtp_needs_a_model_with_an_mtp_layer():
    spec, why = speculation_for("mtp", load_model("llama-3.1-70b"))
    assert spec is None and "no multi-token-prediction layer" in why
    spec, what = speculation_for("mtp", load_model("deepseek-r1"))
    assert spec.colocated and spec.draft_len == 1 and "MTP layer" in what


def test_eagle3_default_reproduces_published_chain_acceptance_lengths():
    """Chain acceptance length at K=3 of EAGLE-3 heads: 2.79 (Llama-3.1-8B, MT-bench, vLLM issue 20780)
    and 2.37-3.08 (NVIDIA's Llama-4-Maverick head on CNN-DM / HumanEval / GSM8K). A chain can never
    reach the EAGLE-3 paper's depth-8 tree tau (arXiv:2503.01840 Table 1, L31 8B mean 6.23)."""
    t = techniques()["eagle3"]
    tau = expected_tokens_per_step(t.acceptance, t.draft_len)
    assert tau == pytest.approx(2.79, rel=0.03)
    assert 2.37 <= tau <= 3.08 and tau < 6.23
