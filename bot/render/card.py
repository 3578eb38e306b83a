"""Model cards: Hugging Face metadata (`base_model`, `base_model_relation: quantized`, tags,
model-index) plus a Markdown body rendered from `card.md.j2`, written from a variant's `CardFacts`
and its checks. The same card appears in the PR comment and in `promotion-bot card`.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable, Mapping

from bot.render.markdown import make_environment, safe_href
from bot.render.zoo_table import change_of, metric_key
from bot.stats.interval import level_percent
from bot.verdicts.results import CardFacts, CheckResult, PromotionResult
from bot.zoo.records import Record, latest_checks
from bot.zoo.variants import MODEL_NAME, VARIANT_NAME, Variant, card_facts

PERFORMANCE, APP_FLOWS = "performance", "app-flows"

SAFE_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+", re.ASCII)
HF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+", re.ASCII)


def metadata_yaml(card: CardFacts, checks: Iterable[CheckResult]) -> str:
    """The YAML header, written by huggingface_hub so it matches what the Hub parses."""
    from huggingface_hub import EvalResult, ModelCardData  # a second of imports, paid only when a card is written

    eval_results = []
    for check in checks:
        if check.name == PERFORMANCE:
            continue  # serving speed, not an evaluation: the card's Performance section has it
        for row in check.rows:
            if isinstance(row.candidate, (int, float)) and not isinstance(row.candidate, bool):
                # lm-eval rows read "task metric"; an app-flow row is a metric of the check's suites.
                task, _, metric = ((check.name, "", metric_key(row.label)) if check.name == APP_FLOWS
                                   else row.label.partition(" "))
                eval_results.append(EvalResult(
                    task_type="text-generation", dataset_type=task or check.name, dataset_name=task or check.name,
                    metric_type=(metric or check.name).strip("()") or check.name, metric_value=row.candidate,
                ))  # no source_name: huggingface_hub rejects one without a source_url
    data = ModelCardData(
        model_name=card.ref,
        base_model=card.base_model,
        base_model_relation="quantized" if card.is_quantized else None,
        tags=list(card.tags),
        eval_results=eval_results or None,
    )
    return data.to_yaml()


def base_model_link(base_model: str) -> str | None:
    """Where the card links ``base_model`` (a PR string): only shapes that cannot carry Markdown or HTML."""
    if SAFE_URL.fullmatch(base_model):
        return base_model
    parts = base_model.split("/")
    if len(parts) == 2 and MODEL_NAME.fullmatch(parts[0]) and VARIANT_NAME.fullmatch(parts[1]):
        return f"../../{parts[0]}/{parts[1]}/"  # a variant in this zoo, relative to the card
    if HF_ID.fullmatch(base_model):
        return f"https://huggingface.co/{base_model}"
    return None


def performance_rows(card: CardFacts, checks: Iterable[CheckResult]) -> list[dict]:
    """The payoff against the baseline: size on disk, then every row the performance check measured
    (latency, throughput, memory...) as a ratio (×) and as a change with the interval it was judged by."""
    ratio = card.size_bytes / card.baseline_size_bytes if card.size_bytes and card.baseline_size_bytes else None
    rows = [{"label": "size on disk", "candidate": card.size_bytes, "baseline": card.baseline_size_bytes,
             "bytes": True, "ratio": ratio, "change": None, "verdict": None}]
    for c in checks:
        if c.name != PERFORMANCE:
            continue
        for r in c.rows:
            numbers = isinstance(r.candidate, (int, float)) and isinstance(r.baseline, (int, float)) and r.baseline
            change = change_of(r)
            rows.append({"label": metric_key(r.label), "candidate": r.candidate, "baseline": r.baseline, "bytes": False,
                         "ratio": r.candidate / r.baseline if numbers and "rate" not in r.label else None,
                         "change": None if change is None else f"{change.text()} ({level_percent(change.level)} CI)",
                         "verdict": r.verdict})
    for row in rows:
        row["ratio"] = None if row["ratio"] is None else f"{row['ratio']:.2f}×"
    return rows


def gate_issues(checks: Iterable[CheckResult], sources: Mapping[str, str] | None = None) -> list[str]:
    """What the gate found: the app-flow cases that passed on the baseline and failed on the candidate."""
    out = []
    for c in checks:
        if c.name == APP_FLOWS:
            where = f" ({sources[c.name]})" if sources and c.name in sources else ""
            out += [f"regressed in app-flows{where}: {f['title']}" for f in c.findings if f.get("title") and "tag" in f]
    return out


def render_card_body(card: CardFacts, checks: Iterable[CheckResult], *, overrides=None,
                     sources: Mapping[str, str] | None = None) -> str:
    """``sources``: check name -> which recorded gate it comes from (`test gate of PR #1 (gate: pass), 2026-12-03 08:00 UTC`)."""
    checks = list(checks)
    link = base_model_link(card.base_model)
    # The link text is escaped by the renderer like every PR string; the destination by safe_href.
    env = make_environment(overrides) if overrides else _builtin_environment()
    return env.get_template("card.md.j2").render(
        variant=card, checks=checks, baseline=card.baseline, recipe_text=card.recipe_text,
        base_link=safe_href(link) if link else None,
        tags=list(card.tags), sources=sources or {},
        accuracy_checks=[c for c in checks if c.rows and c.name != PERFORMANCE],
        performance=performance_rows(card, checks),
        gate_issues=gate_issues(checks, sources),
    )


@functools.lru_cache(maxsize=1)
def _builtin_environment():
    """Compiled once per process: a PR with 500 promotions renders 500 cards."""
    return make_environment(None)


def card_of(promotion: PromotionResult) -> dict[str, str]:
    """A promotion's card as the comment shows it: its metadata and body, from its facts and checks."""
    return {"metadata": metadata_yaml(promotion.card, promotion.checks),
            "markdown": render_card_body(promotion.card, promotion.checks)}


def source_text(record: Record) -> str:
    """Which gate a recorded result comes from: `test gate of PR #1 (gate: pass), 2026-12-03 08:00 UTC`.
    The gate's verdict is its own, not the check's: a check that passed in a gate another check failed."""
    pr = f"PR #{record.pr}" if record.pr else f"commit {record.commit[:12]}"
    return f"{record.environment} gate of {pr} (gate: {record.verdict}), {record.recorded_at[:16].replace('T', ' ')} UTC"


def recorded_card(variant: Variant, records: Iterable[Record], *, baseline_variant: Variant | None = None,
                  recipe_text: str | None = None, overrides=None) -> str:
    """The full card (README.md) from what the gates recorded: each check's newest result for the
    variant, whichever environment's gate ran it, each named with its gate."""
    latest = latest_checks(records, str(variant.ref))
    checks = [rc.check for rc in latest]
    baseline = next((rc.record.baseline for rc in reversed(latest) if rc.record.baseline), None)
    if baseline_variant is not None and baseline is not None and str(baseline_variant.ref) != baseline:
        baseline_variant = None  # measured against another variant: no ratio against this one
    card = card_facts(variant, baseline=baseline, baseline_variant=baseline_variant, recipe_text=recipe_text)
    body = render_card_body(card, checks, overrides=overrides,
                            sources={rc.check.name: source_text(rc.record) for rc in latest})
    return full_card(metadata_yaml(card, checks), body)


def full_card(metadata: str, body: str) -> str:
    """README.md as the Hub expects it: YAML front matter, then the body."""
    # huggingface_hub's to_yaml() has no final newline: without one the closing `---` is glued to
    # the last value and the Hub finds no metadata block at all.
    return f"---\n{metadata.rstrip()}\n---\n\n{body}"
