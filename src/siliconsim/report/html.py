"""HTML back end: a Document -> ONE self-contained HTML file that works offline.

Figures are drawn by matplotlib into inline SVG (text kept as text); styles and the one small
script are inline; the JSON behind the report sits in ``<script type="application/json"
id="siliconsim-record">``. Nothing references the network: no external script, style, font or
image. matplotlib is the ``plot`` extra; without it the report still has its tables and says
the figures are missing.
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import Any

from siliconsim.report.document import Document, Figure, Table
from siliconsim.report.render import fmt, to_json

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:13px} th,td{padding:3px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0} figcaption,.caption{color:#555;font-size:12px} .meta{color:#666;font-size:12px}
svg{max-width:100%;height:auto}
"""

# Fills the summary line from the embedded record: proof that the data ships with the page.
SCRIPT = """
(function(){
  var el=document.getElementById('siliconsim-record');
  var rec=JSON.parse(el.textContent);
  var rows=Array.isArray(rec)?rec:(rec&&(rec.results||rec.rows||rec.alternatives))||null;
  var what=rows?(rows.length+' rows'):(Object.keys(rec||{}).length+' top-level fields');
  var schema=rec&&rec.schema_version!==undefined?', schema_version '+rec.schema_version:'';
  document.getElementById('record-summary').textContent=
    'Embedded JSON record: '+what+schema+' (script#siliconsim-record).';
  document.body.dataset.state='ready';
})();
"""


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "siliconsim", "font.size": 9})
    return plt


def _stacked(ax: Any, fig: Figure) -> None:
    labels = list(fig.series[0].x) if fig.series else []
    left = [0.0] * len(labels)
    for i, s in enumerate(fig.series):
        ax.barh(labels, s.y, left=left, color=PALETTE[i % len(PALETTE)], label=s.name)
        left = [a + v for a, v in zip(left, s.y)]
    ax.invert_yaxis()
    ax.set_xlabel(fig.x_label)


def _scatter(ax: Any, fig: Figure) -> None:
    vals = [v for s in fig.series for v in (*s.x, *s.y) if v and v > 0]
    if not vals:
        return
    lo, hi = min(vals) / 1.5, max(vals) * 1.5
    line = [lo, hi]
    ax.plot(line, line, color="#444", lw=0.8, label="prediction = measurement")
    for b in fig.bands:
        ax.fill_between(line, [x * (1 - b) for x in line], [x * (1 + b) for x in line], color="#999", alpha=0.2,
                        label=f"±{b:.0%}")
    for i, s in enumerate(fig.series):
        ax.scatter(s.x, s.y, s=14, color=PALETTE[i % len(PALETTE)], label=s.name, zorder=3)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=fig.x_label, ylabel=fig.y_label)


def _lines(ax: Any, fig: Figure) -> None:
    for i, s in enumerate(fig.series):
        ax.plot(s.x, s.y, color=PALETTE[i % len(PALETTE)], label=s.name)
    for i, m in enumerate(fig.markers):
        ax.scatter(m.x, m.y, color=PALETTE[i % len(PALETTE)], marker="o", edgecolor="black", zorder=3, label=m.name)
    ax.set(xscale="log", yscale="log", xlabel=fig.x_label, ylabel=fig.y_label)


DRAW = {"stacked_bars": _stacked, "scatter": _scatter, "lines": _lines}


def figure_svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element ('' without matplotlib)."""
    plt = _pyplot()
    if plt is None:
        return ""
    rows = len(fig.series[0].x) if fig.kind == "stacked_bars" and fig.series else 0
    f, ax = plt.subplots(figsize=(8.5, max(3.2, 0.4 * rows + 1.6) if rows else 5.0))
    try:
        DRAW[fig.kind](ax, fig)
        ax.set_title(fig.title, loc="left", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        if fig.series or fig.markers:
            ax.legend(fontsize=8, loc="best", frameon=False)
        buf = io.StringIO()
        f.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(f)
    text = buf.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)  # RDF credits only


def _cell(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"<td>{html.escape('' if v is None else str(v))}</td>"
    return f'<td class="n">{html.escape(fmt(v) if math.isfinite(v) else "–")}</td>'


def table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c.label)}</th>" for c in t.columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in t.rows)
    cap = f'<p class="caption">{html.escape(t.caption)}</p>' if t.caption else ""
    return f"<h2>{html.escape(t.title)}</h2>\n<table>\n<tr>{head}</tr>\n{body}\n</table>{cap}"


def embedded_json(record: Any) -> str:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    text = to_json(record)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(doc: Document) -> str:
    figs = []
    for fig in doc.figures:
        svg = figure_svg(fig)
        body = svg or '<p class="caption">(figure not drawn: install matplotlib, pip install "siliconsim[plot]")</p>'
        cap = f"<figcaption>{html.escape(fig.caption)}</figcaption>" if fig.caption else ""
        figs.append(f'<figure class="chart">{body}{cap}</figure>')
    assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in doc.assumptions)
    command = html.escape(" ".join(("siliconsim", doc.command, *doc.argv)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(doc.title)} · siliconsim</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(doc.title)}</h1>
<p class="meta">siliconsim {html.escape(doc.version)} · <code>{command}</code></p>
{''.join(table_html(t) for t in doc.tables)}
<h2>figures</h2>
{''.join(figs)}
<h2>assumptions</h2>
<ul>{assumptions}</ul>
<p class="meta" id="record-summary">Embedded JSON record: script#siliconsim-record.</p>
<script type="application/json" id="siliconsim-record">{embedded_json(doc.record)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
