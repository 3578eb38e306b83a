"""Baseline results, cached so a rerun or a second candidate evaluates only the candidate.

Key: the baseline's weights digest (Git tree id of its weights folder, or its immutable URI and
revision), the selected tasks' digest (Git ids of YAMLs and data at the base revision), the
lm-eval version and the options that change numbers (limit, few-shot, batch size...). Entries
live under ``<cache>/lm-eval/`` (keep it with actions/cache). A damaged entry is ignored, removed
and recomputed.

An entry holds the per-document results of the first ``documents`` documents of each task (None:
all lm-eval ran under the key): a sequential gate that stopped early caches what it evaluated, and
a later candidate that needs more documents evaluates only the missing ones and grows the entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.core.digests import digest_of
from bot.core.output import write_atomic
from bot.lmeval.scores import parse_scores

SCHEMA = 3  # 2: per-document values for the paired comparison; 3: `documents`, entries that grow


@dataclass(frozen=True)
class Cached:
    raw: dict
    documents: int | None  # the first this many documents of each task; None: all

    def covers(self, documents: int | None) -> bool:
        return self.documents is None or (documents is not None and documents <= self.documents)


def cache_key(*, weights: str, tasks_digest: str, lm_eval_version: str, run_fingerprint: str) -> str:
    return digest_of("lm-eval-baseline", str(SCHEMA), weights, tasks_digest, lm_eval_version, run_fingerprint)


class BaselineCache:
    def __init__(self, root: Path, progress: Callable[[str], None] = lambda _: None) -> None:
        self.root = Path(root)
        self.progress = progress

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> Cached | None:
        path = self.path(key)
        try:
            entry = json.loads(path.read_text())
            if entry.get("schema") != SCHEMA or entry.get("key") != key:
                raise ValueError("schema or key mismatch")
            raw = entry["raw"]
            if not any(parse_scores(raw).values()):
                raise ValueError("no scores")
            if not isinstance(raw.get("samples"), dict):
                raise ValueError("no per-document values")
            documents = entry["documents"]
            if documents is not None and (not isinstance(documents, int) or documents < 1):
                raise ValueError(f"documents {documents!r} is not a document count")
            return Cached(raw, documents)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.progress(f"lm-eval cache entry {path.name} is unreadable ({exc}); evaluating the baseline again")
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, raw: dict, *, documents: int | None, describe: dict) -> None:
        write_atomic(self.path(key), json.dumps({"schema": SCHEMA, "key": key, "describe": describe, "raw": raw,
                                                 "documents": documents}, indent=1, sort_keys=True) + "\n")
