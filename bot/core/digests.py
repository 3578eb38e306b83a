"""Content digests: cache keys and identities that change whenever what they name does."""

from __future__ import annotations

import hashlib


def digest_of(*parts: str) -> str:
    """A digest of ``parts`` in order (a separator keeps ("ab", "c") apart from ("a", "bc"))."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]
