"""Planner internals: tasks, closed-form evaluation, objectives, checkpoints, executors, pricing."""

import json
import math

import pytest

from siliconsim.accounting import default_assumptions
from siliconsim.accounting.power import chip_power, serving_power
from siliconsim.accounting.pricing import (Pricing, list_prices, parse_pricing, sanity_warning, token_prices,
                                           usd_per_chip_hour)
from siliconsim.errors import InputError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.planner.checkpoint import Checkpoint
from siliconsim.planner.closed_form import evaluate
from siliconsim.planner.executors import MAX_CHUNK_TASKS, LocalExecutor, make_executor, shipped_chunks
from siliconsim.planner.layouts import best_split, replica_sizes
from siliconsim.planner.objectives import OBJECTIVES, ranked
from siliconsim.planner.plan import plan
from siliconsim.planner.search import STRATEGIES, sweep
from siliconsim.planner.space import Problem, Task, precisions, tasks
from siliconsim.plans import plan_deployment


def small_problem(**kw):
    base = dict(model="llama-3.1-8b", hardware=("h100-sxm", "mi300x"), input_tokens=1024, output_tokens=128,
                rate_per_s=5.0, ttft_p99_s=1.0, tpot_p99_s=0.05, max_chips=16)
    base.update(kw)
    return Problem(**base)


def test_task_keys_round_trip_and_are_unique():
    ts = tasks(small_problem())
    assert len({t.key for t in ts}) == len(ts) > 10
    assert all(Task.from_key(t.key) == t for t in ts)
    assert all(t.par.chips <= 16 for t in ts)


def test_precisions_try_one_format_per_width_below_native():
    assert precisions(load_model("llama-3.1-70b"), load_chip("b200")) == ["bf16", "fp8", "fp4"]
    assert precisions(load_model("llama-3.1-70b"), load_chip("h200")) == ["bf16", "fp8"]


def test_problem_rejects_nonsense():
    with pytest.raises(InputError, match="rate_per_s"):
        small_problem(rate_per_s=0)
    with pytest.raises(InputError, match="modes"):
        small_problem(modes=("sideways",))


def test_evaluate_keeps_only_points_meeting_both_slos():
    p = small_problem()
    res = [evaluate(p, t) for t in tasks(p)]
    pts = [q for r in res for q in r.points]
    assert pts, "an 8B model at 5 req/s fits an H100 within a 1 s / 50 ms SLO"
    assert all(q["p99_ttft_s"] <= p.ttft_p99_s and q["p99_tpot_s"] <= p.tpot_p99_s for q in pts)
    assert all(q["chips"] == q["replicas"] * q["chips_per_replica"] <= p.max_chips for q in pts)
    # each replica set serves the demand: replicas x per-replica request rate >= demand
    for q in pts:
        if q["mode"] == "aggregated":
            per_replica = q["output_tok_s_per_chip"] * q["chips_per_replica"] / p.output_tokens
            assert q["decode_replicas"] * per_replica >= p.rate_per_s * (1 - 1e-9)
    assert all(r.reason for r in res if not r.points)


def test_token_prices_split_the_cost_by_chip_time():
    tp = token_prices(10.0, 0.25, input_tok_s=1000.0, output_tok_s=100.0)
    assert tp.usd_per_mtok_input == pytest.approx(10 * 0.25 / 1000 * 1e6)
    assert tp.usd_per_mtok_output == pytest.approx(10 * 0.75 / 100 * 1e6)
    # blended = total cost over total tokens = the two prices weighted by the token ratio
    blend = (1000 * tp.usd_per_mtok_input + 100 * tp.usd_per_mtok_output) / 1100
    assert tp.usd_per_mtok_blended == pytest.approx(blend)


def test_pricing_modes():
    chip, a = load_chip("h200"), default_assumptions()
    assert usd_per_chip_hour(chip, Pricing("hyperscaler"), a, 700.0)[0] == pytest.approx(1.22)
    assert usd_per_chip_hour(chip, Pricing("rental"), a, 700.0)[0] == pytest.approx(2.05)
    assert usd_per_chip_hour(chip, parse_pricing("3.5"), a, 700.0)[0] == 3.5
    capex, why = usd_per_chip_hour(chip, Pricing("capex"), a, 700.0)
    expected = (32000 + chip.system.host_price_per_chip_usd) / (a.lifetime_s * a.utilization) * 3600 \
        + 700 * a.pue * a.electricity_price_usd_per_j * 3600
    assert capex == pytest.approx(expected) and "5 years" in why
    rate, why = usd_per_chip_hour(load_chip("groq-lpu"), Pricing("neocloud"), a, 200.0)
    assert "no neocloud tier" in why and rate > 0
    for bad in ("free", "-1", "nan"):
        with pytest.raises(InputError, match="--pricing"):
            parse_pricing(bad)


def test_list_price_sanity_warning_names_both_numbers():
    assert list_prices("gpt-oss-120b", "groq-lpu")[0].usd_per_mtok_output == 0.60
    w = sanity_warning("gpt-oss-120b", "groq-lpu", 715.0)
    assert w and "715" in w and "0.6" in w and "Groq" in w
    assert sanity_warning("gpt-oss-120b", "groq-lpu", 5.9) is None
    assert sanity_warning("llama-3.1-8b", "groq-lpu", 1e6) is None  # no list price: no check


def test_power_cap_lowers_draw_and_slows_compute_only():
    chip, a = load_chip("h200"), default_assumptions()
    dep = plan_deployment(load_model("llama-3.1-8b"), chip).deployment
    step = dep.step(Work(prefill_tokens=8192.0, prefill_context=512.0))
    free, capped = chip_power(chip, step, a), chip_power(chip, step, a, 400.0)
    assert float(capped.power_w) == pytest.approx(400.0) and float(free.power_w) > 400.0
    assert float(capped.step.compute_s) > float(step.compute_s)
    assert float(capped.step.memory_s) == float(step.memory_s)
    # a limit above the TDP: faster compute and more draw where the full clock needs more (GH100, 826 W) ...
    high = chip_power(chip, step, a, 800.0)
    assert float(high.step.compute_s) < float(step.compute_s) and float(free.power_w) < float(high.power_w) <= 800.0
    b200 = load_chip("b200")  # ... and nothing where the catalog has no full-clock draw above the TDP
    b_step = plan_deployment(load_model("llama-3.1-8b"), b200).deployment.step(Work(prefill_tokens=8192.0,
                                                                                 prefill_context=512.0))
    assert float(chip_power(b200, b_step, a, 1400.0).power_w) == float(chip_power(b200, b_step, a).power_w)
    sp = serving_power(chip, 8, step, 1.0, a, 400.0)
    assert sp.system_power_w == pytest.approx(8 * (400.0 + chip.system.host_power_per_chip_w))
    assert sp.slowdown > 1.0


def test_best_split_keeps_the_highest_score_and_reports_why_not():
    model, chip = load_model("llama-3.1-70b"), load_chip("h100-sxm")
    assert replica_sizes(model, chip, 8, "fp8", 2048) == [1, 2, 4, 8]  # 70.6 GB of fp8 weights fit one 80 GiB chip
    best = best_split(model, chip, 8, "fp8", 2048, lambda n, r: (float(-abs(n - 2)), n))
    assert best == (0.0, 2)
    assert "do not divide" in best_split(model, chip, 8, "fp8", 2048, lambda n, r: (1.0, n), fixed=3)
    assert not best_split(model, chip, 1, "bf16", 2048, lambda n, r: (1.0, n)).feasible


def test_objectives_rank_by_their_own_figure_first():
    a = {"usd_per_mtok_blended": 1.0, "chips": 8, "power_w": 5.0, "key": "a", "batch": 1}
    b = {"usd_per_mtok_blended": 2.0, "chips": 4, "power_w": 9.0, "key": "b", "batch": 1}
    assert ranked([b, a], "cost")[0] is a
    assert ranked([a, b], "chips")[0] is b
    assert ranked([b, a], "power")[0] is a
    assert set(OBJECTIVES) == {"cost", "chips", "power"} and set(STRATEGIES) >= {"exhaustive", "near-smallest"}


def test_checkpoint_resume_skips_finished_tasks_and_cuts_a_torn_tail(tmp_path):
    p = small_problem()
    path = tmp_path / "ck.jsonl"
    ts = tasks(p)
    ck = Checkpoint(path, p.describe(), resume=False)
    first = sweep(p, ts[:5], checkpoint=ck)
    with open(path, "ab") as fh:
        fh.write(b'{"key": "torn')  # a write cut by SIGKILL
    again = Checkpoint(path, p.describe(), resume=True)
    assert set(again.done) == {t.key for t in ts[:5]}
    assert path.read_bytes().endswith(b"\n")
    seen = []
    full = sweep(p, ts, checkpoint=again, progress=lambda d, n: seen.append((d, n)))
    assert full[:5] == first and seen[0] == (5, len(ts)) and seen[-1] == (len(ts), len(ts))
    assert len(path.read_text().splitlines()) == 1 + len(ts)
    assert full == sweep(p, ts)  # the same answer as an uninterrupted sweep
    with pytest.raises(InputError, match="different problem"):
        Checkpoint(path, small_problem(rate_per_s=6.0).describe(), resume=True)
    with pytest.raises(InputError, match="no such checkpoint"):
        Checkpoint(tmp_path / "none.jsonl", p.describe(), resume=True)


def test_local_executors_give_identical_results():
    p = small_problem()
    ts = tasks(p)
    one = sweep(p, ts, LocalExecutor(1))
    two = sweep(p, ts, LocalExecutor(2))
    assert json.dumps(one) == json.dumps(two)
    with pytest.raises(InputError, match="executor"):
        make_executor("threads")


def test_shipped_chunks_cover_every_task_once_about_sixteen_per_worker_alike():
    ts = list(range(6000))
    two = shipped_chunks(ts, 2)
    assert sorted(t for c in two for t in c) == ts and len(two) == 32
    assert {len(c) for c in two} == {187, 188} and two[1][:2] == [1, 33]  # strided: each chunk a like mix
    assert len(shipped_chunks(ts[:100], 2)) == 2  # not 32 chunks of 3 tasks: about CHUNK_TASKS (64) or more each
    assert max(len(c) for c in shipped_chunks(list(range(10 ** 6)), 1)) <= MAX_CHUNK_TASKS


def test_ray_executor_keeps_its_cluster_across_runs_and_matches_local():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'siliconsim[ray]'); not installed")
    from siliconsim.planner.executors import RayExecutor

    p = small_problem()
    ts = tasks(p)
    local = sweep(p, ts)
    with RayExecutor(2) as ex:
        first = sweep(p, ts, ex)
        assert ray.is_initialized()  # kept for the next run
        again = sweep(p, ts[::-1], ex)
    assert not ray.is_initialized()
    assert json.dumps(first) == json.dumps(local) == json.dumps(again[::-1])


def test_plan_returns_best_fronts_alternatives_and_infeasible_reasons():
    p = small_problem(hardware=("h100-sxm", "mi300x", "groq-lpu"))  # Groq needs more than 16 chips for 8B
    r = plan(p, None)
    assert r.best is not None and r.best["p99_tpot_s"] <= p.tpot_p99_s
    assert all(OBJECTIVES["cost"](r.best) <= OBJECTIVES["cost"](a) for a in r.alternatives)
    assert {x["hardware"] for x in r.infeasible} == {"groq-lpu"}
    assert "needs" in r.infeasible[0]["reason"] or "weights" in r.infeasible[0]["reason"]
    assert sum(1 for q in r.pareto if q["front"] == "throughput" and q["hardware"] == "h100-sxm") >= 3
    rec = r.as_dict()
    assert rec["schema_version"] == 1 and rec["best"]["hardware"] in ("h100-sxm", "mi300x")
    assert math.isfinite(rec["best"]["usd_per_mtok_output"]) and rec["best"]["power_w"] > 0


def test_the_closed_form_sees_the_length_biased_decode_context_of_the_demand():
    """A decode step holds requests in proportion to their output lengths: over the code-completion
    preset's requests the mean context of every decode step of every request is the demand's
    ``decode_context_tokens`` (less half a token), above input + output / 2; fixed lengths give exactly that."""
    from dataclasses import replace

    import numpy as np

    from siliconsim.planner.plan import demand
    from siliconsim.planner.space import Problem

    d = demand(10, workload="code-completion")
    i, o = (np.asarray(x, dtype=float) for x in (d.requests.input_tokens, d.requests.output_tokens))
    steps = (i * o + o * (o - 1) / 2).sum() / o.sum()
    assert d.decode_context_tokens - 0.5 == pytest.approx(steps, rel=1e-9)
    assert d.decode_context_tokens > d.input_tokens + d.output_tokens / 2
    fixed = demand(10, input_tokens=1000, output_tokens=200)
    assert fixed.decode_context_tokens == pytest.approx(1100)
    p = Problem("llama-3.1-8b", ("h100-sxm",), 1000, 200, 1.0, 1.0, 0.1)
    assert p.decode_context == 1100 and replace(p, decode_context_tokens=1500).decode_context == 1500
