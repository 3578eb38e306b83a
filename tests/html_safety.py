"""What a rendered comment may contain once Markdown becomes HTML: only the tags Markdown itself
makes and the bot's own few, no live @-mention, no comment but the sticky marker."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt

# Tags CommonMark + tables produce, plus what the bot's templates write themselves.
MARKDOWN_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "em", "strong", "code", "pre", "blockquote",
                 "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "s", "del"}
BOT_TAGS = {"details", "summary", "sub"}
BOT_COMMENTS = {"promotion-bot:comment"}
LIVE_MENTION = re.compile(r"(?<![\w\u200b])@[A-Za-z0-9]")


def to_html(markdown: str) -> str:
    """As GitHub would see it before its sanitiser: raw HTML passes through."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)


# Where the bot's own links go: a zoo variant beside the card, a Hugging Face model, the run's report.
BOT_LINKS = re.compile(r"(\.\./\.\./[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/|https://huggingface\.co/[A-Za-z0-9._/-]+"
                       r"|https://ci\.example/[A-Za-z0-9._/-]*)")


class _Audit(HTMLParser):
    def __init__(self, links: re.Pattern) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.problems: list[str] = []
        self.code_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag not in MARKDOWN_TAGS | BOT_TAGS:
            self.problems.append(f"raw tag <{tag}>")
        allowed_attrs = {"a": {"href"}, "details": {"open"}, "code": {"class"}, "td": {"style"}, "th": {"style"}}
        for name, value in attrs:
            if name not in allowed_attrs.get(tag, set()):
                self.problems.append(f"attribute {name}={value!r} on <{tag}>")
            if tag == "a" and name == "href" and not self.links.fullmatch(value or ""):
                self.problems.append(f"link to {value!r}")
        if tag in ("code", "pre"):
            self.code_depth += 1

    def handle_endtag(self, tag):
        if tag in ("code", "pre"):
            self.code_depth -= 1

    def handle_data(self, data):
        if self.code_depth == 0 and LIVE_MENTION.search(data):
            self.problems.append(f"live mention in {data.strip()[:80]!r}")

    def handle_comment(self, data):
        if data.strip() not in BOT_COMMENTS:
            self.problems.append(f"HTML comment {data[:60]!r}")


def html_problems(markdown: str, links: re.Pattern = BOT_LINKS) -> list[str]:
    """Everything in ``markdown``'s HTML a PR string could have put there; [] when it is clean."""
    html = to_html(markdown)
    audit = _Audit(links)
    audit.feed(html)
    audit.close()
    problems = list(audit.problems)
    opened, closed = html.count("<!--"), html.count("-->")
    if opened != closed:
        problems.append(f"{opened - closed} unclosed HTML comment(s)")
    if audit.rawdata:
        problems.append(f"unparsed HTML left over: {audit.rawdata[:80]!r}")
    return problems
