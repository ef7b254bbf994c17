"""Golden single-stream decode speeds of wafer-scale and dataflow systems (published, sourced).

One calibrated parameter per chip generation (WSE relay latency beta, Groq SRAM-stream
efficiency), fitted by scripts/fit_wafer.py over these rows, not per row. Tolerance +-25%: the
published figures are API measurements or vendor claims whose prompt/output lengths and software
versions vary (Llama-3.1-8B on CS-3 is quoted at 1,800, 1,837 and 2,200 tok/s), so a single
physical model cannot be closer than their own spread.
"""

import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model

SC = Scenario(1, 1000, 500)  # ~1k-token prompt (Artificial Analysis), output length assumed
CASES = [
    # id, hardware, chips, model, dtype, tok/s, source
    ("M0001", "cs-3", None, "llama-3.1-8b", "bf16", 1800, "https://cerebras.ai/blog/introducing-cerebras-inference-ai-at-instant-speed"),
    ("M0003", "cs-3", None, "llama-3.1-8b", "bf16", 1837, "https://sambanova.ai/blog/sn40l-chip-best-inference-solution (Artificial Analysis)"),
    ("M0020", "cs-3", None, "llama-3.1-8b", "bf16", 2200, "hivebook.wiki Cerebras inference API May 2026 (vendor-listed)"),
    ("M0002", "cs-3", 4, "llama-3.1-70b", "bf16", 450, "https://cerebras.ai/blog/introducing-cerebras-inference-ai-at-instant-speed"),
    ("M0004", "cs-3", 4, "llama-3.1-70b", "bf16", 445, "https://sambanova.ai/blog/sn40l-chip-best-inference-solution (Artificial Analysis)"),
    ("M0027", "cs-2", 1, "llama-3-8b", "bf16", 2700, "WaferLLM, OSDI 2025 (arXiv 2502.04563 v1 abstract), 420^2 region of a WSE-2"),
    ("M0035", "groq-lpu", None, "llama-2-7b", "int8", 750, "https://techpowerup.com/news-tags/Processor?page=3"),
    ("M0037", "groq-lpu", None, "llama-3-8b", "int8", 800, "https://uuaa.net/ainews/jKaZNBD2.html (Artificial Analysis)"),
    ("M0038", "groq-lpu", None, "llama-3.1-8b", "int8", 751, "https://sambanova.ai/blog/sn40l-chip-best-inference-solution (Artificial Analysis)"),
    ("M0039", "groq-lpu", None, "llama-3.1-70b", "int8", 250, "https://sambanova.ai/blog/sn40l-chip-best-inference-solution (Artificial Analysis)"),
]


@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_single_stream_decode_within_25_percent(row):
    _, hw, chips, model_id, dtype, measured, _source = row
    est = estimate(load_model(model_id), load_chip(hw), SC, chips=chips, dtype=dtype)
    assert est.feasible
    assert est.output_tok_s_per_user == pytest.approx(measured, rel=0.25)


def test_groq_mixtral_within_25_percent():
    """Mixtral-8x7B on Groq at 480 tok/s (techpowerup, Feb 2024). The LPU's Groq memory
    efficiency is fitted on the dense rows too; with the dense rows alone (M0035/37/38/39) the
    fit gives 0.0676 and this row -11%, so the bar does not rest on fitting it. What makes MoE
    slower than a dense 7B of the same depth is the static schedule's sequential expert slots."""
    est = estimate(load_model("mixtral-8x7b"), load_chip("groq-lpu"), SC, dtype="int8")
    assert est.output_tok_s_per_user == pytest.approx(480, rel=0.25)
    dense = estimate(load_model("llama-2-7b"), load_chip("groq-lpu"), SC, dtype="int8")
    assert est.output_tok_s_per_user < 0.8 * dense.output_tok_s_per_user


def test_wafer_wall_clock_components_are_latency_not_bandwidth():
    """Published speeds imply tens of microseconds per layer (reference notes 2.2): 17 us on CS-3."""
    est = estimate(load_model("llama-3.1-8b"), load_chip("cs-3"), SC)
    per_layer_us = est.tpot_s / 32 * 1e6
    assert 10 < per_layer_us < 30
