"""The README's `variant_ref` examples, run as written on a repository of another team's names
(acme-chat, acme-1b): its policy, its manifests and its shell commands, extracted from README.md."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from acme import BASELINE, MODEL, VARIANTS
from gitops import GitOpsRepo

from bot.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE = re.compile(r"<!-- readme-example: (\S+) -->\n```\w*\n(.*?)\n```", re.S)
PROMOTED = "v2.4-int4-g32"


def examples() -> dict[str, str]:
    found = dict(EXAMPLE.findall(README.read_text()))
    assert {"promotion.yaml", "shell"} <= set(found) and any(k.startswith("environments/") for k in found), found
    return {name: text + "\n" for name, text in found.items()}


@pytest.fixture
def readme_repo(tmp_path):
    """`main` as the README describes it (the baseline everywhere), and the PR branch `promote-int4`."""
    blocks = examples()
    repo = GitOpsRepo(tmp_path / "acme-gitops")
    repo.write("promotion.yaml", blocks["promotion.yaml"])
    for variant in VARIANTS:
        repo.add_variant(variant, model=MODEL, base_model=f"{MODEL}/{BASELINE}" if "int" in variant else "acme/acme-1b")
    manifests = {name: text for name, text in blocks.items() if name.startswith("environments/")}
    for name, text in manifests.items():
        repo.write(name, text.replace(PROMOTED, BASELINE))
    # What the policy's `ignore:` names: not a Kubernetes object, never read.
    repo.write("environments/test/drafts/next.yaml", "owner: acme-ml\nnext: v2.5\n")
    repo.commit("acme-chat: v2.0-bf16 everywhere")
    repo.repo.git.checkout("-q", "-b", "promote-int4")
    for name, text in manifests.items():
        repo.write(name, text)
    repo.commit(f"Promote {MODEL} {PROMOTED} to test")
    repo.repo.git.checkout("-q", "main")
    return repo


def run_shell_example(repo, monkeypatch, capsys) -> list[tuple[str, int, str]]:
    monkeypatch.chdir(repo.path)
    runs = []
    for line in examples()["shell"].splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        assert argv[0] == "promotion-bot", line
        code = main(argv[1:])
        runs.append((argv[1], code, capsys.readouterr().out))
    return runs


def test_readme__variant_ref_example_runs_as_written(readme_repo, monkeypatch, capsys):
    runs = dict((command, (code, out)) for command, code, out in run_shell_example(readme_repo, monkeypatch, capsys))
    code, out = runs["zoo"]
    assert code == 0, out
    [baseline_row] = [line for line in out.splitlines() if line.startswith(f"{MODEL}/{BASELINE} ")]
    assert baseline_row.endswith("prod, staging, test"), out
    code, out = runs["check"]
    assert code == 0, out
    assert f"test: InferenceService/acme-chat (environments/test/acme-chat.yaml) {MODEL}/{BASELINE} -> {MODEL}/{PROMOTED}" in out
    assert "staging:" not in out and "prod:" not in out


def test_readme__prod_example_reads_the_rollout_args_by_the_ref_group(readme_repo, monkeypatch, capsys):
    prod = examples()["environments/prod/acme-chat.yaml"].replace(BASELINE, "v2.4-int8")
    staging = examples()["environments/staging/acme-chat.yaml"].replace(BASELINE, "v2.4-int8")
    readme_repo.write("environments/staging/acme-chat.yaml", staging)
    readme_repo.commit("int8 in staging")
    readme_repo.write("environments/prod/acme-chat.yaml", prod)
    readme_repo.commit("int8 to prod")
    monkeypatch.chdir(readme_repo.path)
    assert main(["check", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD"]) == 0
    assert f"prod: Rollout/acme-chat (environments/prod/acme-chat.yaml) {MODEL}/{BASELINE} -> {MODEL}/v2.4-int8" in capsys.readouterr().out
