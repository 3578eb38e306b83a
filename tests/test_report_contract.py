"""What reviewers see and what scripts read, pinned: the JSON report contract and the comment
rendered from it, against files under tests/golden/.

The demo's recorded reports (tests/golden/record.py) cover every check kind the demo runs (zoo,
promotion-order, perplexity, benchmarks, domain, app-flows, performance); a built report adds an
inconclusive row, a note and an error. A change that alters a comment shows as a diff of
tests/golden/*.comment.md: regenerate with `PROMOTION_BOT_GOLDEN=update`, and review that diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.core.errors import ErrorRecord
from bot.gate import publish
from bot.stats.interval import Interval
from bot.verdicts.results import SCHEMA_VERSION, CheckResult, Evidence, MetricRow, PromotionResult, Report

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PROMOTION_BOT_GOLDEN") == "update"
RECORDED = sorted(GOLDEN.glob("*.report.json"))


def matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with PROMOTION_BOT_GOLDEN=update and review it"
    assert text == path.read_text(), f"{name} changed: review, then PROMOTION_BOT_GOLDEN=update"


def built_report() -> Report:
    interval = Interval(0.025, -0.01, 0.061, 0.95, "paired t", 40, 0.11)
    rows = (MetricRow("canopy_mc acc", 0.925, 0.95, "drop ≤ 5 pt", "inconclusive", delta=-0.025, higher_is_better=True,
                      evidence=Evidence(Interval(2.5, -1.2, 6.3, 0.95, "Bonett–Price paired", 40, 11.0), 5.0,
                                        "points", 168, "documents")),
            MetricRow("canopy_heldout word_perplexity", 2.0, 1.95, "rise ≤ 3%", "pass", delta=0.05,
                      higher_is_better=False, evidence=Evidence(interval, 0.03, "relative")))
    checks = (CheckResult("zoo", "pass", candidate="canopy-tiny/v1.3-int4-g64", detail="has recipe"),
              CheckResult("benchmarks", "inconclusive", candidate=0.925, baseline=0.95, threshold="canopy_mc: worse by ≤ 5 pt",
                          detail="canopy_mc acc: inconclusive", rows=rows[:1], wall_time_s=3.2),
              CheckResult("perplexity", "pass", candidate=2.0, baseline=1.95, rows=rows[1:], wall_time_s=2.0))
    promotion = PromotionResult("test", "environments/test/canopy.yaml", "Deployment/canopy", "canopy", "modified",
                                "canopy-tiny/v1.0-fp32", "canopy-tiny/v1.3-int4-g64", checks)
    broken = PromotionResult("test", "environments/test/other.yaml", None, None, "added", None, None, (),
                             errors=(ErrorRecord("environments/test/other.yaml", "metadata.annotations",
                                                 "names variant <img src=x> which does not exist"),))
    return Report("a" * 40, "b" * 40, (promotion, broken), notes=("This PR changes promotion.yaml; it parses.",),
                  errors=(ErrorRecord("promotion.yaml", "zoo.require", "@team is not a zoo fact"),), wall_time_s=5.0)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name.split(".")[0])
def test_report_contract__recorded_reports_read_back_exactly_and_render_as_pinned(path):
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    report = Report.from_json(data)
    assert report.to_json() == data  # nothing of the contract is lost or renamed on the way
    matches_golden(path.name.replace(".report.json", ".comment.md"), publish.comment(report))


def test_report_contract__every_stage1_and_app_flow_row_of_the_demo_carries_its_interval():
    kinds = set()
    for path in RECORDED:
        for p in json.loads(path.read_text())["promotions"]:
            for c in p["checks"]:
                kinds.add(c["name"])
                if c["name"] in ("perplexity", "benchmarks", "domain"):
                    assert all(r["evidence"] for r in c["rows"]), (path.name, c["name"])
    assert {"zoo", "promotion-order", "perplexity", "benchmarks", "domain", "app-flows", "performance"} <= kinds


def test_report_contract__built_report_with_inconclusive_note_and_errors():
    report = built_report()
    data = report.to_json()
    assert data["verdict"] == "error" and Report.from_json(data).to_json() == data
    assert [e["file"] for e in data["errors"]] == ["promotion.yaml", "environments/test/other.yaml"]
    comment = publish.comment(report)
    assert "<img" not in comment and "@team" not in comment  # PR strings are escaped
    matches_golden("built.comment.md", comment)
    matches_golden("built.report.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
