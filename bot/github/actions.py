"""What a step hands back to the workflow: outputs, the job summary, and log annotations."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path


def _escape_annotation(text: str) -> str:
    # The runner reads `::error::` up to the end of the line; these escapes keep it one line.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(level: str, message: str) -> None:
    """An `::error::` / `::warning::` / `::notice::` line the run page shows on the job."""
    print(f"::{level}::{_escape_annotation(message)}", flush=True)


def set_outputs(path: Path | None, values: dict[str, str]) -> None:
    """Append step outputs in the multi-line-safe `name<<DELIMITER` form."""
    if path is None:
        return
    with Path(path).open("a", encoding="utf-8") as fh:
        for name, value in values.items():
            delimiter = f"promotion_bot_{uuid.uuid4().hex}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path | None, markdown: str) -> None:
    if path is None or not markdown.strip():
        return
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")


def log(message: str) -> None:
    print(f"[promotion-bot] {message}", file=sys.stderr, flush=True)
