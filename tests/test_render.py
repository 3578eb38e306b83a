"""The comment and card renderer: escaping of PR-controlled strings, the sticky marker, the size cut, overrides."""

from __future__ import annotations

import re

import jinja2
import pytest

from bot.render.markdown import COMMENT_MARKER, code_block, fit_comment, md_escape, render_comment
from bot.verdicts.results import CheckResult, MetricRow, PromotionResult, Report

HOSTILE = "<img src=x onerror=alert(1)> **bold** | cell @org/team [link](http://evil) `tick`"


def report_with(detail: str = "ok", output: str = "fine") -> Report:
    check = CheckResult(
        name="app-flows", verdict="fail", detail=detail,
        rows=(MetricRow(label=HOSTILE, candidate=0.5, baseline=0.9, threshold="≥ 0.9", verdict="fail", delta=-0.4),),
        findings=({"title": HOSTILE, "tag": "output-format", "required": "json", "candidate_output": output,
                   "baseline_output": "{\"answer\": 1}"},),
    )
    promo = PromotionResult(environment="staging", manifest=f"environments/staging/{HOSTILE}.yaml", object="Deployment/x",
                            application="canopy", change="modified", from_variant="canopy-tiny/v1.0-fp32",
                            to_variant="canopy-tiny/v1.4-int2-g64", checks=(check,))
    return Report(base="a" * 40, head="b" * 40, promotions=(promo,))


def outside_code(markdown: str) -> str:
    """The Markdown a renderer would interpret: fenced blocks and code spans removed (they render literally)."""
    without_fences = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1$", "", markdown)
    return re.sub(r"(`+)(?!`).+?(?<!`)\1(?!`)", "", without_fences)


def test_md_escape__neutralises_html_tables_mentions_and_links():
    out = md_escape(HOSTILE)
    assert "<img" not in out and "&lt;img" in out
    assert "\\|" in out and "\\*\\*bold\\*\\*" in out and "\\[link\\]" in out
    assert "@\u200borg" in out


def test_render_comment__escapes_every_pr_string():
    body = render_comment(report_with(detail=HOSTILE, output="```\n</details><script>x</script>"))
    assert body.startswith(COMMENT_MARKER)
    prose = outside_code(body)
    assert "<img" not in prose and "&lt;img src=x onerror=alert(1)&gt;" in prose  # readable as text, inert
    assert "@org" not in prose  # no mention can ping a team
    # Model output stays verbatim, but only inside a fence longer than any backtick run in it.
    assert "````\n```\n</details><script>x</script>\n````" in body
    assert body.count("<script>") == 1


def test_code_block__content_cannot_close_its_fence():
    block = str(code_block("a ``` b ```` c"))
    fence = block.split("\n", 1)[0]
    assert fence == "`````" and block.endswith("\n" + fence)


def test_fit_comment__cuts_over_the_limit_with_a_pointer_and_keeps_the_marker():
    body = COMMENT_MARKER + "\n" + "```\n" + "x" * 70000
    out = fit_comment(body, "https://ci.example/run/1")
    assert len(out) <= 65536
    assert out.startswith(COMMENT_MARKER)
    assert "[Full report](https://ci.example/run/1)" in out
    assert out.count("```") % 2 == 0  # the open fence was closed before the pointer
    assert fit_comment("short", None) == "short"


def test_override__extends_the_builtin_template_by_block():
    from bot.render.card import render_card_body
    from bot.zoo.variants import VariantRef, card_facts, parse_variant

    variant = parse_variant(VariantRef("canopy-tiny", "v1.3-int4-g64"),
                            "base_model: canopy-tiny/v1.0-fp32\nquantization: {algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 64}\n")
    body = render_card_body(card_facts(variant), [], overrides={"card.md.j2": '{% extends "builtin/card.md.j2" %}{% block extra %}TEAM SECTION{% endblock %}'})
    assert "## Quantization" in body and body.rstrip().endswith("TEAM SECTION")


def test_override__sandbox_refuses_unsafe_attribute_access():
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_comment(report_with(), overrides={"comment.md.j2": "{{ report.__class__.__init__.__globals__ }}"})


# Every shape a PR string took to forge a comment: raw tags, a link, a mention, a heading, an open comment.
ATTACK = "<img src=x onerror=alert(1)><a href=https://evil.example>win</a> @octocat\n## ✅ PASS\n<!-- "
ATTACK_BASE_MODELS = (
    ATTACK,
    "canopy/v1<img src=x>@octocat<!--",  # one "/" and a v<digit> part: once linked as a zoo variant, raw
    "https://evil.example/x)<img src=x>",
    "org/model\n<img src=x>",
)


def hostile_variant(base_model: str):
    import yaml

    from bot.zoo.variants import VariantRef, parse_variant

    data = {
        "model": "canopy-tiny", "variant": "v1.3-int4-g64", "base_model": base_model, "description": ATTACK,
        "quantization": {"algorithm": ATTACK, "scheme": ATTACK, "bits": 4, "group_size": 64, "format": ATTACK,
                         "tool": ATTACK},
        "calibration": {"dataset": ATTACK, "samples": 8, "sequence_length": 16, "file": "calib<img src=x>@octocat<!--.jsonl"},
        "recipe": "recipe<img src=x>@octocat<!--.yaml", "weights": {"path": "weights"}, "size_bytes": 1024,
        "measured": {ATTACK: ATTACK}, "known_issues": [ATTACK, ATTACK], "results": {ATTACK: ATTACK},
    }
    return parse_variant(VariantRef("canopy-tiny", "v1.3-int4-g64"), yaml.safe_dump(data))


class _RecipeReader:
    def read_text(self, rev, path):
        return ATTACK + "\n```\n</details><script>x</script>"


@pytest.mark.parametrize("base_model", ATTACK_BASE_MODELS)
def test_render__hostile_variant_and_manifest_fields_leave_no_raw_html(base_model):
    from html_safety import html_problems

    from bot.core.errors import ErrorRecord
    from bot.render.card import card_of
    from bot.verdicts.results import Removal
    from bot.zoo.variants import card_facts

    variant = hostile_variant(base_model)
    row = MetricRow(label=ATTACK, candidate=1.0, baseline=1.0, threshold=ATTACK, verdict="pass", delta=0.0, stderr=ATTACK)
    check = CheckResult(name="perplexity", verdict="pass", candidate=ATTACK, baseline=ATTACK, threshold=ATTACK,
                        detail=ATTACK, rows=(row,), notes=(ATTACK,), artifacts=(ATTACK,),
                        findings=({"title": ATTACK, "tag": ATTACK, "required": ATTACK, "candidate_output": ATTACK},))
    facts = card_facts(variant, baseline=ATTACK, recipe_text=_RecipeReader().read_text("head", variant.recipe))
    promo = PromotionResult(environment="test", manifest=f"environments/test/{ATTACK}.yaml", object=f"Deployment/{ATTACK}",
                            application=ATTACK, change="modified", from_variant="canopy-tiny/v1.0-fp32",
                            to_variant=str(variant.ref), checks=(check,), notes=(ATTACK,),
                            errors=(ErrorRecord(ATTACK, ATTACK, ATTACK),), card=facts)
    card = card_of(promo)["markdown"]
    assert html_problems(card) == []
    report = Report(base="a" * 40, head="b" * 40, promotions=(promo,),
                    removals=(Removal("test", ATTACK, ATTACK, ATTACK),), errors=(ErrorRecord(ATTACK, ATTACK, ATTACK),))
    body = render_comment(report)
    assert html_problems(body) == []
    from html_safety import to_html

    headings = re.findall(r"<h\d>(.*?)</h\d>", to_html(body))
    assert headings[0] == "⚠️ promotion-bot: ERROR" and "✅ PASS" not in headings  # no forged verdict heading
    assert "&lt;img" in body or "&lt;img" in card  # the hostile text is still shown, as text


def test_html_problems__finds_what_the_attacks_put_in():
    from html_safety import html_problems

    found = html_problems("hello <img src=x> @octocat [x](https://evil.example)\n\n<!-- open\nthe rest")
    assert any("raw tag <img>" in p for p in found)
    assert any("live mention" in p for p in found)
    assert any("link to 'https://evil.example'" in p for p in found)
    assert any("HTML comment" in p for p in found)
    assert html_problems("plain **text** `@code` and a @\u200bmention") == []


def test_base_model_link__only_safe_shapes_are_linked():
    from bot.render.card import base_model_link

    assert base_model_link("canopy-tiny/v1.0-fp32") == "../../canopy-tiny/v1.0-fp32/"
    assert base_model_link("meta-llama/Llama-3.1-8B") == "https://huggingface.co/meta-llama/Llama-3.1-8B"
    assert base_model_link("https://example.com/model") == "https://example.com/model"
    for hostile in ATTACK_BASE_MODELS + ("org/model\n", "canopy/v1.0-fp32\n"):
        assert base_model_link(hostile) is None, hostile


def test_absolute_links__relative_card_links_become_repository_urls():
    from bot.render.markdown import absolute_links

    files = "https://github.com/acme-ml/gitops/blob/0123abc"
    card = ("Derived from [acme-1b/v2.0-bf16](../../acme-1b/v2.0-bf16/); recipe [here](./recipe.yaml).\n"
            "A PR string \\[x\\](../../escaped/) and \\\\](../../after-a-backslash/)\n"
            "```yaml\nnote: '[in a fence](../../kept/)'\n```\n"
            "[out of the repo](../../../../../etc/) [web](https://example.com/)\n")
    out = absolute_links(card, "models/acme-1b/v2.4-int8", files)
    assert f"[acme-1b/v2.0-bf16]({files}/models/acme-1b/v2.0-bf16/)" in out
    assert f"[here]({files}/models/acme-1b/v2.4-int8/recipe.yaml)" in out
    assert "\\](../../escaped/)" in out  # an escaped bracket is no link
    assert f"\\\\]({files}/models/after-a-backslash/)" in out  # an escaped backslash, then a real link
    assert "[in a fence](../../kept/)" in out and "[out of the repo](../../../../../etc/)" in out
    assert "[web](https://example.com/)" in out
    assert absolute_links(card, "models/acme-1b/v2.4-int8", None) == card  # a local run keeps them relative
