"""A judged run made public, once: its comment rendered from the finished report, its files written.

Everything before this (plan, jobs, assembly, recording) works on data; the comment and the model
cards in it are rendered here, after recording, exactly once per run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from bot.core.output import write_atomic
from bot.verdicts.results import Report


def comment(report: Report, *, templates: Mapping[str, str] | None = None, report_url: str | None = None,
            files_url: str | None = None, pr_url: str | None = None) -> str:
    """The PR comment, fitted to GitHub's limit. ``templates``: the repo's overrides (`Judged.templates`);
    ``files_url`` (`https://github.com/<owner>/<repo>/blob/<sha>`): links to the repository's files point
    there, ``pr_url`` links each manifest to its diff; without them (a local run) paths stay as they are."""
    from bot.render.markdown import fit_comment  # Jinja2: imported by a step that publishes a comment

    return fit_comment(render_comment(report, overrides=templates, report_url=report_url, files_url=files_url,
                                      pr_url=pr_url), report_url)


def full_cards(report: Report, *, files_url: str | None = None) -> str:
    """Each promotion's whole model card (the comment carries a summary and links here): for the
    run's summary page, with the card's relative links made URLs of the repository's files."""
    from bot.render.card import card_of
    from bot.render.markdown import absolute_links, md_escape

    parts = []
    for p in report.promotions:
        if p.card is None or not p.to_variant:
            continue
        card = card_of(p)
        body = absolute_links(card["markdown"], f"models/{p.to_variant}", files_url)
        parts.append(f"<details><summary>Model card: {md_escape(p.to_variant)} ({md_escape(p.environment)})</summary>\n\n"
                     f"```yaml\n{card['metadata'].rstrip()}\n```\n\n{body.rstrip()}\n\n</details>\n")
    return "\n".join(parts)


def render_comment(report: Report, **options) -> str:
    from bot.render.comment import render_comment as render

    return render(report, **options)


def files_url(repo_url: str | None, sha: str) -> str | None:
    return f"{repo_url.rstrip('/')}/blob/{sha}" if repo_url else None


def write_outputs(report: Report, comment_markdown: str | None, *, json_path: Path | None,
                  comment_path: Path | None) -> None:
    if json_path:
        write_atomic(Path(json_path), json.dumps(report.to_json(), indent=2) + "\n")
    if comment_path and comment_markdown is not None:
        write_atomic(Path(comment_path), comment_markdown)
