"""Predicted against measured serving curves of the development concurrency sweeps.

Usage: `make accuracy` regenerates them (through scripts/update_readme_accuracy.py, which also
writes the docs page's table), or `.venv/bin/python scripts/concurrency_figures.py [--img DIR]`
for the figures alone.

The rows of `validation/data/inferencex-dev.csv` go through `validation.runner.run_suite`, the
path `siliconsim validate` scores them on. A *sweep* is one setup (model, hardware, precision,
engine, layout, input/output lengths) measured at several concurrencies. Each figure holds one
(model, hardware, precision): one panel per (engine, input/output lengths), one colour per layout;
measured points are filled, the predictions at the same concurrencies hollow (a dotted line joins
each pair), and the line is the predicted curve over the InferenceX grid (1, 2, 4, ... 256)
between the sweep's smallest and largest measured concurrency. Grid points are predicted by
`validation.runner.run_case` on the sweep's own row with only the concurrency changed, so the
curve is exactly what `validate` would score there.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from siliconsim.cli.curve import DEFAULT_CONCURRENCY
from siliconsim.serving.closed_loop import RANGE_RATIO
from siliconsim.validation.runner import RowResult, run_case, run_suite
from siliconsim.validation.suite import DATA, SUITES, Case, load_cases

ROOT = Path(__file__).resolve().parents[1]
IMG_DIR = ROOT / "docs" / "img" / "serving-under-load"
THROUGHPUT, PER_USER, TTFT = "aggregate_output_tok_s", "output_tok_s_per_user", "ttft_median_ms"


def sweep_results(path: Path = DATA / SUITES["concurrency"]) -> list[RowResult]:
    """Every row of the serving-sweep suite, predicted as `siliconsim validate` predicts it."""
    return run_suite(load_cases(path))


def setup_key(case: Case) -> tuple[Any, ...]:
    """What stays fixed along one sweep (everything but the concurrency and the metric)."""
    return (case.model, case.hardware, case.weight_dtype, case.engine, case.chips, case.tp, case.ep,
            bool(case.dp_attention), case.prefill_chips, case.decode_chips, case.speculative,
            case.input_tokens, case.output_tokens)


def _tokens(mean: float | None) -> str:
    """Nominal length of a benchmark whose lengths are uniform in [RANGE_RATIO, 1] x nominal."""
    if mean is None:
        return "?"
    nominal = round(mean / ((1.0 + RANGE_RATIO) / 2.0))
    return f"{nominal / 1024:g}k" if nominal % 1024 == 0 else str(nominal)


def shape_label(case: Case) -> str:
    """``1k/8k``: nominal input/output lengths."""
    return f"{_tokens(case.input_tokens)}/{_tokens(case.output_tokens)}"


def layout_label(case: Case) -> str:
    """``TP8 EP8 DP-attn, 8 GPUs``; disaggregated runs as ``xP+yD``; planner's choice when unpublished."""
    if case.prefill_chips or case.decode_chips:
        text = f"{case.prefill_chips or '?'}P+{case.decode_chips or '?'}D"
    elif case.tp is None:
        text = "planner's layout"
    else:
        text = f"TP{case.tp} EP{case.ep or 1}" + (" DP-attn" if case.dp_attention else "")
    text += f", {case.chips} GPUs" if case.chips else ""
    return text + (f", {case.speculative}" if case.is_speculative else "")


Point = tuple[int, str]  # (concurrency, source): one measured run; its metric rows share the source


def sweeps(results: Sequence[RowResult]) -> dict[tuple[Any, ...], dict[Point, dict[str, RowResult]]]:
    """Setup -> (concurrency, source) -> metric -> row result, in suite order (two runs of one
    setup at one concurrency stay two points)."""
    out: dict[tuple[Any, ...], dict[Point, dict[str, RowResult]]] = {}
    for r in results:
        point = (r.case.concurrency or 1, r.case.source_url)
        out.setdefault(setup_key(r.case), {}).setdefault(point, {})[r.case.metric] = r
    return out


def _per_chip(case: Case, tok_s: float) -> float:
    return tok_s / case.chips if case.chips else float("nan")


def predicted_curve(case: Case, concurrencies: Sequence[int]) -> list[tuple[int, float, float]]:
    """(concurrency, tok/s per user, output tok/s per GPU) predicted for ``case``'s setup at each
    concurrency it can run; the same prediction `validate` makes for a row there."""
    out = []
    for n in concurrencies:
        thr = run_case(replace(case, concurrency=n, metric=THROUGHPUT))
        user = run_case(replace(case, concurrency=n, metric=PER_USER))
        if thr.covered and user.covered:
            out.append((n, user.predicted, _per_chip(case, thr.predicted)))
    return out


def _points(by_n: dict[Point, dict[str, RowResult]]) -> list[tuple[int, float, float, float, float]]:
    """(concurrency, measured per user, measured per GPU, predicted per user, predicted per GPU) of
    the points with both rows; predictions NaN where the row was not predicted."""
    out = []
    for (n, _), rows in sorted(by_n.items()):
        thr, user = rows.get(THROUGHPUT), rows.get(PER_USER)
        if thr is None or user is None:
            continue
        out.append((n, user.case.value, _per_chip(thr.case, thr.case.value), user.predicted,
                    _per_chip(thr.case, thr.predicted)))
    return out


def figure_groups(results: Sequence[RowResult]) -> dict[tuple[str, str, str], dict[tuple[Any, ...], dict]]:
    """(model, hardware, precision) -> its sweeps."""
    out: dict[tuple[str, str, str], dict[tuple[Any, ...], dict]] = {}
    for key, by_n in sweeps(results).items():
        out.setdefault(key[:3], {})[key] = by_n
    return out


def figure_name(model: str, hardware: str, dtype: str) -> str:
    return f"{model}-{hardware}-{dtype}.png"


def figure_links(results: Sequence[RowResult], img_prefix: str) -> list[str]:
    """Markdown image links to the figures ``draw`` writes for ``results``."""
    return [f"![{m} on {hw}, {dt}]({img_prefix}/{figure_name(m, hw, dt)})" for m, hw, dt in
            sorted(figure_groups(results))]


def _case(by_n: dict[Point, dict[str, RowResult]]) -> Case:
    return next(iter(next(iter(by_n.values())).values())).case


def draw(results: Sequence[RowResult], folder: Path = IMG_DIR) -> list[Path]:
    """One PNG per (model, hardware, precision) in ``folder``; PNGs left there from an earlier
    run that this one does not write are removed (the folder holds these figures only)."""
    from matplotlib.lines import Line2D

    from siliconsim.report.plots import _pyplot, _save

    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (model, hw, dtype), group in sorted(figure_groups(results).items()):
        cases = {key: _case(by_n) for key, by_n in group.items()}
        engines = sorted({c.engine or "?" for c in cases.values()})
        lengths = {shape_label(c): (c.input_tokens or 0, c.output_tokens or 0) for c in cases.values()}
        shapes = sorted(lengths, key=lengths.__getitem__)
        layouts = sorted({layout_label(c) for c in cases.values()})
        colors = {lab: plt.get_cmap("tab10")(i % 10) for i, lab in enumerate(layouts)}
        height_in = 3.5 * len(engines) + 1.0
        fig, axes = plt.subplots(len(engines), len(shapes), figsize=(4.3 * len(shapes), height_in), squeeze=False)
        for key, by_n in sorted(group.items(), key=lambda kv: layout_label(cases[kv[0]])):
            case = cases[key]
            ax = axes[engines.index(case.engine or "?")][shapes.index(shape_label(case))]
            color = colors[layout_label(case)]
            pts = _points(by_n)
            if not pts:  # no throughput and per-user pair to place
                continue
            lo, hi = min(p[0] for p in pts), max(p[0] for p in pts)
            grid = sorted({n for n in DEFAULT_CONCURRENCY if lo <= n <= hi} | {p[0] for p in pts})
            curve = predicted_curve(case, grid)
            if curve:
                ax.plot([c[1] for c in curve], [c[2] for c in curve], "-", color=color, lw=1.2)
            for n, mu, mc, pu, pc in pts:
                ax.plot([mu], [mc], "o", color=color, ms=5)
                ax.annotate(str(n), (mu, mc), fontsize=6, xytext=(3, 3), textcoords="offset points")
                if not (math.isnan(pu) or math.isnan(pc)):
                    ax.plot([pu], [pc], "o", mfc="none", mec=color, ms=5)
                    ax.plot([mu, pu], [mc, pc], ":", color=color, lw=0.8)
        for i, engine in enumerate(engines):
            for j, shape in enumerate(shapes):
                ax = axes[i][j]
                ax.set_title(f"{engine} · ISL/OSL {shape}", fontsize=9)
                if ax.has_data():
                    _log_axes(ax)
                ax.grid(True, which="both", alpha=0.25)
                ax.tick_params(labelsize=7)
                if i == len(engines) - 1:
                    ax.set_xlabel("output tok/s per user (1000 / median TPOT)", fontsize=8)
                if j == 0:
                    ax.set_ylabel("output tok/s per GPU", fontsize=8)
        handles = [Line2D([], [], color=colors[lab], lw=1.2, label=lab) for lab in layouts]
        handles += [Line2D([], [], ls="", marker="o", color="0.3", label="measured (InferenceX; label: concurrency)"),
                    Line2D([], [], ls="-", marker="o", mfc="none", color="0.3", label="predicted (closed loop)")]
        ncol = min(4, len(handles))
        fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
        fig.suptitle(f"{model} on {hw} ({dtype}): measured vs predicted, closed-loop concurrency sweeps", fontsize=10)
        legend_in = 0.1 + 0.17 * -(-len(handles) // ncol)  # rows of legend entries
        fig.tight_layout(rect=(0, legend_in / height_in, 1, 1 - 0.3 / height_in))
        path = folder / figure_name(model, hw, dtype)
        try:
            _save(fig, str(path))
        finally:
            plt.close(fig)
        written.append(path)
    for stale in set(folder.glob("*.png")) - set(written):
        stale.unlink()
    return written


def _log_axes(ax: Any) -> None:
    """Log axes ticked at 1, 2, 5 x 10^k with plain numbers (ranges here span one or two decades)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


METRICS = (THROUGHPUT, PER_USER, "tpot_median_ms", TTFT)


def _signed(rows: Sequence[RowResult]) -> str:
    errs = [r.error_pct for r in rows if r.covered and not r.exceeds_bound]
    return f"{round(statistics.median(errs)):+d}%" if errs else "–"


def signed_by_metric(results: Sequence[RowResult]) -> str:
    """``aggregate_output_tok_s -18%, ...``: the median signed error of each metric's rows."""
    return ", ".join(f"`{m}` {_signed([r for r in results if r.case.metric == m])}" for m in METRICS)


def sweep_table(results: Sequence[RowResult], img_prefix: str = "img/serving-under-load") -> list[str]:
    """Markdown: one line per sweep, the median signed error per metric over its points (positive:
    predicted above measured) and the figure it is drawn in."""
    lines = ["| model · hardware · precision | engine | layout | ISL/OSL | concurrencies | "
             + " | ".join(f"`{m}`" for m in METRICS) + " | not predicted |", "|" + "---|" * (len(METRICS) + 6)]
    for key, by_n in sorted(sweeps(results).items(), key=lambda kv: (kv[0][:4], shape_label(_case(kv[1])),
                                                                       layout_label(_case(kv[1])))):
        case = _case(by_n)
        rows = [r for per in by_n.values() for r in per.values()]
        cells = [_signed([r for r in rows if r.case.metric == m]) for m in METRICS]
        missing = sorted({r.reason for r in rows if not r.covered or r.exceeds_bound})
        fig = (f"[{case.model} · {case.hardware} · {case.weight_dtype}]"
               f"({img_prefix}/{figure_name(case.model, case.hardware, case.weight_dtype)})")
        lines.append(f"| {fig} | {case.engine or '?'} | {layout_label(case)} | {shape_label(case)} | "
                     f"{', '.join(str(n) for n, _ in sorted(by_n))} | " + " | ".join(cells) +
                     f" | {'; '.join(missing) or '–'} |")
    return lines


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--img", default=str(IMG_DIR), help=f"folder for the PNGs (default {IMG_DIR.relative_to(ROOT)})")
    for f in draw(sweep_results(), Path(p.parse_args().img)):
        print(f)
