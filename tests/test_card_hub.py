"""Model cards read back with the Hub's own parser: what the bot writes is what the Hub reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from bot.render.card import card_of, full_card, metadata_yaml, render_card_body
from bot.verdicts.results import CheckResult, MetricRow, Report
from bot.zoo.variants import VariantRef, card_facts, parse_variant

VARIANT = """\
base_model: canopy-tiny/v1.0-fp32
quantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 64}
"""


def test_card_hub__metadata_and_eval_results_parse_with_huggingface_hub():
    variant = parse_variant(VariantRef("canopy-tiny", "v1.3-int4-g64"), VARIANT)
    checks = [CheckResult("perplexity", "pass", rows=(MetricRow("canopy_heldout word_perplexity", 1.962, 1.961,
                                                                 "rise ≤ 3%", "pass"),))]
    card = card_facts(variant, baseline="canopy-tiny/v1.0-fp32")
    text = full_card(metadata_yaml(card, checks), render_card_body(card, checks))
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.base_model == "canopy-tiny/v1.0-fp32" and card.data.base_model_relation == "quantized"
    assert "quantized" in card.data.tags
    [result] = card.data.eval_results
    assert (result.dataset_type, result.metric_type, result.metric_value) == ("canopy_heldout", "word_perplexity", 1.962)
    assert card.text.lstrip().startswith("# canopy-tiny/v1.3-int4-g64")


GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.report.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_card_hub__every_recorded_gate_run_renders_a_card_the_hub_reads(path):
    """Each promotion of the demo's recorded runs (lm-eval, app-flows, performance rows) carded as
    `card` and the comment card it: metadata, eval results and the Performance section."""
    report = Report.from_json(json.loads(path.read_text()))
    carded = [p for p in report.promotions if p.card is not None]
    assert carded or not path.name.startswith("demo") or not report.promotions, "a judged variant has its card"
    for p in carded:
        card = card_of(p)
        text = full_card(card["metadata"], card["markdown"])
        card = ModelCard(text, ignore_metadata_errors=False)
        assert card.data.base_model == "canopy-tiny/v1.0-fp32" and card.data.base_model_relation == "quantized"
        evals = [(c.name, r) for c in p.checks if c.name != "performance" for r in c.rows
                 if isinstance(r.candidate, (int, float))]
        assert len(card.data.eval_results or []) == len(evals)
        perf = next((c for c in p.checks if c.name == "performance"), None)
        if perf is not None:
            assert "| output tokens per second |" in card.text and "% CI) |" in card.text
