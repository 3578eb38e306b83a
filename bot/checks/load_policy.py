"""`promotion.yaml` with every section parsed: `bot.policy.model`'s parser with the check registry
plugged in (each gate entry's options are parsed by its check). Read from a revision (the base of a
PR: the PR cannot change the rules it is judged by) or from a local file (`check --policy`).
"""

from __future__ import annotations

from pathlib import Path

from bot.checks import registry
from bot.core.errors import InputError
from bot.policy.model import POLICY_FILE, Policy, baseline_problems, parse_policy
from bot.zoo.variants import Zoo


def parse(text: str, file: str = POLICY_FILE) -> Policy:
    return parse_policy(text, file, registry.get)


def from_rev(reader, rev: str, path: str = POLICY_FILE) -> Policy:
    text = reader.read_text(rev, path)
    if text is None:
        fix = ("add promotion.yaml at the repository root on the base branch (see README: 'The GitOps repository')"
               if path == POLICY_FILE else "commit the policy to the base branch first, or use promotion.yaml")
        raise InputError(path, "", f"not found at revision {rev[:12]}", fix)
    return parse(text, path)


def from_file(path) -> Policy:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(str(path), "", f"cannot be read: {exc.strerror}", "pass an existing file to --policy") from exc
    return parse(text, str(path))


def load(reader, base: str, *, policy_file: str | None = None, policy_path: str = POLICY_FILE) -> Policy:
    """A local ``policy_file`` when given, else ``policy_path`` as the base revision has it; its
    baselines must exist at ``base``, whether or not a check uses them."""
    policy = from_file(policy_file) if policy_file else from_rev(reader, base, policy_path)
    problems = baseline_problems(policy, Zoo(reader, base))
    if problems:
        raise problems[0]
    return policy
