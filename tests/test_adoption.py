"""Adoption by another team: the README's walk-through run as written, `validate` on the demo repo
and on a repository holding each mistake a new user made, `init`'s refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo.story import DemoRepo
from tests.gitops import GitOpsRepo, manifest

ROOT = Path(__file__).resolve().parent.parent


def readme_adoption_script() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- adoption: [^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert m, "README.md lost its adoption block"
    return m.group(1)


def shim(tmp_path: Path) -> dict:
    """An environment whose `promotion-bot` is this checkout's bot, with a private HOME and cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "promotion-bot"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m bot \"$@\"\n")
    exe.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", PYTHONPATH=str(ROOT), HOME=str(tmp_path / "home"),
               PROMOTION_BOT_CACHE=str(tmp_path / "cache"), GIT_AUTHOR_NAME="Acme Engineer",
               GIT_AUTHOR_EMAIL="eng@acme.example", GIT_COMMITTER_NAME="Acme Engineer",
               GIT_COMMITTER_EMAIL="eng@acme.example", GIT_CONFIG_NOSYSTEM="1")
    (tmp_path / "home").mkdir()
    return env


def test_readme_adoption__runs_as_written_to_a_green_check(tmp_path):
    proc = subprocess.run(["bash", "-e", "-c", readme_adoption_script()], cwd=tmp_path, env=shim(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok: . at") == 2, proc.stdout  # validate, on main and on the PR branch
    assert ("PASS  test: Deployment/acme-chat (environments/test/acme-chat.yaml) acme-1b/v1.0-bf16 -> acme-1b/v1.1-int8"
            in proc.stdout), proc.stdout
    # The zoo check says what it found, not fixed text.
    assert "calibration acme-support-calib (512 samples, 2048 tokens each)" in proc.stdout, proc.stdout
    repo = tmp_path / "acme-gitops"
    assert (repo / ".promotion-bot/schemas/promotion.schema.json").is_file()
    assert (repo / "evals/tasks/acme_1b_heldout.yaml").is_file()


def test_validate__demo_repo_is_clean(tmp_path, capsys):
    repo = DemoRepo.create(ROOT, tmp_path)
    assert main(["validate", "--repo", str(repo.path)]) == 0, capsys.readouterr().err
    assert "ok:" in capsys.readouterr().out


MISTAKES_POLICY = """\
version: 1
models:
  acme-1b:
    baseline: v2.0-bf61
environments:
  - name: test
    baseline: v1.0-bf16
    gate:
      - check: zoo
      - check: domain
        tasks: [acme_qa]
        max_drop: 5
      - check: app-flows
        suites: evals/acme-chat
  - name: staging
    folder: deploy/staging
    gate: [{check: zoo}, {check: promotion-order}]
"""
GOOD_VARIANT = "base_model: acme-1b\nweights: {path: weights}\n"
QUANTIZED = ("base_model: acme-1b/v1.0-bf16\n{quant}calibration: {{dataset: acme-calib}}\nrecipe: recipe.yaml\n"
             "weights: {{path: weights}}\n")


def mistakes_repo(path: Path) -> GitOpsRepo:
    """Another team's repository with each mistake a new user made (issue list), one per file."""
    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", MISTAKES_POLICY)
    variants = {
        "v1.0-bf16": GOOD_VARIANT,
        "v2.1-int8": QUANTIZED.format(quant="quantisation: {algorithm: GPTQ, bits: 8}\n"),
        "v2.2-int8": QUANTIZED.format(quant="quantization: none\n"),
        "v2.3-int4": "base_model: acme-1b/v1.0-bf16\nquantization: {algorithm: GPTQ}\ncalibration: calibration.yaml\n",
        "v2.4-int4-g32": "base_model: acme-1b/v1.0-bf16\nweights: {path: weights}\n",
        "v2.5-int2": "base_model: acme-1b/v1.0-bf16\nquantization: {algorithm: RTN}\nweights: weights\n",
        "v2.6-int4": QUANTIZED.format(quant="quantization: {algorithm: GPTQ, bits: 4}\n"),  # no recipe file
    }
    for name, text in variants.items():
        repo.write(f"models/acme-1b/{name}/variant.yaml", text)
        repo.write(f"models/acme-1b/{name}/weights/config.json", "{}\n")
    repo.write("environments/test/acme-chat.yaml", manifest("acme-1b/v1.0-bf61", name="acme-chat"))
    repo.write("evals/acme-chat/flows.yaml", textwrap.dedent("""\
        suite: acme-flows
        cases:
          - id: greet
            mesages: [{role: user, content: hi}]
            expect: {contains: hello}
        """))
    repo.commit("acme GitOps repo")
    return repo


def test_validate__one_message_per_mistake(tmp_path, capsys):
    repo = mistakes_repo(tmp_path / "acme")
    assert main(["validate", "--repo", str(repo.path)]) == 2
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    expected = [
        "promotion.yaml: models.acme-1b.baseline: baseline acme-1b/v2.0-bf61 does not exist",  # (fix: did you mean v1.0-bf16?)
        "models/acme-1b/v2.1-int8/variant.yaml: quantisation: is not a known setting (fix: did you mean `quantization`?)",
        "models/acme-1b/v2.2-int8/variant.yaml: quantization: must be a mapping with keys algorithm, scheme, bits, "
        "group_size, format, tool — or omit it for an unquantized variant; got 'none'",
        "models/acme-1b/v2.3-int4/variant.yaml: calibration: must be a mapping with keys dataset, samples, "
        "sequence_length, file, data_free; got 'calibration.yaml'",
        "models/acme-1b/v2.4-int4-g32/variant.yaml: quantization: the folder name says int4, a quantized precision, "
        "but variant.yaml has no `quantization`",
        "models/acme-1b/v2.5-int2/variant.yaml: weights: must be a mapping with keys path, uri, revision; got 'weights'",
        "models/acme-1b/v2.6-int4/variant.yaml: zoo check: recipe models/acme-1b/v2.6-int4/recipe.yaml does not exist",
        "promotion.yaml: environments[1].folder: deploy/staging/ holds no files",
        "environments/test/acme-chat.yaml: Deployment/acme-chat: names variant acme-1b/v1.0-bf61 but "
        "models/acme-1b/v1.0-bf61/variant.yaml does not exist (fix: did you mean acme-1b/v1.0-bf16? existing variants "
        "of acme-1b: v1.0-bf16, ",
        "promotion.yaml: environments[0].gate[1].tasks: task 'acme_qa' is not defined under evals/tasks/",
        "evals/acme-chat/flows.yaml: cases[0].mesages: is not a known setting (fix: did you mean `messages`?)",
    ]
    for want in expected:
        assert sum(want in e for e in errors) == 1, (want, errors)
    assert len(errors) == len(expected), errors
    assert "did you mean `v1.0-bf16`?" in errors[[i for i, e in enumerate(errors) if "v2.0-bf61" in e][0]]
    assert f"{len(expected)} problem(s)" in out.out


def test_validate__policy_typo_is_named_with_did_you_mean(tmp_path, capsys):
    repo = mistakes_repo(tmp_path / "acme")
    repo.write("promotion.yaml", MISTAKES_POLICY.replace("environments:", "enviroments:"))
    repo.commit("typo")
    assert main(["validate", "--repo", str(repo.path)]) == 2
    assert "error: promotion.yaml: enviroments: is not a known setting (fix: did you mean `environments`?)" \
        in capsys.readouterr().err


def test_init__refuses_to_overwrite_and_bad_names(tmp_path, capsys):
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-1b"]) == 0
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-1b"]) == 2
    assert "promotion.yaml: exists already (fix: pass --force" in capsys.readouterr().err
    assert main(["init", "--dir", str(tmp_path / "b"), "--model", "acme-1b", "--baseline", "v1.0-int4"]) == 2
    assert "a baseline is the unquantized model" in capsys.readouterr().err
    assert main(["init", "--dir", str(tmp_path / "c"), "--model", "acme-1b", "--environments", "test,Prod"]) == 2
    assert "is not a list of distinct environment names" in capsys.readouterr().err


@pytest.mark.parametrize("environments", ["dev,prod", "test,staging,canary,prod"])
def test_init__policy_parses_for_any_environments(tmp_path, environments):
    from bot.checks import load_policy
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-chat-7b", "--environments", environments]) == 0
    policy = load_policy.from_file(tmp_path / "promotion.yaml")
    assert [e.name for e in policy.environments] == environments.split(",")
    assert [c.name for c in policy.environments[-1].gate] == ["zoo", "promotion-order"]
    assert policy.baselines == {"acme-chat-7b": "v1.0-bf16"}
