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
            files_url: str | None = None) -> str:
    """The PR comment, fitted to GitHub's limit. ``templates``: the repo's overrides (`Judged.templates`);
    ``files_url`` (`https://github.com/<owner>/<repo>/blob/<sha>`): links to the repository's files point
    there; without it (a local run) they stay relative."""
    from bot.render.markdown import fit_comment  # Jinja2: imported by a step that publishes a comment

    return fit_comment(render_comment(report, overrides=templates, report_url=report_url, files_url=files_url),
                       report_url)


def render_comment(report: Report, **options) -> str:
    from bot.render.markdown import render_comment as render

    return render(report, **options)


def files_url(repo_url: str | None, sha: str) -> str | None:
    return f"{repo_url.rstrip('/')}/blob/{sha}" if repo_url else None


def write_outputs(report: Report, comment_markdown: str | None, *, json_path: Path | None,
                  comment_path: Path | None) -> None:
    if json_path:
        write_atomic(Path(json_path), json.dumps(report.to_json(), indent=2) + "\n")
    if comment_path and comment_markdown is not None:
        write_atomic(Path(comment_path), comment_markdown)
