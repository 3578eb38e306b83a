"""Markdown rendering of reports and model cards with Jinja2.

Every value printed by a template is escaped for Markdown unless it is `Markup` (already
rendered by us): variant names, manifest fields and model outputs come from PRs, possibly
forks, and must not forge the verdict table, inject HTML or @-mention people.
Templates ship in `bot/render/templates/`; a GitOps repo may override any of them by file name in
the folder its policy names (`templates: templates`), read from the base revision and rendered
in Jinja2's sandbox.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from typing import Any, Mapping
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from bot.render import charts
from bot.verdicts import evidence
from bot.zoo.variants import ZOO_ROOT

COMMENT_MARKER = "<!-- promotion-bot:comment -->"
GITHUB_COMMENT_LIMIT = 65536

_MD_PUNCT = re.compile(r"([\\`*_\[\]|~#])")


def md_escape(value: Any) -> str:
    """Plain text safe inside Markdown text and table cells: no HTML, no mentions, no table breaks."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    text = text.replace("@", "@\u200b")  # a zero-width space stops @-mentions and team pings
    text = re.sub(r"[\r\n\t]+", " ", text)
    return text


# Characters a link destination may keep as they are; everything else is percent-encoded, so no
# value can close the `(...)` of a Markdown link, start a title, or carry a tag or a space.
_HREF_SAFE = "/:?#[]@!$&*+,;=%-._~"
_HREF_SCHEME = re.compile(r"(?:https?://|\.\./|\./)", re.ASCII)


def safe_href(url: Any) -> Markup | None:
    """``url`` as a Markdown link destination, or None when it is not http(s) or a relative path."""
    text = str(url)
    if not _HREF_SCHEME.match(text) or any(ch.isspace() or ord(ch) < 32 for ch in text):
        return None
    return Markup(quote(text, safe=_HREF_SAFE))


def truncate(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_block(value: Any, lang: str = "", limit: int = 2000) -> Markup:
    """A fenced block whose fence is longer than any backtick run inside, so content cannot close it."""
    text = truncate(value, limit)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return Markup(f"{fence}{lang}\n{text}\n{fence}")


def inline_code(value: Any) -> Markup:
    text = re.sub(r"[\r\n]+", " ", str(value))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markup(f"{fence}{pad}{md_escape_for_code(text)}{pad}{fence}")


def md_escape_for_code(text: str) -> str:
    # Inside inline code Markdown is inert, but a `|` still splits a GitHub table row.
    return text.replace("|", "\\|")


def fmt_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def fmt_delta(value: Any, relative: bool = False) -> str:
    if value is None:
        return "–"
    if relative:
        return f"{value * 100:+.2f}%"
    return f"{value:+.4g}"


def fmt_bytes(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


VERDICT_ICON = {"pass": "✅", "fail": "❌", "error": "⚠️", "skipped": "⏭️", "inconclusive": "🟡"}


def interval_text(ev) -> str:
    """A row's evidence, short: `+1.2% [−0.4%, +2.8%]` (how much worse, and its interval)."""
    if ev is None:
        return "–"
    i = ev.interval
    return f"{evidence.amount(i.estimate, ev.unit)} [{evidence.amount(i.low, ev.unit)}, {evidence.amount(i.high, ev.unit)}]"


def promotion_chart(promotion) -> Markup:
    """The picture of every interval of a promotion's checks against its limit (bot.render.charts), or nothing."""
    return Markup(charts.interval_chart((f"{c.name}: {r.label}", r.evidence, r.verdict)
                                        for c in promotion.checks for r in c.rows if r.evidence))


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return md_escape(value)


def make_environment(overrides: Mapping[str, str] | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if overrides:
        loaders.append(jinja2.DictLoader(dict(overrides)))
    builtin = jinja2.PackageLoader("bot.render", "templates")
    # `builtin/<name>` always reaches the shipped template, so an override can extend it.
    loaders += [builtin, jinja2.PrefixLoader({"builtin": builtin})]
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update({
        "code": inline_code, "codeblock": code_block, "num": fmt_number, "delta": fmt_delta,
        "bytes": fmt_bytes, "truncate_text": truncate, "md": md_escape,
        "icon": lambda v: VERDICT_ICON.get(v, "❔"), "trusted": Markup,
        "interval": interval_text, "chart": promotion_chart,
        "tojson_pretty": lambda v: json.dumps(v, indent=2, sort_keys=True, default=str),
    })
    return env


# A Markdown link to a relative destination; the `]` is preceded by an even number of backslashes,
# so it closes a link and is not an escaped bracket of a PR string.
_RELATIVE_LINK = re.compile(r"(?<!\\)((?:\\\\)*)\]\((\.\.?/[^)\s]*)\)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def absolute_links(markdown: str, folder: str, files_url: str | None) -> str:
    """Relative links of a card (relative to its variant's ``folder``) made URLs of the repository's
    files, ``files_url`` (`https://github.com/<owner>/<repo>/blob/<sha>`), so they resolve in a PR
    comment; kept as they are without one (a local run, whose files sit beside the card). Fenced
    code is left alone, and a link that would climb out of the repository stays relative."""
    if not files_url:
        return markdown

    def absolute(m: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(folder, m[2]))
        if target == ".." or target.startswith("../") or target.startswith("/"):
            return m[0]
        slash = "/" if m[2].endswith("/") else ""
        return f"{m[1]}]({files_url.rstrip('/')}/{target}{slash})"

    out, fence = [], None
    for line in markdown.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if fence is None and opened:
            fence = opened[1]
        elif fence is not None and opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence) \
                and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None:
            line = _RELATIVE_LINK.sub(absolute, line)
        out.append(line)
    return "".join(out)


def render_comment(report, *, overrides: Mapping[str, str] | None = None, report_url: str | None = None,
                   title: str = "promotion-bot", files_url: str | None = None) -> str:
    """The PR comment. ``files_url``: the repository's files at the judged commit on GitHub, for links."""
    from bot.render.card import card_of  # the card module imports this one

    cards = []
    for p in report.promotions:
        card = card_of(p) if p.card is not None and p.to_variant else None
        if card is not None and files_url:
            card = {**card, "markdown": absolute_links(card["markdown"], f"{ZOO_ROOT}/{p.to_variant}", files_url)}
        cards.append(card)
    env = make_environment(overrides)
    body = env.get_template("comment.md.j2").render(report=report, data=report.to_json(), cards=cards,
                                                     report_url=report_url, title=title)
    # The sticky comment is found again by this marker: a body without it would be duplicated.
    if COMMENT_MARKER not in body:
        body = COMMENT_MARKER + "\n" + body
    return body


def fit_comment(body: str, report_url: str | None, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Cut a comment to GitHub's limit with a pointer to the full report, never reject it."""
    if len(body) <= limit:
        return body
    pointer = f"\n\n…\n\n**This comment was cut at GitHub's {limit:,}-character limit.** "
    pointer += f"[Full report]({report_url})" if report_url else "The full report is in the workflow's artifacts."
    cut = body[: limit - len(pointer) - 10]
    # Close an open code fence so the pointer renders as text.
    if cut.count("```") % 2:
        cut += "\n```"
    out = cut + pointer
    if COMMENT_MARKER not in out:
        out = COMMENT_MARKER + "\n" + out[len(COMMENT_MARKER) + 1:]
    return out
