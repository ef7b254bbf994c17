"""Document builders: a command's JSON record -> a neutral Document (tables and figures, units).

``BUILDERS`` maps a command name to ``build(record, argv) -> Document``. The record is exactly
what ``siliconsim <command> --format json`` writes, so a builder needs nothing but that JSON.

Adding a command: write ``build_<command>(record, argv)`` here returning a Document and add it
to ``BUILDERS``; ``siliconsim report <command> ...`` then works without other changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siliconsim import __version__
from siliconsim.report.document import Column, Document, Figure, Table, series

BREAKDOWN = (("compute_s", "compute"), ("memory_s", "memory"), ("network_s", "network"), ("overhead_s", "overhead"))
BYTES_PER_WEIGHT = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5}
ERROR_BAR_NOTE = ("Ranges and error bands: 10th-90th percentile (or median) of the leave-one-group-out validation "
                  "error for the execution family and metric (`siliconsim validate`); 'extrapolated' when the chip or "
                  "model is not in the suite.")


def _ms(v: Any) -> float | None:
    return None if v is None else v * 1e3


def _inference_rows(records: list[dict[str, Any]]) -> Table:
    cols = (Column("system"), Column("what-if"), Column("chips"), Column("plan"), Column("TTFT", "ms"),
            Column("TPOT", "ms"), Column("tok/s per user", "tok/s"), Column("aggregate", "tok/s"),
            Column("power", "kW"), Column("cost in", "$/Mtok"), Column("cost out", "$/Mtok"), Column("reason"))
    rows = tuple((r["hardware"], "; ".join(r.get("what_if") or []), r["chips"], r["parallel"] or "infeasible",
                  _ms(r["ttft_s"]), _ms(r["tpot_s"]), r["output_tok_s_per_user"], r["aggregate_output_tok_s"],
                  None if r["power_w"] is None else r["power_w"] / 1e3, r.get("usd_per_mtok_input"),
                  r.get("usd_per_mtok_output", r.get("usd_per_million_tokens")), r["reason"])
                 for r in records)
    return Table("systems", cols, rows)


def _breakdown_figure(records: list[dict[str, Any]], key: str, title: str, unit_note: str) -> Figure:
    ok = [r for r in records if r["feasible"] and r.get(key)]
    labels = [f"{r['hardware']} ({r['chips']}×)" for r in ok]
    segs = tuple(series(name, labels, [r[key][k] * 1e3 for r in ok]) for k, name in BREAKDOWN)
    return Figure("stacked_bars", title, f"milliseconds ({unit_note})", "system", segs)


def _roofline(records: list[dict[str, Any]]) -> Figure:
    """Attainable FLOP/s = min(peak, bandwidth × intensity) per chip; the marker is the decode
    step's weight-streaming intensity, 2 FLOP per weight per sequence / bytes per weight."""
    ok = [r for r in records if r["feasible"] and r.get("roofline")]
    xs = [10 ** (i / 8) for i in range(-8, 41)]  # 0.1 .. 1e5 FLOP/byte
    lines, marks = [], []
    for r in ok:
        roof = r["roofline"]
        lines.append(series(r["hardware"], xs, [min(roof["peak_flop_per_s"], roof["bandwidth_bytes_per_s"] * x) for x in xs]))
        intensity = 2.0 * r["batch"] / BYTES_PER_WEIGHT.get(r["weights"] or "bf16", 2.0)
        marks.append(series(f"{r['hardware']} decode, batch {r['batch']:g}", [intensity],
                            [min(roof["peak_flop_per_s"], roof["bandwidth_bytes_per_s"] * intensity)]))
    return Figure("lines", "roofline per chip (dense peak at the plan's matmul type; weight memory bandwidth)",
                  "arithmetic intensity (FLOP/byte)", "attainable (FLOP/s)", tuple(lines), markers=tuple(marks),
                  caption="Markers: decode at the request's batch, intensity 2·batch / bytes per weight "
                          "(weight streaming; KV-cache and activation traffic ignored).")


def _rows_of(record: Any) -> list[dict[str, Any]]:
    """The per-system records of a compare (``results``) or estimate (one object) document."""
    if isinstance(record, list):
        return record
    if "results" in record:
        return list(record["results"])
    return [record]


def _warnings(record: Any) -> tuple[str, ...]:
    return tuple(f"warning: {w}" for w in record.get("warnings", ())) if isinstance(record, dict) else ()


def build_compare(record: Any, argv: tuple[str, ...]) -> Document:
    records = _rows_of(record)
    first = records[0] if records else {}
    title = (f"{first.get('model', '?')} · batch {first.get('batch', '?')} · {first.get('input_tokens', '?')} in / "
             f"{first.get('output_tokens', '?')} out")
    figures = (_breakdown_figure(records, "breakdown", "decode step time by cause (per output token)", "per output token"),
               _breakdown_figure(records, "prefill_breakdown", "prefill time by cause (TTFT)", "per request"),
               _roofline(records))
    assumptions = ("Times are predictions of the closed-form model at each system's smallest feasible size.",
                   "Power, energy and cost at the loaded operating point (compare) or at the request's batch (estimate).",
                   ERROR_BAR_NOTE) + _warnings(record)
    return Document(title, "compare", argv, __version__, (_inference_rows(records),), figures, assumptions, record)


TRAIN_BREAKDOWN = (("compute_s", "compute"), ("memory_s", "memory"), ("tp_comm_s", "TP comm"), ("dp_comm_s", "DP comm"),
                   ("cp_comm_s", "CP comm"), ("ep_comm_s", "EP comm"), ("pp_bubble_s", "pipeline bubble"),
                   ("optimizer_s", "optimizer"), ("overhead_s", "overhead"))


def build_train(record: Any, argv: tuple[str, ...]) -> Document:
    shown = ([record["best"]] if record.get("best") else []) + list(record.get("alternatives", []))
    cols = (Column("layout"), Column("step time", "s"), Column("tokens/s", "tok/s"), Column("MFU", "%"),
            Column("memory per chip", "GB"), Column("time to train", "days"), Column("energy", "MWh"),
            Column("cost", "$M"))
    rows = tuple((r["layout"]["describe"], r["step_time_s"], r["tokens_per_s"], 100 * r["mfu"],
                  r["memory_per_chip_bytes"].get("used_bytes", 0) / 1e9,
                  None if r.get("time_to_train_s") is None else r["time_to_train_s"] / 86400,
                  None if r.get("energy_j") is None else r["energy_j"] / 3.6e9,
                  None if r.get("cost_usd") is None else r["cost_usd"] / 1e6) for r in shown)
    labels = [r["layout"]["describe"] for r in shown]
    segs = tuple(series(name, labels, [r["breakdown"].get(k, 0.0) for r in shown]) for k, name in TRAIN_BREAKDOWN)
    fig = Figure("stacked_bars", "training step time by cause", "seconds per optimizer step", "layout", segs)
    best = shown[0] if shown else {"model": "?", "hardware": "?", "chips": "?"}
    title = f"train {best['model']} on {best['chips']}× {best['hardware']}"
    tables = (Table(f"layouts ({record.get('layouts_tried', 0)} tried; fastest first)", cols, rows),)
    infeasible = record.get("infeasible") or []
    if infeasible:
        tables += (Table("not feasible", (Column("layout"), Column("reason")),
                         tuple((r["layout"]["describe"], r["reason"]) for r in infeasible)),)
    assumptions = ("Step time from the operator list, timed by the chip's family; MFU counts model FLOPs only.",
                   ERROR_BAR_NOTE) + _warnings(record)
    return Document(title, "train", argv, __version__, tables, (fig,), assumptions, record)


def _scatter(rows: list[dict[str, Any]], title: str, band_pct: float | None) -> Figure:
    ok = [r for r in rows if r["status"] == "predicted" and r["measured"] and r["predicted"]]
    metrics = sorted({r["metric"] for r in ok})
    pts = tuple(series(m, [r["measured"] for r in ok if r["metric"] == m], [r["predicted"] for r in ok if r["metric"] == m])
                for m in metrics)
    bands = (band_pct / 100,) if band_pct else ()
    return Figure("scatter", title, "measured (metric's unit, see legend)", "predicted (same unit)", pts, bands=bands,
                  caption="Diagonal: prediction = measurement; shaded: ± the headline median |error|.")


def _groups(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    cols = (Column("group"), Column("rows"), Column("median |error|", "%"), Column("mean |error|", "%"),
            Column("median error", "%"))
    return Table(title, cols, tuple((k, g["n"], g["median_ape_pct"], g["mean_ape_pct"], g["median_error_pct"])
                                    for k, g in groups.items()))


def _suite_tables(part: dict[str, Any], label: str, keys: tuple[str, ...]) -> tuple[Table, ...]:
    cols = (Column("id"), Column("hardware"), Column("model"), Column("metric"), Column("predicted"),
            Column("measured"), Column("error", "%"), Column("status"))
    rows = tuple((r["id"], r["hardware"], r["model"], r["metric"], r["predicted"], r["measured"], r["error_pct"],
                  r["status"]) for r in part["rows"])
    return (Table(f"{label} rows", cols, rows),) + tuple(_groups(f"{label} {k.replace('_', ' ')}", part["summary"][k])
                                                         for k in keys if k in part["summary"])


def build_validate(record: Any, argv: tuple[str, ...]) -> Document:
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    assumptions: tuple[str, ...] = ()
    parts = [("inference", record, ("by_vendor", "by_metric", "by_scenario"))] if "rows" in record else []
    if "training" in record:
        parts.append(("training", record["training"], ("by_vendor", "by_metric", "by_framework")))
    for label, part, keys in parts:
        s = part["summary"]
        tables += _suite_tables(part, label, keys)
        figures += (_scatter(part["rows"], f"{label}: predicted vs measured (median |error| "
                                           f"{s['median_ape_pct']:.1f}% over {s['predicted']} rows)", s["median_ape_pct"]),)
        assumptions += tuple(s.get("assumptions", ()))
    return Document("validation against published measurements", "validate", argv, __version__, tables, figures,
                    assumptions, record)


def _plan_rows(plans: list[dict[str, Any]]) -> tuple[tuple[Any, ...], ...]:
    return tuple((p["hardware"], p["layout"], p["dtype"], p["mode"], p["batch"], p["replicas"], p["chips"],
                  _ms(p["p99_ttft_s"]), _ms(p["p99_tpot_s"]), p["tok_s_per_user"], p["usd_per_mtok_output"],
                  p["power_w"] / 1e3) for p in plans)


def _front(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The two-objective front of the planner's (many-objective) Pareto set: no other plan is both
    more interactive (tok/s per user) and cheaper per output token. Sorted by interactivity."""
    out, cheapest = [], float("inf")
    for p in sorted(plans, key=lambda p: (-p["tok_s_per_user"], p["usd_per_mtok_output"])):
        if p["usd_per_mtok_output"] < cheapest:
            out.append(p)
            cheapest = p["usd_per_mtok_output"]
    return out[::-1]


def build_plan(record: Any, argv: tuple[str, ...]) -> Document:
    """``siliconsim plan``: the best plan and alternatives, and each system's Pareto front of
    interactivity (tok/s per user) against cost ($ per million output tokens)."""
    cols = (Column("hardware"), Column("layout"), Column("dtype"), Column("mode"), Column("batch"), Column("replicas"),
            Column("chips"), Column("p99 TTFT", "ms"), Column("p99 TPOT", "ms"), Column("tok/s per user", "tok/s"),
            Column("cost out", "$/Mtok"), Column("power", "kW"))
    shown = ([record["best"]] if record.get("best") else []) + list(record.get("alternatives", []))
    fronts = []
    for hw in sorted({p["hardware"] for p in record.get("pareto", [])}):
        pts = _front([p for p in record["pareto"] if p["hardware"] == hw])
        fronts.append(series(hw, [p["tok_s_per_user"] for p in pts], [p["usd_per_mtok_output"] for p in pts]))
    best = record.get("best")
    marks = (series(f"best ({record.get('objective', '?')}): {best['hardware']} {best['layout']}", [best["tok_s_per_user"]],
                    [best["usd_per_mtok_output"]]),) if best else ()
    fig = Figure("lines", "Pareto front per system: interactivity against cost (plans no other beats on both)", "output tok/s per user (tok/s)",
                 "cost of output tokens ($/Mtok)", tuple(fronts), markers=marks)
    prob = record.get("problem", {})
    title = f"plan {prob.get('model', '?')} at {prob.get('rate_per_s', '?')} requests/s"
    return Document(title, "plan", argv, __version__, (Table("best plan and alternatives", cols, _plan_rows(shown)),),
                    (fig,), tuple(record.get("assumptions", ())) + _warnings(record), record)


def build_curve(record: Any, argv: tuple[str, ...]) -> Document:
    """Throughput per chip against interactivity over a concurrency sweep, one line per system."""
    rows = [r for r in record.get("results", []) if r.get("feasible")]
    systems = list(dict.fromkeys(r["hardware"] for r in rows))
    lines = tuple(series(f"{hw} ({next(r['layout'] for r in rows if r['hardware'] == hw)})",
                         [r["output_tok_s_per_user"] for r in rows if r["hardware"] == hw],
                         [r["output_tok_s_per_chip"] for r in rows if r["hardware"] == hw]) for hw in systems)
    fig = Figure("lines", "output tokens/s per chip against tokens/s per user", "output tokens/s per user (1/TPOT)",
                 "output tokens/s per chip", lines)
    cols = (Column("system"), Column("concurrency"), Column("tok/s per user", "tok/s"), Column("low", "tok/s"),
            Column("high", "tok/s"), Column("tok/s per chip", "tok/s"), Column("low", "tok/s"), Column("high", "tok/s"),
            Column("TTFT", "ms"), Column("TPOT", "ms"))
    table_rows = tuple((r["hardware"], r["concurrency"], r["output_tok_s_per_user"],
                        r["output_tok_s_per_user_range"]["low"], r["output_tok_s_per_user_range"]["high"],
                        r["output_tok_s_per_chip"], r["output_tok_s_per_chip_range"]["low"],
                        r["output_tok_s_per_chip_range"]["high"], _ms(r["ttft_s"]), _ms(r["tpot_s"])) for r in rows)
    skipped = tuple((r["hardware"], r.get("concurrency", "–"), r["reason"]) for r in record.get("results", [])
                    if not r.get("feasible"))
    tables = (Table("concurrency sweep", cols, table_rows),)
    if skipped:
        tables += (Table("not feasible", (Column("system"), Column("concurrency"), Column("reason")), skipped),)
    model = rows[0]["model"] if rows else "?"
    title = f"curve {model} · {record.get('input_tokens')} in / {record.get('output_tokens')} out"
    assumptions = ("Closed loop: N requests in flight on one replica, each a prefill then its decode steps; "
                   "tok/s per user = 1/TPOT.", ERROR_BAR_NOTE) + _warnings(record)
    return Document(title, "curve", argv, __version__, tables, (fig,), assumptions, record)


BUILDERS: dict[str, Callable[[Any, tuple[str, ...]], Document]] = {
    "curve": build_curve,
    "plan": build_plan,
    "compare": build_compare,
    "estimate": build_compare,
    "train": build_train,
    "validate": build_validate,
}
