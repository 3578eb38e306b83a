"""The gate's results as the zoo remembers them: one record per judged commit, environment and
variant, kept as a Git note on that commit (`bot.vcs.notes`, docs/model-zoo.md).

A note is JSON lines, one record a line, sorted, so `git notes merge -s cat_sort_uniq` of two
runs' notes on one commit stays a valid note; readers keep the newest record per key. A line that
is not a record this version reads (malformed, a future `record` version) is skipped with a
warning: one bad line must not take every variant's history with it.

A record is bound to what was judged: its key holds the branch the PR targeted (the same head
opened against another branch is another record, never an overwrite), and it carries the root
tree of the merge commit judged. A result counts as the variant's (`zoo`, the card, probes' gate
rates) only once that tree reached that branch (`landed`); until then it is a PR's result. A record
holds each check as the report has it (`CheckResult.to_json`: verdict, detail, every metric row
with its interval), so a metric a check starts reporting is recorded, compared and carded
without a change here. Findings are kept short (title and tag): model output stays in the
comment and the CI artifacts, not in the repository.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

from bot.vcs.notes import NOTES_REF
from bot.verdicts.results import CheckResult, Report

RECORD_VERSION = 1
FINDING_KEYS = ("title", "tag")
FINDING_CHARS = 200


@dataclass(frozen=True)
class Record:
    commit: str  # the note's key: the PR head the statuses went on (or the judged head locally)
    judged: str  # the commit judged: the PR as merged into base
    base: str
    environment: str
    manifest: str
    variant: str
    from_variant: str | None
    baseline: str | None
    verdict: str
    checks: tuple[CheckResult, ...]
    recorded_at: str  # ISO 8601, UTC
    pr: int | None = None
    bot_version: str | None = None
    lm_eval_version: str | None = None
    branch: str | None = None  # the branch the PR targeted (None in records written before it was kept)
    tree: str | None = None  # the root tree of the judged merge commit
    landed: bool | None = None  # read-side: the judged tree reached ``branch`` (None: not looked up)

    @property
    def key(self) -> tuple[str | None, str, str, str]:
        return (self.branch, self.environment, self.manifest, self.variant)

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict:
        return {"record": RECORD_VERSION, "commit": self.commit, "judged": self.judged, "base": self.base,
                "environment": self.environment, "manifest": self.manifest, "variant": self.variant,
                "from_variant": self.from_variant, "baseline": self.baseline, "verdict": self.verdict,
                "pr": self.pr, "recorded_at": self.recorded_at, "bot_version": self.bot_version,
                "lm_eval_version": self.lm_eval_version, "branch": self.branch, "tree": self.tree,
                "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Record":
        if d.get("record") != RECORD_VERSION:
            raise ValueError(f"record version {d.get('record')!r} is not {RECORD_VERSION}")
        return cls(commit=d["commit"], judged=d["judged"], base=d["base"], environment=d["environment"],
                   manifest=d["manifest"], variant=d["variant"], from_variant=d.get("from_variant"),
                   baseline=d.get("baseline"), verdict=d["verdict"], pr=d.get("pr"), recorded_at=d["recorded_at"],
                   bot_version=d.get("bot_version"), lm_eval_version=d.get("lm_eval_version"),
                   branch=d.get("branch"), tree=d.get("tree"),
                   checks=tuple(CheckResult.from_json(c) for c in d["checks"]))


def _short_findings(check: CheckResult) -> CheckResult:
    findings = tuple({k: str(f[k])[:FINDING_CHARS] for k in FINDING_KEYS if k in f} for f in check.findings)
    return replace(check, findings=tuple(f for f in findings if f), artifacts=())


def records_for(report: Report, *, commit: str, recorded_at: str, pr: int | None = None,
                baselines: Mapping[tuple[str, str, str], str | None] | None = None,
                bot_version: str | None = None, lm_eval_version: str | None = None,
                branch: str | None = None, tree: str | None = None) -> list[Record]:
    """Pure: one record per promotion the report judged (a removal or an unreadable promotion has
    no variant, hence nothing to remember). ``baselines``: (environment, manifest, variant) -> baseline."""
    out = []
    for p in report.promotions:
        if not p.to_variant:
            continue
        key = (p.environment, p.manifest, p.to_variant)
        out.append(Record(commit=commit, judged=report.head, base=report.base, environment=p.environment,
                          manifest=p.manifest, variant=p.to_variant, from_variant=p.from_variant,
                          baseline=(baselines or {}).get(key), verdict=p.verdict,
                          checks=tuple(_short_findings(c) for c in p.checks), recorded_at=recorded_at, pr=pr,
                          bot_version=bot_version, lm_eval_version=lm_eval_version, branch=branch, tree=tree))
    return out


def parse_note(text: str, commit: str, warn: Callable[[str], None] | None = None) -> list[Record]:
    """A note's records; a line that is not one (malformed, or a record version this bot does not
    read) is skipped, with a warning naming the note, the line and how to look at it."""
    records, _ = _parse_lines(text, commit, warn)
    return records


def _parse_lines(text: str, commit: str, warn) -> tuple[list[Record], list[str]]:
    records, others = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            others.append(line)
            (warn or _stderr)(f"{NOTES_REF} of {commit[:12]}, line {number}: skipped, not a record this version reads "
                              f"({str(exc)[:200]}); inspect it with `git notes --ref=promotion-bot show {commit[:12]}`")
    return records, others


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def note_text(existing: str | None, new: Iterable[Record], commit: str) -> str:
    """The note after a run: its records replace those of the same key, the others stay (lines this
    version cannot read too: a newer bot's records are not ours to drop)."""
    new = list(new)
    keys = {r.key for r in new}
    old, unread = _parse_lines(existing or "", commit, lambda message: None)
    kept = [r for r in old if r.key not in keys]
    lines = sorted([json.dumps(r.to_json(), sort_keys=True, separators=(",", ":")) for r in latest(kept + new)]
                   + [line for line in unread if line.strip()])
    return "".join(line + "\n" for line in lines)


def latest(records: Iterable[Record]) -> list[Record]:
    """The newest record per (commit, key): a merged note may hold two runs of one commit."""
    best: dict[tuple, Record] = {}
    for r in records:
        k = (r.commit, *r.key)
        if k not in best or r.recorded_at > best[k].recorded_at:
            best[k] = r
    return sorted(best.values(), key=lambda r: r.recorded_at)


def all_records(notes: Mapping[str, str], warn: Callable[[str], None] | None = None) -> list[Record]:
    """Every record of every note (commit -> text), oldest first."""
    return latest(r for commit, text in notes.items() for r in parse_note(text, commit, warn))


def with_landing(records: Iterable[Record], trees_on: Callable[[str], frozenset[str]]) -> list[Record]:
    """Each record marked `landed` when the tree it judged is on the branch it was judged against
    (``trees_on(branch)``: the root trees of that branch's commits)."""
    cache: dict[str, frozenset[str]] = {}
    out = []
    for r in records:
        if r.branch and r.tree:
            if r.branch not in cache:
                cache[r.branch] = trees_on(r.branch)
            out.append(replace(r, landed=r.tree in cache[r.branch]))
        else:
            out.append(replace(r, landed=False))  # written before records were bound to a branch and tree
    return out


def landed_only(records: Iterable[Record]) -> list[Record]:
    """The results that count as the variant's: a PR that never merged says nothing about the zoo."""
    return [r for r in records if r.landed is not False]


def of_variant(records: Iterable[Record], variant: str, environment: str | None = None) -> list[Record]:
    return [r for r in records if r.variant == variant and (environment is None or r.environment == environment)]


def latest_per_environment(records: Iterable[Record], variant: str) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for r in of_variant(records, variant):
        out[r.environment] = r  # oldest first: the last one wins
    return out


@dataclass(frozen=True)
class RecordedCheck:
    check: CheckResult
    record: Record


def latest_checks(records: Iterable[Record], variant: str) -> list[RecordedCheck]:
    """Each check's newest recorded result for ``variant``, whichever environment's gate ran it:
    stage 1 in test and stage 2 in staging together make the variant's card."""
    out: dict[str, RecordedCheck] = {}
    for r in of_variant(records, variant):
        for c in r.checks:
            # A run that could not measure (a timeout, a crash) does not hide what an earlier one measured.
            if c.verdict != "skipped" and not (c.verdict == "error" and not c.rows):
                out[c.name] = RecordedCheck(c, r)
    return list(out.values())


def gate_pass_rate(records: Iterable[Record], variant: str, tag: str, environment: str = "prod") -> tuple[float, Record] | None:
    """The app-flows pass rate of ``tag`` the gate measured for ``variant``: the ``environment``'s
    own gate when it ran app-flows, else the newest gate that did (prod is often gated on order only)."""
    candidates = [r for r in of_variant(records, variant) if (c := r.check("app-flows")) and _tag_rate(c, tag) is not None]
    own = [r for r in candidates if r.environment == environment]
    chosen = (own or candidates)[-1:] if candidates else []
    if not chosen:
        return None
    return _tag_rate(chosen[0].check("app-flows"), tag), chosen[0]


def _tag_rate(check: CheckResult, tag: str) -> float | None:
    for row in check.rows:
        if row.label.split(" (")[0] == tag and isinstance(row.candidate, (int, float)):
            return float(row.candidate)
    return None
