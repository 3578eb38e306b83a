"""The demo's pages: each comment as GitHub shows it, and the index a newcomer opens first.

Comments are rendered with markdown-it in GitHub's dialect where it matters for review (tables,
strikethrough, raw `<details>`, `> [!WARNING]` alerts) inside a column as wide as GitHub's comment
body (`COMMENT_COLUMN_PX`), so what overflows here overflows there. The index puts each step's
verdict and what it shows first, its comment and card one click away, and the zoo comparison as a
chart; nothing on it is wider than the window.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

# The body of a comment in a pull request's conversation on github.com at a 1280 px window.
COMMENT_COLUMN_PX = 760

_ALERT = re.compile(r"<blockquote>\s*<p>\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", re.S)

CSS = f"""
:root{{color-scheme:light}}
body{{font:14px/1.5 -apple-system,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif;color:#1f2328;
     max-width:1100px;margin:24px auto;padding:0 16px}}
.comment{{width:{COMMENT_COLUMN_PX}px;max-width:100%;box-sizing:border-box;border:1px solid #d1d9e0;
         border-radius:6px;padding:16px;overflow-wrap:break-word}}
table{{border-collapse:collapse;display:block;max-width:100%;overflow:auto}}
td,th{{border:1px solid #d1d9e0;padding:6px 13px;vertical-align:top}}
pre{{background:#f6f8fa;padding:16px;overflow:auto;font:11.9px/1.45 ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,
    "Liberation Mono",monospace;border-radius:6px}}
code{{background:#eff1f3;border-radius:6px;padding:.2em .4em;font:85% ui-monospace,SFMono-Regular,Menlo,monospace}}
pre code{{background:none;padding:0;font:inherit}}
.markdown-alert{{border-left:.25em solid;padding:0 1em;margin:1em 0}}
.markdown-alert-title{{font-weight:600}}
.markdown-alert-note{{border-color:#0969da}}.markdown-alert-warning{{border-color:#9a6700}}
.markdown-alert-caution{{border-color:#cf222e}}.markdown-alert-tip{{border-color:#1a7f37}}
.markdown-alert-important{{border-color:#8250df}}
.steps td:nth-child(4){{white-space:nowrap}} .shows{{color:#59636e}}
.badge{{border-radius:2em;padding:0 .6em;font-weight:600}}
.pass{{background:#dafbe1}}.fail{{background:#ffebe9}}.inconclusive{{background:#fff8c5}}.error{{background:#ffebe9}}
svg text{{font:12px -apple-system,"Segoe UI",sans-serif}}
"""


def github_html(markdown: str) -> str:
    """A comment's Markdown as HTML the way GitHub renders what review depends on."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    return _ALERT.sub(lambda m: f'<blockquote class="markdown-alert markdown-alert-{m[1].lower()}">'
                                f'<p class="markdown-alert-title">{m[1].title()}</p><p>', body)


def page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")


def comment_page(title: str, markdown: str) -> str:
    """One comment, in a column as wide as GitHub's."""
    return page(title, f"<h1>{html.escape(title)}</h1><div class='comment'>{github_html(markdown)}</div>")


def index_page(title: str, intro: str, steps: list[dict], zoo: dict | None) -> str:
    """``steps``: {number, title, expected, verdict, as_expected, shows, seconds, files: {label: path}}."""
    rows = []
    for s in steps:
        links = " · ".join(f'<a href="{html.escape(rel)}">{html.escape(label)}</a>' for label, rel in s["files"].items())
        mark = "✅" if s["as_expected"] else "❌"
        rows.append(
            f"<tr><td>{s['number']}</td><td>{html.escape(s['title'])}<div class='shows'>{html.escape(s['shows'])}</div></td>"
            f"<td><span class='badge {html.escape(s['verdict'])}'>{html.escape(s['verdict'])}</span> {mark}"
            f"<div class='shows'>expected {html.escape(s['expected'])}</div></td>"
            f"<td>{s['seconds']:.0f} s</td><td>{links}</td></tr>")
    table = ("<table class='steps'><tr><th>#</th><th>Step, and what it shows</th><th>Verdict</th><th>Time</th>"
             "<th>Open</th></tr>" + "".join(rows) + "</table>")
    chart = ""
    if zoo:
        chart = ("<h2>The zoo compared</h2><p>From the records every gate left in <code>refs/notes/promotion-bot</code>: "
                 "how much worse each variant is than the baseline, with the interval its gate judged "
                 "(<a href='zoo-compare.html'>table</a>, <a href='zoo-compare.json'>JSON</a>).</p>" + zoo_chart(zoo))
    return page(title, f"<h1>{html.escape(title)}</h1><p>{intro}</p>{table}{chart}")


def zoo_chart(table: dict, width: int = 900) -> str:
    """An SVG of each variant's worse-by intervals, one panel per metric that has them."""
    panels = []
    for metric in table.get("metrics", []):
        cells = [(v, c["change"]) for v, c in (metric.get("cells") or {}).items() if c and c.get("change")]
        if not cells:
            continue
        unit = cells[0][1]["unit"]
        scale = 100 if unit == "relative" else 1
        lows = [c["low"] * scale for _, c in cells if c["low"] is not None]
        highs = [c["high"] * scale for _, c in cells if c["high"] is not None]
        lo, hi = min([0.0, *lows]), max([0.0, *highs])
        span = (hi - lo) or 1.0
        left, right, row_h = 260, width - 140, 22

        def x(v: float) -> float:
            return left + (min(max(v, lo), hi) - lo) / span * (right - left)

        label = f"{metric.get('check', '')}: {metric.get('metric', '')}"
        parts = [f"<text x='0' y='14' font-weight='600'>{html.escape(label)}</text>",
                 f"<line x1='{x(0):.1f}' y1='20' x2='{x(0):.1f}' y2='{24 + row_h * len(cells)}' stroke='#8c959f'/>"]
        for k, (variant, c) in enumerate(cells):
            y = 34 + k * row_h
            low = lo if c["low"] is None else c["low"] * scale
            high = hi if c["high"] is None else c["high"] * scale
            est = c["estimate"] * scale
            parts += [f"<text x='0' y='{y + 4}'>{html.escape(variant)}</text>",
                      f"<line x1='{x(low):.1f}' y1='{y}' x2='{x(high):.1f}' y2='{y}' stroke='#0969da' stroke-width='3'/>",
                      f"<circle cx='{x(est):.1f}' cy='{y}' r='4' fill='#1f2328'/>",
                      f"<text x='{right + 10}' y='{y + 4}'>{est:+.1f}{'%' if unit == 'relative' else ' pt'}</text>"]
        height = 40 + row_h * len(cells)
        panels.append(f"<svg viewBox='0 0 {width} {height}' width='100%' role='img'>{''.join(parts)}</svg>")
    note = "<p class='shows'>Right of the grey line is worse than the baseline.</p>" if panels else ""
    return "".join(panels) + note


def load_zoo(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
