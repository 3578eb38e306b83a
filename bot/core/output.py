"""What the bot writes: files, whole or not at all, and progress lines."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from bot.core.childenv import neutralise

# Line breaks, other control characters (NUL, ESC: terminal escapes) and bidi overrides in a
# string from a PR; printed as `\u....` so a file name cannot start a line of its own (where
# `::add-mask::` or `::stop-commands::` would be a workflow command) or hide what it says.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def log_safe(text: object) -> str:
    """``text`` fit for one line of a CI log: controls escaped, workflow commands inert."""
    return neutralise(_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", str(text)))


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_progress(message: str) -> None:
    """Progress of long work (evals, benchmarks), on stderr so stdout stays the command's result."""
    print(f"[promotion-bot] {message}", file=sys.stderr, flush=True)
