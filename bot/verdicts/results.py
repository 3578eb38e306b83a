"""Frozen results of a gate run, and the JSON report contract users script against.

Kept apart from rendering: `bot.render.markdown` turns these into Markdown, `Report.to_json` into the
contract below (pinned by tests/test_report_contract.py, against tests/golden/).

    {"schema_version": 2, "verdict": "pass|fail|inconclusive|error", "base", "head", "notes": [...],
     "promotions": [{"environment", "manifest", "object", "application", "change",
                     "from_variant", "to_variant", "verdict", "notes", "errors",
                     "checks": [{"name", "verdict", "candidate", "baseline", "threshold", "detail",
                                 "rows": [{"label", "candidate", "baseline", "delta", "verdict",
                                           "evidence": {"interval": {"estimate", "low", "high", "level",
                                                                     "method", "n", "sd"},
                                                        "limit", "unit", "settle_n", "observations"}}],
                                 "notes", "findings", "artifacts", "wall_time_s"}],
                     "card": {"ref", "base_model", "is_quantized", "tags", "description", "quantization",
                              "calibration", "recipe", "recipe_text", "size_bytes", "known_issues", "baseline",
                              "baseline_size_bytes"}}],
     "removals": [...], "errors": [{"file", "field", "message"}], "wall_time_s"}

An interval is "how much worse the candidate is" (positive = worse) in the limit's unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.core.errors import ErrorRecord
from bot.stats.interval import Interval

PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"
INCONCLUSIVE = "inconclusive"  # the interval straddles the limit: the data cannot tell (bot.stats)
VERDICTS = (PASS, FAIL, ERROR, SKIPPED, INCONCLUSIVE)
# The one exit-code table of every command that gives a verdict (`check`, `report`, `github pr|report`).
# 3: the gate ran but its data cannot settle the verdict (blocking like a fail, yet no bot error).
EXIT_CODES = {PASS: 0, FAIL: 1, ERROR: 2, INCONCLUSIVE: 3}
SCHEMA_VERSION = 3  # 2: notes, rows[].evidence, the inconclusive verdict; 3: the card as data, not Markdown


def combine(verdicts: Iterable[str]) -> str:
    """error beats fail beats inconclusive beats pass; a skipped check never makes a pass on its own."""
    verdicts = list(verdicts)
    if ERROR in verdicts:
        return ERROR
    if FAIL in verdicts:
        return FAIL
    if SKIPPED in verdicts:
        return ERROR
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS


@dataclass(frozen=True)
class Evidence:
    """What a row's verdict rests on: how much worse the candidate is, as an interval, against the limit.

    ``unit`` is the limit's: `relative` (interval and limit are fractions of the baseline, 0.03 = 3%)
    or `points` (percentage points for rates, 10 = ten points) or `absolute` (the metric's own unit).
    ``settle_n``: for an inconclusive row, about how many paired observations would settle it.
    """

    interval: Interval
    limit: float
    unit: str
    settle_n: int | None = None
    observations: str = "observations"  # what n counts: documents, cases, requests...

    def to_json(self) -> dict:
        return {"interval": self.interval.to_json(), "limit": self.limit, "unit": self.unit, "settle_n": self.settle_n,
                "observations": self.observations}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Evidence":
        return cls(Interval.from_json(d["interval"]), d["limit"], d["unit"], d.get("settle_n"),
                   d.get("observations", "observations"))


@dataclass(frozen=True)
class MetricRow:
    """One compared number: a task/metric pair, a suite tag, a latency percentile..."""

    label: str
    candidate: float | None
    baseline: float | None
    threshold: str
    verdict: str
    delta: float | None = None
    stderr: str | None = None
    higher_is_better: bool | None = None
    evidence: Evidence | None = None

    def to_json(self) -> dict:
        return {"label": self.label, "candidate": self.candidate, "baseline": self.baseline,
                "delta": self.delta, "stderr": self.stderr, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "verdict": self.verdict,
                "evidence": None if self.evidence is None else self.evidence.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "MetricRow":
        return cls(label=d["label"], candidate=d.get("candidate"), baseline=d.get("baseline"),
                   threshold=d.get("threshold", ""), verdict=d["verdict"], delta=d.get("delta"),
                   stderr=d.get("stderr"), higher_is_better=d.get("higher_is_better"),
                   evidence=Evidence.from_json(d["evidence"]) if d.get("evidence") else None)


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: str
    candidate: Any = None
    baseline: Any = None
    threshold: str = ""
    detail: str = ""
    rows: tuple[MetricRow, ...] = ()
    notes: tuple[str, ...] = ()  # warnings shown to reviewers, e.g. "no canary steps"
    findings: tuple[Mapping[str, Any], ...] = ()  # check-specific evidence (regressed cases...)
    artifacts: tuple[str, ...] = ()
    wall_time_s: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def to_json(self) -> dict:
        return {
            "name": self.name, "verdict": self.verdict, "candidate": self.candidate, "baseline": self.baseline,
            "threshold": self.threshold, "detail": self.detail,
            "rows": [r.to_json() for r in self.rows], "notes": list(self.notes),
            "findings": [dict(f) for f in self.findings], "artifacts": list(self.artifacts),
            "wall_time_s": None if self.wall_time_s is None else round(self.wall_time_s, 3),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CheckResult":
        return cls(name=d["name"], verdict=d["verdict"], candidate=d.get("candidate"), baseline=d.get("baseline"),
                   threshold=d.get("threshold", ""), detail=d.get("detail", ""),
                   rows=tuple(MetricRow.from_json(r) for r in d.get("rows", ())),
                   notes=tuple(d.get("notes", ())), findings=tuple(d.get("findings", ())),
                   artifacts=tuple(d.get("artifacts", ())), wall_time_s=d.get("wall_time_s"))


@dataclass(frozen=True)
class CardFacts:
    """What a model card says of the candidate beyond its gate results: its variant.yaml, weights,
    recipe and baseline. Data only: `bot.render.card` writes the card from these and the checks.

    The names follow `bot.zoo.variants.Variant`, so a repo's `card.md.j2` override reads `variant.ref`,
    `variant.quantization.bits`... as it always has.
    """

    ref: str
    base_model: str
    is_quantized: bool
    tags: tuple[str, ...] = ()
    description: str = ""
    quantization: Mapping[str, Any] | None = None  # algorithm, scheme, bits, group_size, format, tool
    calibration: Mapping[str, Any] | None = None  # dataset, samples, sequence_length, file
    recipe: str | None = None  # repo path
    recipe_text: str | None = None
    size_bytes: int | None = None
    known_issues: tuple[str, ...] = ()
    baseline: str | None = None
    baseline_size_bytes: int | None = None

    def to_json(self) -> dict:
        return {"ref": self.ref, "base_model": self.base_model, "is_quantized": self.is_quantized,
                "tags": list(self.tags), "description": self.description,
                "quantization": None if self.quantization is None else dict(self.quantization),
                "calibration": None if self.calibration is None else dict(self.calibration),
                "recipe": self.recipe, "recipe_text": self.recipe_text, "size_bytes": self.size_bytes,
                "known_issues": list(self.known_issues), "baseline": self.baseline,
                "baseline_size_bytes": self.baseline_size_bytes}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CardFacts":
        return cls(**{**d, "tags": tuple(d.get("tags", ())), "known_issues": tuple(d.get("known_issues", ()))})


@dataclass(frozen=True)
class PromotionResult:
    environment: str
    manifest: str
    object: str | None
    application: str | None
    change: str
    from_variant: str | None
    to_variant: str | None
    checks: tuple[CheckResult, ...]
    errors: tuple[ErrorRecord, ...] = ()
    card: CardFacts | None = None  # what the candidate's model card says
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if self.errors:
            return ERROR
        if not self.checks:
            return PASS
        return combine(c.verdict for c in self.checks)

    def to_json(self) -> dict:
        return {
            "environment": self.environment, "manifest": self.manifest, "object": self.object,
            "application": self.application, "change": self.change,
            "from_variant": self.from_variant, "to_variant": self.to_variant, "verdict": self.verdict,
            "checks": [c.to_json() for c in self.checks], "notes": list(self.notes),
            "errors": [e.to_json() for e in self.errors],
            "card": None if self.card is None else self.card.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "PromotionResult":
        return cls(environment=d["environment"], manifest=d["manifest"], object=d.get("object"),
                   application=d.get("application"), change=d["change"], from_variant=d.get("from_variant"),
                   to_variant=d.get("to_variant"), checks=tuple(CheckResult.from_json(c) for c in d.get("checks", ())),
                   errors=tuple(ErrorRecord(**e) for e in d.get("errors", ())),
                   card=CardFacts.from_json(d["card"]) if d.get("card") else None, notes=tuple(d.get("notes", ())))


@dataclass(frozen=True)
class Removal:
    environment: str
    manifest: str
    object: str | None
    variant: str | None

    def to_json(self) -> dict:
        return {"environment": self.environment, "manifest": self.manifest, "object": self.object, "variant": self.variant}


@dataclass(frozen=True)
class Report:
    base: str
    head: str
    promotions: tuple[PromotionResult, ...] = ()
    removals: tuple[Removal, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    wall_time_s: float | None = None
    notes: tuple[str, ...] = ()  # about the PR as a whole, e.g. "this PR changes the policy"

    @property
    def verdict(self) -> str:
        if self.errors:
            return ERROR
        return combine(p.verdict for p in self.promotions) if self.promotions else PASS

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def environments(self) -> dict[str, str]:
        """Verdict per environment touched, for one commit status each."""
        out: dict[str, list[str]] = {}
        for p in self.promotions:
            out.setdefault(p.environment, []).append(p.verdict)
        for r in self.removals:
            out.setdefault(r.environment, [])
        verdicts = {env: (combine(v) if v else PASS) for env, v in out.items()}
        if self.errors:
            verdicts = {env: ERROR for env in verdicts} or {}
        return verdicts

    def to_json(self) -> dict:
        all_errors = list(self.errors) + [e for p in self.promotions for e in p.errors]
        return {
            "schema_version": SCHEMA_VERSION,
            "verdict": self.verdict,
            "base": self.base,
            "head": self.head,
            "promotions": [p.to_json() for p in self.promotions],
            "removals": [r.to_json() for r in self.removals],
            "errors": [e.to_json() for e in all_errors],
            "notes": list(self.notes),
            "wall_time_s": None if self.wall_time_s is None else round(self.wall_time_s, 3),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Report":
        """A report as `to_json` wrote it (promotion errors stay with their promotion)."""
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"report schema {d.get('schema_version')!r} is not {SCHEMA_VERSION}")
        promotions = tuple(PromotionResult.from_json(p) for p in d.get("promotions", ()))
        own = {(e.file, e.field, e.message) for p in promotions for e in p.errors}
        return cls(base=d["base"], head=d["head"], promotions=promotions,
                   removals=tuple(Removal(**r) for r in d.get("removals", ())),
                   errors=tuple(ErrorRecord(**e) for e in d.get("errors", ())
                                if (e["file"], e["field"], e["message"]) not in own),
                   wall_time_s=d.get("wall_time_s"), notes=tuple(d.get("notes", ())))
