"""Pluggable checks, keyed by the name `promotion.yaml` uses (`check: perplexity`).

A check is a `CheckDefinition` subclass registered with `@register`. It parses its own options
(so policy errors surface before anything runs) and turns a `CheckContext` into a frozen
`CheckResult`. Side effects beyond its own artifacts (comments, statuses) belong to the caller.

To add a check: write a module in this package and decorate the class with `@register`; every
module here is imported when the registry is first used.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any, ClassVar, Mapping, Sequence

from bot.core.fields import Loc, reject_unknown
from bot.verdicts.results import CheckResult


def builtin_modules() -> list[str]:
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


class CheckDefinition:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    # Inline checks are cheap and run in the bot's own process; the others run in a child
    # process that is killed when it exceeds its timeout.
    inline: ClassVar[bool] = True
    default_timeout_s: ClassVar[float] = 120.0
    default_runs_on: ClassVar[tuple[str, ...] | None] = None
    shardable: ClassVar[bool] = False
    needs_baseline: ClassVar[bool] = False
    option_keys: ClassVar[frozenset[str]] = frozenset()
    # Runs before the other model checks of its gate whatever the policy's order (`servable`: a
    # variant the engine refuses costs no evaluation time).
    runs_first: ClassVar[bool] = False
    # Reads the environment before its own whole, at the base (`promotion-order`): planning reads it
    # whole first, so the check and the plan share one parse of its files.
    reads_previous_environment: ClassVar[bool] = False

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> Any:
        # The entry's own keys never reach here; bot.policy.model names a mistyped one (`timout:`).
        reject_unknown(raw, set(self.option_keys), loc)
        return dict(raw)

    def run(self, ctx, options: Any) -> CheckResult:  # ctx: bot.checks.context.CheckContext
        raise NotImplementedError

    # Sharded checks run `run_shard` once per shard and `merge` the partial results.
    def run_shard(self, ctx, options: Any, shard: int, count: int) -> CheckResult:
        raise NotImplementedError

    def merge(self, ctx, options: Any, parts: list[CheckResult]) -> CheckResult:
        raise NotImplementedError


class Registry:
    def __init__(self) -> None:
        self._checks: dict[str, CheckDefinition] = {}
        self._loaded = False

    def register(self, cls: type[CheckDefinition]) -> type[CheckDefinition]:
        if cls.name in self._checks:
            raise ValueError(f"check {cls.name!r} is registered twice")
        self._checks[cls.name] = cls()
        return cls

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in builtin_modules():
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._checks)

    def run_order(self, gate: Sequence[Any]) -> list[tuple[int, Any]]:
        """``(position, entry)`` of a gate's entries (each with `.name`) in the order they run: the
        policy's, except that checks that run first move ahead of the first model check (inline
        checks before it stay where they are: they cost nothing)."""
        entries = list(enumerate(gate))
        first = [e for e in entries if self.get(e[1].name).runs_first]
        rest = [e for e in entries if not self.get(e[1].name).runs_first]
        at = next((i for i, (_, spec) in enumerate(rest) if not self.get(spec.name).inline), len(rest))
        return rest[:at] + first + rest[at:]

    def get(self, name: str, loc: Loc | None = None) -> CheckDefinition:
        self._load()
        if name in self._checks:
            return self._checks[name]
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known checks: {', '.join(self.names())}"
        if loc is None:
            loc = Loc("promotion.yaml", "check")
        raise loc.error(f"unknown check {name!r}", hint)


registry = Registry()
register = registry.register
