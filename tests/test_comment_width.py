"""Every demo step's comment, and the demo's index, fit GitHub's comment column and a window:
measured in headless Chromium (nothing scrolls sideways, the chart's verdicts stay in view)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import measure, screenshot

from bot.demo import site
from bot.gate import publish
from bot.render.charts import MAX_WIDTH
from bot.verdicts.results import Report

GOLDEN = Path(__file__).parent / "golden"
REPORTS = sorted(GOLDEN.glob("*.report.json"))


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name.split(".")[0])
def test_comment_width__every_comment_fits_the_column(path):
    comment = publish.comment(Report.from_json(json.loads(path.read_text())))
    for line in comment.splitlines():  # the chart, and any other fenced line, whole on one screen
        assert len(line) <= MAX_WIDTH or not line.startswith((" ", "─", "┆")), line
    measured = measure(site.comment_page(path.name, comment))
    assert measured["wide"] == [], measured
    assert measured["comment"] <= site.COMMENT_COLUMN_PX


def test_comment_width__a_screenshot_of_a_comment(tmp_path):
    # The picture a reviewer sees, kept for looking at: the demo step with the most on it.
    comment = publish.comment(Report.from_json(json.loads((GOLDEN / "demo-step4.report.json").read_text())))
    png = screenshot(site.comment_page("step 4", comment), tmp_path / "comment.png")
    assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comment_width__the_index_fits_a_window():
    steps = [{"number": n, "title": f"promote canopy-tiny/v1.{n}-int4-g64 into staging", "expected": "pass",
              "verdict": "pass", "as_expected": True, "shows": "performance: " + "worse by 1.0% [−4.0%, +6.0%]; " * 6,
              "seconds": 12.0, "files": {"comment": f"step{n}/comment.html", "model card": f"step{n}/model-card.md",
                                          "JSON report": f"step{n}/report.json"}} for n in range(1, 11)]
    zoo = {"metrics": [{"check": "perplexity", "metric": "word_perplexity", "cells": {
        f"canopy-tiny/v1.{k}-int4-g64": {"change": {"estimate": 0.01 * k, "low": 0.0, "high": 0.02 * k,
                                                    "unit": "relative", "level": 0.95}} for k in range(1, 5)}}]}
    measured = measure(site.index_page("promotion-bot demo", "intro", steps, zoo))
    assert measured["wide"] == [] and measured["page"] <= 1280, measured
