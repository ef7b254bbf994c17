"""Pictures: time breakdowns across systems and latency-throughput curves (matplotlib, lazily)."""

from __future__ import annotations

import os
from typing import Any

from siliconsim.errors import InputError
from siliconsim.report.files import resolve_target, write_atomic

COLORS = {"compute_s": "#4C72B0", "memory_s": "#DD8452", "network_s": "#55A868", "overhead_s": "#8172B3"}
LABELS = {"compute_s": "compute", "memory_s": "memory", "network_s": "network", "overhead_s": "overhead"}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'siliconsim[plot]'") from None
    return plt


def plot_format(path: str) -> str:
    """The image format for ``path`` from its extension; raise InputError (before anything is
    computed or printed) when matplotlib is missing, the extension is not an image format it
    writes, or the path is not a writable regular file."""
    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in formats:
        raise InputError(f"--plot {path}: expected a file ending in one of .{', .'.join(sorted(formats))}, "
                         f"got {('.' + ext) if ext else 'no extension'}")
    resolve_target(path)
    return ext


def _save(fig: Any, path: str) -> None:
    """Write the figure safely (regular files only, temp file in the same folder, fsync, rename)."""
    fmt = plot_format(path)
    write_atomic(path, lambda fh: fig.savefig(fh, format=fmt, dpi=130, bbox_inches="tight"))


def bar_stacks(labels: list[str], breakdowns: list[dict[str, float]]) -> tuple[list[str], dict[str, list[float]]]:
    """Labels sorted by their bar's total (ms per output token, shortest first) and, per cause
    that is non-zero somewhere, its milliseconds in that order."""
    order = sorted(range(len(labels)), key=lambda i: sum(breakdowns[i].get(k, 0.0) for k in COLORS))
    stacks = {k: [breakdowns[i].get(k, 0.0) * 1e3 for i in order] for k in COLORS}
    return [labels[i] for i in order], {k: v for k, v in stacks.items() if any(x > 0 for x in v)}


def breakdown_bars(labels: list[str], breakdowns: list[dict[str, float]], title: str, path: str) -> None:
    """Stacked horizontal bars: milliseconds per output token by cause, one bar per system,
    shortest bar on top (the bars are ordered by the quantity they plot). Causes that are zero
    for every system get no legend entry."""
    plt = _pyplot()
    labels, stacks = bar_stacks(labels, breakdowns)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    left = [0.0] * len(labels)
    for key, vals in stacks.items():
        ax.barh(labels, vals, left=left, color=COLORS[key], label=LABELS[key])
        left = [a + v for a, v in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("ms per output token (decode step at the compared batch)")
    ax.set_title(title, fontsize=10)
    if stacks:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(stacks), fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)


def latency_throughput(per_user_tok_s: Any, aggregate_tok_s: Any, batches: Any, title: str, path: str) -> None:
    """Tokens/s per user against aggregate tokens/s as the batch grows (the serving trade-off)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(aggregate_tok_s, per_user_tok_s, marker="o", markersize=3)
    step = max(1, len(batches) // 8)
    for i, (b, x, y) in enumerate(zip(batches, aggregate_tok_s, per_user_tok_s)):
        if i % step == 0 or i == len(batches) - 1:
            ax.annotate(f"b={int(b)}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("aggregate output tokens/s")
    ax.set_ylabel("output tokens/s per user")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    _save(fig, path)
    plt.close(fig)


TRAIN_COLORS = {"compute_s": "#4C72B0", "memory_s": "#DD8452", "tp_comm_s": "#55A868", "dp_comm_s": "#C44E52",
                "cp_comm_s": "#64B5CD", "ep_comm_s": "#937860", "pp_bubble_s": "#DA8BC3", "optimizer_s": "#8C8C8C",
                "overhead_s": "#8172B3", "weight_stream_s": "#CCB974", "grad_reduce_s": "#E377C2",
                "step_bubble_s": "#7F7F7F"}


def training_breakdown(labels: list[str], breakdowns: list[dict[str, float]], title: str, path: str) -> None:
    """Stacked horizontal bars: seconds of one optimizer step by cause, one bar per layout or
    system; causes that are zero everywhere get no legend entry."""
    from siliconsim.report.training import BREAKDOWN_LABELS

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.8))
    left = [0.0] * len(labels)
    for key, color in TRAIN_COLORS.items():
        vals = [b.get(key, 0.0) for b in breakdowns]
        if not any(vals):
            continue
        ax.barh(labels, vals, left=left, color=color, label=BREAKDOWN_LABELS[key])
        left = [a + v for a, v in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("seconds per optimizer step")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)


def pareto_fronts(fronts: dict[str, list[tuple[float, float]]], best: tuple[float, float] | None, title: str,
                  path: str) -> None:
    """Output tok/s per chip against tok/s per user, one front per hardware; the best starred."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for hw, pts in sorted(fronts.items()):
        xs, ys = zip(*sorted(pts)) if pts else ((), ())
        ax.plot(xs, ys, marker="o", ms=3, lw=1.2, label=hw)
    if best is not None:
        ax.plot([best[0]], [best[1]], marker="*", ms=14, color="black", ls="", label="best (meets the SLO)")
    ax.set_xlabel("output tokens/s per user")
    ax.set_ylabel("output tokens/s per chip")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    try:
        _save(fig, path)
    finally:
        plt.close(fig)


def interactivity_curves(records: list[dict[str, Any]], title: str, path: str) -> None:
    """Output tokens/s per chip (y) against tokens/s per user (x), one line per system, with the
    validation error band shaded; points labelled with their concurrency."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    systems = list(dict.fromkeys(r["hardware"] for r in records if r.get("feasible")))
    for hw in systems:
        pts = [r for r in records if r["hardware"] == hw and r.get("feasible")]
        x = [r["output_tok_s_per_user"] for r in pts]
        y = [r["output_tok_s_per_chip"] for r in pts]
        line, = ax.plot(x, y, marker="o", markersize=3, label=f"{hw} ({pts[0]['layout']})")
        ax.fill_between(x, [r["output_tok_s_per_chip_range"]["low"] for r in pts],
                        [r["output_tok_s_per_chip_range"]["high"] for r in pts], color=line.get_color(), alpha=0.12)
        for r in pts[:: max(1, len(pts) // 5)]:
            ax.annotate(f"N={r['concurrency']}", (r["output_tok_s_per_user"], r["output_tok_s_per_chip"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output tokens/s per user (1 / TPOT)")
    ax.set_ylabel("output tokens/s per chip")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)
