"""The exception tree. Every error the bot raises on purpose is one of these.

PromotionBotError            base; exit code 2 ("could not judge")
├── InputError               bad input from the repo or the command line: names file, field and fix
│   ├── UnknownKeyError      a key the mapping does not take (``key``, and the ``allowed`` ones)
│   └── UnsafePathError      a path that would leave the repository
└── ExternalError            a service the bot talks to failed (git, GitHub, Prometheus, a model server)

A check that raises or times out becomes an `error` result (bot.gate.runner), never a `pass`.
Anything else escaping is a bug; the CLI still reports it as exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass


class PromotionBotError(Exception):
    exit_code = 2


class InputError(PromotionBotError):
    """Bad input. ``file`` and ``field`` locate it; ``fix`` tells the user what to do."""

    def __init__(self, file: str, field: str, message: str, fix: str = "") -> None:
        self.file = file
        self.field = field
        self.message = message
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        text = f"{where}: {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text

    def as_record(self) -> "ErrorRecord":
        message = self.message + (f" (fix: {self.fix})" if self.fix else "")
        return ErrorRecord(file=self.file, field=self.field, message=message)


class UnknownKeyError(InputError):
    """A mapping holds ``key``, which is none of ``allowed``: callers that know more keys (a gate
    entry's own, beside its check's options) suggest from those."""

    def __init__(self, file: str, field: str, message: str, fix: str, *, key: str, allowed: frozenset[str]) -> None:
        super().__init__(file, field, message, fix)
        self.key = key
        self.allowed = allowed


class UnsafePathError(InputError):
    pass


class ExternalError(PromotionBotError):
    """A service the bot depends on failed; ``service`` names it."""

    def __init__(self, service: str, message: str) -> None:
        self.service = service
        self.message = message
        super().__init__(f"{service}: {message}")


@dataclass(frozen=True)
class ErrorRecord:
    """One entry of the JSON report's ``errors`` list."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        """`file: field: message`, or `file: message` for a whole file (the CLI's and the log's line)."""
        return f"{self.file}: {self.field}: {self.message}" if self.field else f"{self.file}: {self.message}"

    def to_json(self) -> dict:
        return {"file": self.file, "field": self.field, "message": self.message}
