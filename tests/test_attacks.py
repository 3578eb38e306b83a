"""Attacks on the gate, replayed as PRs against a demo-like GitOps repo: each must end in `fail` or
`error` with a message that names what is wrong, never `pass` and never a traceback."""

from __future__ import annotations

import json

from bot.cli import main


def run_check(repo, tmp_path, base="HEAD~1", head="HEAD"):
    out_json, out_md = tmp_path / "report.json", tmp_path / "comment.md"
    for f in (out_json, out_md):
        f.unlink(missing_ok=True)
    code = main(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out_json),
                 "--comment", str(out_md), "--cache", str(tmp_path / "cache")])
    return code, json.loads(out_json.read_text()), out_md.read_text()


def messages(report) -> str:
    """Every error and check detail of a report, one per line."""
    lines = [f"{e['file']}: {e['field']}: {e['message']}" for e in report["errors"]]
    for p in report["promotions"]:
        lines += [f"{e['file']}: {e['field']}: {e['message']}" for e in p.get("errors", [])]
        lines += [f"{c['name']} {c['verdict']}: {c['detail']}" for c in p["checks"]]
    return "\n".join(lines)


def assert_refused(code, report, comment, *needles):
    """Not a pass; an error (exit 2) or a failure (exit 1) whose text contains every needle."""
    assert code in (1, 2), (code, messages(report))
    assert report["verdict"] in ("fail", "error"), messages(report)
    text = messages(report)
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert "Traceback" not in comment and "Traceback" not in text
    return text


# --- wrong types: exit 2 with file, field and fix ------------------------------------------------

def test_attack__wrong_type_in_variant_yaml_is_an_input_error(gitops, tmp_path):
    path = gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    path.write_text(path.read_text().replace("known_issues: []", "known_issues: [{slow: true}]"))
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Promote, with a mapping where a string belongs")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "models/canopy-tiny/v1.3-int4-g64/variant.yaml: known_issues[0]: "
                                          "must be a string, got a mapping (fix: ")


def test_attack__wrong_type_in_manifest_is_an_input_error(gitops, tmp_path):
    gitops.write("environments/test/canopy.yaml", (gitops.path / "environments/test/canopy.yaml").read_text()
                 .replace("  labels:\n    app.kubernetes.io/name: canopy", "  labels: [canopy]", 1)
                 .replace("canopy-tiny/v1.0-fp32", "canopy-tiny/v1.4-int2-g64"))
    gitops.commit("Promote int2, labels as a list")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "environments/test/canopy.yaml: document[0].metadata.labels: must be a mapping")


# --- denial of service: YAML alias bombs -----------------------------------------------------------

BOMB = "\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
                 + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)])


def test_attack__alias_bomb_in_canary_steps_is_refused(gitops, tmp_path):
    import time

    bomb = "\n".join("        " + line for line in BOMB.splitlines())
    gitops.write("environments/prod/canopy.yaml", f"""\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: canopy
  annotations:
    promotion-bot/variant: canopy-tiny/v1.0-fp32
spec:
  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause:
{bomb}
""")
    gitops.commit("Canary steps that never end")
    started = time.monotonic()
    code, report, comment = run_check(gitops, tmp_path)
    assert time.monotonic() - started < 20
    assert code == 2
    assert_refused(code, report, comment, "environments/prod/canopy.yaml: line ", "through YAML aliases")


def test_attack__alias_bomb_in_known_issues_is_refused(gitops, tmp_path):
    path = gitops.path / "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    path.write_text(path.read_text().replace("known_issues: []\n", "") + BOMB + "\nknown_issues: *l8\n")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("Known issues: all of them")
    code, report, comment = run_check(gitops, tmp_path)
    assert code == 2
    assert_refused(code, report, comment, "models/canopy-tiny/v1.3-int4-g64/variant.yaml", "through YAML aliases")
