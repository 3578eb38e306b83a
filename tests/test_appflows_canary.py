"""Prod promotions: an Argo Rollouts canary's steps are shown in the comment; a prod promotion
without a canary gets a warning."""

from __future__ import annotations

import json
import textwrap

from bot.cli import main

ROLLOUT = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata:
      name: canopy
      labels: {app.kubernetes.io/name: canopy}
      annotations: {promotion-bot/variant: canopy-tiny/v1.3-int4-g64}
    spec:
      strategy:
        canary:
          steps:
            - setWeight: 10
            - pause: {duration: 15m}
            - setWeight: 50
            - pause: {}
    """)


def run_check(repo, tmp_path):
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    code = main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache")])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def test_canary__rollout_steps_are_shown(gitops, tmp_path):
    gitops.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in staging")
    gitops.write("environments/prod/canopy.yaml", ROLLOUT)
    gitops.commit("v1.3 to prod behind a canary")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 0, report
    [promo] = report["promotions"]
    assert promo["notes"] == ["Canary steps: 10% → pause 15m → 50% → pause until promoted"]
    assert "Canary steps: 10% → pause 15m → 50% → pause until promoted" in comment
    assert "No canary" not in comment and "> [!NOTE]\n> Canary steps" in comment


def test_canary__prod_without_canary_is_warned(gitops, tmp_path):
    gitops.set_variant("staging", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in staging")
    gitops.set_variant("prod", "canopy-tiny/v1.3-int4-g64")  # a plain Deployment
    gitops.commit("v1.3 to prod at once")
    _, report, comment = run_check(gitops, tmp_path)
    [note] = report["promotions"][0]["notes"]
    assert note.startswith("No canary: Deployment/canopy switches all of prod's traffic")
    assert "> [!WARNING]\n> No canary: Deployment/canopy" in comment


def test_canary__no_warning_before_prod(gitops, tmp_path):
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3 in test")
    _, report, _ = run_check(gitops, tmp_path)
    assert report["promotions"][0]["notes"] == []
