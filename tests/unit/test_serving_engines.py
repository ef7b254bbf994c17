"""Serving engines' published launch settings (serving/data/engines.toml): the loader, the memory
fraction semantics, and their effect on the closed-loop sweep rows (batch cap -> queueing; the B200
TP4 FP8 rows fit under their engines' own memory fractions)."""

import tomllib
from dataclasses import replace

import pytest

from siliconsim.errors import CatalogError, InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.hardware.spec import BASES
from siliconsim.models.catalog import load_model
from siliconsim.perf.memory import MemoryFit
from siliconsim.plans.deploy import engine_memory
from siliconsim.serving.closed_loop import ClosedLoopPoint, closed_loop_point, simulate_closed_loop
from siliconsim.serving.engines import DATA, engine_settings, load_engines, scheduler_hold
from siliconsim.validation.runner import run_case
from siliconsim.validation.scenarios import _replica_point, row_engine, serving_layout
from siliconsim.validation.suite import load_cases
from siliconsim.validation.workload import lengths

ENGINES = DATA / "engines.toml"


def _case(**want):
    return next(c for c in load_cases("concurrency") if all(getattr(c, k) == v for k, v in want.items()))


# ---- loader -------------------------------------------------------------------------------------

def test_every_entry_loads_with_published_sources():
    entries = load_engines(ENGINES)
    assert len(entries) >= 10
    for match, s in entries:
        assert {"hardware", "engine", "weight_dtype", "tp"} <= set(match)
        assert s.memory_fraction is not None and 0 < s.memory_fraction <= 1  # every InferenceX script sets one
    doc = tomllib.loads(ENGINES.read_text(encoding="utf-8"))
    for entry in doc["configs"]:
        for key, value in entry.items():
            if isinstance(value, dict):  # a setting: read off a launch script at a pinned commit
                assert value["basis"] == "datasheet" and value["basis"] in BASES, key
                assert value["source"].startswith("InferenceX 475218b benchmarks/single_node/dsr1_"), key


def test_every_sweep_row_finds_its_engine_settings():
    """The data covers every (hardware, engine, precision, layout, lengths) of the development sweeps."""
    missing = {(c.hardware, c.engine, c.weight_dtype, c.tp, c.ep) for c in load_cases("concurrency")
               if row_engine(c, lengths(c)) is None}
    assert not missing


def test_lookup_picks_the_first_matching_entry():
    h200 = engine_settings("h200", "sglang", "fp8", 8, isl=1024, osl=1024)
    assert h200 is not None and h200.max_batch == 512  # the 1k/1k branch of dsr1_fp8_h200.sh
    other = engine_settings("h200", "sglang", "fp8", 8, isl=8192, osl=1024)
    assert other is not None and other.max_batch == 256
    trt = engine_settings("b200", "trtllm", "fp8", 4, isl=8192, osl=1024)
    assert trt is not None and trt.memory_fraction == pytest.approx(0.75) and trt.memory_fraction_of == "free"
    assert engine_settings("b200", "trtllm", "fp8", 4, isl=1024, osl=1024).memory_fraction == pytest.approx(0.8)
    assert engine_settings("b200", "vllm", "fp8", 8) is None  # an engine the file does not describe
    assert engine_settings("gb200-nvl72", "sglang", "fp8", 8) is None


def test_trtllm_token_budget_grows_to_fit_concurrency_plus_prompt():
    trt = engine_settings("b200", "trtllm", "fp8", 8)
    assert trt is not None and not trt.chunked_prefill and trt.kv_reservation == "full"
    assert trt.budget(4, 1024) == 8192  # the floor
    assert trt.budget(256, 8192) == 8512  # ceil64(256 + 8192 + 64)
    assert trt.budget(100, 8192) == 8384  # 8356 rounded up to 64
    sgl = engine_settings("b200", "sglang", "fp8", 8)
    assert sgl is not None and sgl.budget(256, 8192) == 32768 and sgl.chunked_prefill


def test_full_kv_reservation_caps_the_batch_at_whole_sequences():
    trt = engine_settings("b200", "trtllm", "fp8", 8)
    cfg = trt.serve_config(256, 8192, 7372.8, 921.6, kv_capacity_tokens=1.0e6)
    assert cfg.max_batch == int(1.0e6 // (7372.8 + 921.6)) == 120
    assert cfg.chunk() == 0 and cfg.token_budget == 8512  # whole prompts only, in steps of max_num_tokens
    sgl = engine_settings("b200", "sglang", "fp8", 8)  # SGLang grows KV as it goes: only its own cap
    assert sgl.serve_config(256, 1024, 921.6, 921.6, kv_capacity_tokens=1.0e5).max_batch == 128


def _write(tmp_path, text):
    path = tmp_path / "engines.toml"
    path.write_text(text, encoding="utf-8")
    return path


ENGINE = '[engines.sglang]\nmemory_fraction_of = "total"\nchunked_prefill = true\nkv_reservation = "incremental"\n'
ENTRY = '[[configs]]\nhardware = "b200"\nengine = "sglang"\nweight_dtype = "fp8"\ntp = 8\n'
SRC = 'basis = "datasheet", source = "x"'


@pytest.mark.parametrize("text, where", [
    (ENGINE + ENTRY + f"max_batchsize = {{ value = 8, {SRC} }}\n", r"engines.toml: configs\[0\]: unknown field 'max_batchsize'"),
    (ENGINE + 'max_batch_size = 3\n' + ENTRY, r"engines.toml: engines.sglang: unknown field 'max_batch_size'"),
    (ENGINE + ENTRY + f"memory_fraction = {{ value = 1.5, {SRC} }}\n", r"configs\[0\].memory_fraction: expected a fraction"),
    (ENGINE + ENTRY + f"max_batch = {{ value = 2.5, {SRC} }}\n", r"configs\[0\].max_batch: expected a whole number"),
    (ENGINE + ENTRY + 'max_batch = 8\n', r"configs\[0\].max_batch: expected a table"),
    (ENGINE + ENTRY.replace("tp = 8\n", "") , r"configs\[0\]: missing field 'tp'"),
    (ENGINE + ENTRY.replace("tp = 8", 'tp = "8"'), r"configs\[0\].tp: expected a int"),
    (ENGINE.replace('"total"', '"all"') + ENTRY, r"engines.sglang.memory_fraction_of: expected one of total, free"),
    (ENTRY, r"configs\[0\].engine: 'sglang' has no \[engines.sglang\] table"),
    ("[engine.sglang]\n", r"engines.toml: unknown table 'engine'"),
])
def test_bad_entry_is_a_one_line_catalog_error_naming_file_and_field(tmp_path, text, where):
    with pytest.raises(CatalogError, match=where) as err:
        load_engines(_write(tmp_path, text))
    assert "\n" not in str(err.value)


# ---- memory fraction semantics --------------------------------------------------------------------

def test_memory_fraction_of_total_and_of_free():
    fit = MemoryFit(weights_bytes=100e9, kv_bytes=1e9, activation_bytes=5e9, usable_bytes=162e9, capacity_bytes=180e9)
    sgl = engine_memory(fit, 0.95, "total")  # weights + KV pool = 0.95 x 180 GB
    assert sgl.free_for_kv_bytes == pytest.approx(0.95 * 180e9 - 100e9)
    trt = engine_memory(fit, 0.8, "free")  # KV = 0.8 x what weights and activations leave
    assert trt.free_for_kv_bytes == pytest.approx(0.8 * (180e9 - 100e9 - 5e9))
    heavy = replace(fit, weights_bytes=175e9)
    assert not engine_memory(heavy, 0.95, "total").fits  # 175 GB > 171 GB: SGLang would not start
    with pytest.raises(InputError, match="memory fraction 1.2"):
        engine_memory(fit, 1.2, "free")


# ---- the sweep rows -------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_b200_tp4_fp8_rows_fit_under_their_engines_memory_fraction(engine):
    case = _case(hardware="b200", engine=engine, weight_dtype="fp8", tp=4, metric="aggregate_output_tok_s")
    res = run_case(case)
    assert res.prediction.covered, res.prediction.reason
    assert "memory 0.95 of total" in res.prediction.layout or "of free" in res.prediction.layout
    # no published settings: the family's 0.9 of 180 GiB (193.3 GB) holds the 168.2 GB of weights too,
    # but leaves the KV cache less room than SGLang's published 0.95 of total
    without = run_case(replace(case, engine="x"))
    assert without.prediction.covered and "memory 0.95" not in without.prediction.layout
    if engine == "sglang":
        assert _point(case, 32).in_service > _point(replace(case, engine="x"), 32).in_service


def _point(case, n):
    case = replace(case, concurrency=n)
    ln = lengths(case)
    out = _replica_point(case, load_model(case.model), load_chip(case.hardware), ln)
    assert not isinstance(out, str), out
    return out[1]


def test_a_published_batch_cap_queues_requests_past_it():
    """dsr1_fp8_b200.sh runs SGLang TP8 with --max-running-requests 128: past 128 requests in flight,
    the rest wait for a slot, so TTFT grows with concurrency and throughput stays at its plateau."""
    case = _case(hardware="b200", engine="sglang", weight_dtype="fp8", tp=8, ep=1, input_tokens=921.6,
                 output_tokens=921.6, metric="ttft_median_ms")
    pts = {n: _point(case, n) for n in (64, 128, 256, 512)}
    assert [pts[n].in_service for n in (64, 128, 256, 512)] == [64, 128, 128, 128]
    assert pts[128].ttft_s < pts[256].ttft_s < pts[512].ttft_s
    assert pts[512].ttft_s > 2 * pts[256].ttft_s - pts[128].ttft_s - 1e-9  # grows with the queue
    assert pts[256].output_tok_s == pytest.approx(pts[128].output_tok_s, rel=0.02)  # the plateau
    assert pts[512].output_tok_s == pytest.approx(pts[256].output_tok_s, rel=1e-9)
    assert pts[64].output_tok_s < 0.98 * pts[128].output_tok_s
    uncapped = _point(replace(case, engine="x"), 256)  # no settings: today's default cap of 256
    assert uncapped.in_service == 256 and uncapped.ttft_s < pts[256].ttft_s


def test_simulator_agrees_that_the_cap_queues():
    """The discrete-event engine under the same ServeConfig: past the cap, half the requests wait a
    whole request cycle for a slot (closed form: TTFT ~ (N / cap - 1) x cycle), throughput stays."""
    case = _case(hardware="b200", engine="sglang", weight_dtype="fp8", tp=8, ep=1, input_tokens=921.6,
                 output_tokens=921.6, metric="ttft_median_ms")
    ln = lengths(case)
    engine = row_engine(case, ln)
    dep = serving_layout(case, load_model(case.model), load_chip(case.hardware), ln.input_tokens + ln.output_tokens,
                         engine)
    for n in (128, 256):
        cfg = engine.serve_config(n, 1024, ln.input_tokens, ln.output_tokens, dep.kv_capacity_tokens)
        sim = simulate_closed_loop(dep, n, ln.input_tokens, ln.output_tokens, config=cfg)
        form = closed_loop_point(dep, n, ln.input_tokens, ln.output_tokens, cfg)
        assert sim.in_service == pytest.approx(128)
        assert sim.output_tok_s == pytest.approx(form.output_tok_s, rel=0.05)
        assert sim.ttft_s == pytest.approx(form.ttft_s, rel=0.1)  # a fraction of a second at 128, ~30-40 s at 256
    assert form.ttft_s > 20 * closed_loop_point(dep, 128, ln.input_tokens, ln.output_tokens, cfg).ttft_s


# ---- TensorRT-LLM scheduler holds ----------------------------------------------------------------

def _op(concurrency=64, in_service=64, tpot_s=0.03, output_tokens=1000.0):
    cycle_s = output_tokens * tpot_s  # no queue: request rate = in_service / cycle
    return ClosedLoopPoint(concurrency, in_service, in_service * output_tokens / cycle_s, tpot_s, 0.1, output_tokens)


def test_dp_attention_balance_holds_prompts_until_every_rank_has_one_or_the_timeout():
    trt = engine_settings("b200", "trtllm", "fp8", 8, ep=8, dp_attention=True, isl=1024, osl=1024, concurrency=64)
    assert trt is not None and trt.adp_timeout_iters == 60
    assert trt.batch_wait_iters == 40  # set by the script too, but TensorRT-LLM skips it under DP attention
    op = _op()  # 64 requests / 30 s cycle: 0.064 prompts per iteration -> 8 ranks need 125 > 60 iterations
    held = scheduler_hold(op, trt, attention_ranks=8, token_budget=8192, input_tokens=921.6)
    assert held.ttft_s == pytest.approx(0.1 + 30 * 0.03)  # half the 60-iteration timeout
    assert held.tpot_s == op.tpot_s and held.output_tok_s < op.output_tok_s
    fast = scheduler_hold(op, trt, attention_ranks=2, token_budget=8192, input_tokens=921.6)
    assert fast.ttft_s == pytest.approx(0.1 + 0.5 * (2 / 0.064) * 0.03)  # two ranks fill before the timeout
    plain = engine_settings("b200", "trtllm", "fp8", 8, ep=8, isl=1024, osl=1024, concurrency=32)
    assert scheduler_hold(op, plain, attention_ranks=1, token_budget=8192, input_tokens=921.6) == op  # no DP


def test_batch_wait_holds_prompts_until_the_step_is_full_enough():
    trt = engine_settings("b200", "trtllm", "fp8", 8, isl=1024, osl=1024, concurrency=128)
    assert trt is not None and (trt.batch_wait_iters, trt.batch_wait_tokens_ratio) == (40, pytest.approx(0.8))
    op = _op(128, 128)  # 0.128 prompts per iteration; 0.8 x 8192 - 128 decode tokens = 7 prompts of 921.6
    held = scheduler_hold(op, trt, attention_ranks=1, token_budget=8192, input_tokens=921.6)
    assert held.ttft_s == pytest.approx(0.1 + 0.5 * min(40, 6 / 0.128) * 0.03)
    roomy = scheduler_hold(op, trt, attention_ranks=1, token_budget=8192, input_tokens=8000.0)
    assert roomy == op  # one prompt fills the step: nothing to wait for
    below = engine_settings("b200", "trtllm", "fp8", 8, isl=1024, osl=1024, concurrency=32)
    assert below is not None and below.batch_wait_iters is None  # the script sets it from concurrency 64 on
    assert scheduler_hold(op, below, attention_ranks=1, token_budget=8192, input_tokens=921.6) == op


def test_sglang_polling_interval_holds_a_prompt_half_the_interval_while_others_decode():
    # dsr1_fp4_b200.sh: --scheduler-recv-interval 30 from concurrency 16, else 10
    busy = engine_settings("b200", "sglang", "fp4", 8, ep=8, concurrency=64)
    quiet = engine_settings("b200", "sglang", "fp4", 8, ep=8, concurrency=8)
    assert (busy.admission_interval_steps, quiet.admission_interval_steps) == (30, 10)
    assert "every 30 decode steps" in busy.describe()
    op = _op()
    held = scheduler_hold(op, busy, attention_ranks=1, token_budget=16384, input_tokens=921.6)
    assert held.ttft_s == pytest.approx(0.1 + 14.5 * 0.03)  # n/2 steps instead of the half step of polling every step
    assert held.tpot_s == op.tpot_s
    cycle_s = 1000 * 0.03
    assert held.output_tok_s == pytest.approx(op.output_tok_s * cycle_s / (cycle_s + 14.5 * 0.03))
    alone = _op(concurrency=1, in_service=1)
    assert scheduler_hold(alone, busy, attention_ranks=1, token_budget=16384, input_tokens=921.6) == alone  # idle loop polls
    mi = engine_settings("mi300x", "sglang", "fp8", 8, concurrency=64)  # --num-continuous-decode-steps=4
    assert scheduler_hold(op, mi, 1, None, 921.6).ttft_s == pytest.approx(0.1 + 1.5 * 0.03)
    h200 = engine_settings("h200", "sglang", "fp8", 8, concurrency=64)
    assert h200.admission_interval_steps is None and scheduler_hold(op, h200, 1, 32768, 921.6) == op


def test_sglang_polling_interval_explains_b200_ttft_growth_with_concurrency():
    # measured (inferencex-dev.csv): B200 SGLang FP4 TP8 EP8 1k/1k TTFT rises from 190 ms at
    # concurrency 8 to 325 ms at 16, where the script raises the polling interval from 10 to 30;
    # the hold accounts for a jump of that order (tens of decode steps of ~10 ms), not a few ms
    out = {}
    for n in (8, 16):
        case = _case(hardware="b200", engine="sglang", weight_dtype="fp4", tp=8, ep=8, input_tokens=921.6,
                     output_tokens=921.6, concurrency=n, metric="ttft_median_ms")
        out[n] = run_case(case).predicted
    assert 60 < out[16] - out[8] < 250


def test_batch_wait_settings_come_in_pairs(tmp_path):
    text = ENGINE + ENTRY + f"batch_wait_iters = {{ value = 40, {SRC} }}\n"
    with pytest.raises(CatalogError, match=r"configs\[0\]: batch_wait_iters and batch_wait_tokens_ratio go together"):
        load_engines(_write(tmp_path, text))
