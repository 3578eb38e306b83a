"""What a trip leads to, decided before anything is read or written (bot.monitor.rollback.decide)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.gitops.manifests import Deployment
from bot.monitor.history import PromotionCommit
from bot.monitor.rollback import Trip, decide

DEP = Deployment("prod", "environments/prod/canopy.yaml", "Deployment/canopy", "canopy", "canopy-tiny",
                 "v1.3-int4-g64", "canopy")
SHA = "a" * 40


@pytest.mark.parametrize("promotion, baselines, kind, branch, previous, reason", [
    (PromotionCommit(SHA, 0.0, "Promote v1.3", "canopy-tiny/v1.1-int8", False), {"canopy-tiny": "v1.0-fp32"},
     "revert", "promotion-bot/revert-aaaaaaaaaaaa", "canopy-tiny/v1.1-int8", ""),
    (PromotionCommit(SHA, 0.0, "Add canopy", None, False), {"canopy-tiny": "v1.0-fp32"},
     "issue", None, None, "added Deployment/canopy"),
    (None, {"canopy-tiny": "v1.0-fp32"},
     "set-variant", "promotion-bot/rollback-prod-canopy-v1.0-fp32", "v1.0-fp32", "no promotion commit"),
    (None, {"canopy-tiny": "v1.3-int4-g64"}, "issue", None, None, "no other baseline"),
    (None, {}, "issue", None, None, "no other baseline"),
])
def test_rollback_decide__table(promotion, baselines, kind, branch, previous, reason):
    decision = decide(Trip(DEP, promotion, ()), SimpleNamespace(baselines=baselines), "main")
    assert (decision.kind, decision.branch, decision.previous) == (kind, branch, previous)
    assert reason in decision.reason
