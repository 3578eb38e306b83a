"""`promotion-bot init`: a starting promotion.yaml, the baseline's variant.yaml and a perplexity
task, in a team's own names, plus the schemas for editors. Nothing is overwritten without --force.

The gate it writes (`zoo` everywhere, `promotion-order` after the first environment) needs no model
run, so the first `check` is green in seconds once the baseline's weights are committed; the
perplexity entry is ready to uncomment when evals/data/<task>.jsonl holds held-out text.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from bot import schemas
from bot.core.errors import InputError
from bot.policy.model import ENV_NAME
from bot.zoo.variants import MODEL_NAME, UNQUANTIZED_PRECISIONS, VARIANT_NAME, parse_variant_name

SCHEMA_DIR = ".promotion-bot/schemas"


def register(sub) -> None:
    p = sub.add_parser("init", help="scaffold promotion.yaml, the baseline's variant.yaml and a perplexity task",
                       description=__doc__)
    p.add_argument("--dir", type=Path, default=Path("."), help="the GitOps repository (default: .)")
    p.add_argument("--model", required=True, help="the model's folder name under models/, e.g. acme-1b")
    p.add_argument("--app", help="the application serving it, for the comments (default: the model name)")
    p.add_argument("--baseline", default="v1.0-bf16",
                   help="the unquantized variant candidates are measured against (default: v1.0-bf16)")
    p.add_argument("--environments", default="test,staging,prod",
                   help="environment names in promotion order, comma-separated (default: test,staging,prod)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=run)


def files_for(model: str, app: str, baseline: str, environments: list[str]) -> dict[str, str]:
    """Repo path → content of every file `init` writes (the schemas aside)."""
    task = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_") + "_heldout"
    gates = []
    for i, env in enumerate(environments):
        lines = [f"  - name: {env}", f"    folder: environments/{env}       # where Argo CD reads {env}'s manifests",
                 "    gate:", "      - check: zoo"]
        if i > 0:
            lines.append("      - check: promotion-order")
        if i == 0:
            lines += [f"      # Uncomment once evals/data/{task}.jsonl holds held-out text of {app}'s domain:",
                      f"      # - {{check: perplexity, task: {task}, max_increase: 3%, limit: 200}}"]
        gates.append("\n".join(lines))
    policy = f"""\
# yaml-language-server: $schema={SCHEMA_DIR}/promotion.schema.json
# The promotion policy, read from the base branch of every PR. Every field: docs/reference.md.
version: 1

models:
  {model}:
    baseline: {baseline}      # candidates of {model} are measured against this variant

zoo:
  require: [recipe, calibration, weights]   # recipe and calibration apply to quantized variants

# Environments in promotion order: a variant enters one only after the one before serves it.
# A manifest names its variant with the annotation `promotion-bot/variant: {model}/<variant>`.
environments:
{chr(10).join(gates)}
"""
    variant = f"""\
# yaml-language-server: $schema=../../../{SCHEMA_DIR}/variant.schema.json
model: {model}
variant: {baseline}
base_model: {model}
description: {model} {parse_variant_name(baseline).precision}, the baseline every candidate is measured against
weights:
  path: weights           # commit the weights (safetensors, config.json, tokenizer) in {baseline}/weights/
known_issues: []
"""
    task_yaml = f"""\
# Perplexity of {model} on held-out text of {app}'s domain. Data paths are relative to the
# repository root and read from the base revision.
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: evals/data/{task}.jsonl
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
    aggregation: weighted_perplexity
    higher_is_better: false
  - metric: byte_perplexity
    aggregation: weighted_perplexity
    higher_is_better: false
"""
    return {"promotion.yaml": policy, f"models/{model}/{baseline}/variant.yaml": variant,
            f"evals/tasks/{task}.yaml": task_yaml}


def run(args) -> int:
    if not MODEL_NAME.fullmatch(args.model):
        raise InputError("--model", "", f"{args.model!r} is not a model folder name", "use letters, digits, `.`, `_` and `-`")
    if not VARIANT_NAME.fullmatch(args.baseline):
        raise InputError("--baseline", "", f"{args.baseline!r} does not follow the naming scheme",
                         "name it {version}-{precision}[-{config}], e.g. v1.0-bf16")
    if parse_variant_name(args.baseline).precision not in UNQUANTIZED_PRECISIONS:
        raise InputError("--baseline", "", f"{args.baseline} is quantized; a baseline is the unquantized model",
                         f"use a {'/'.join(UNQUANTIZED_PRECISIONS)} variant, e.g. v1.0-bf16")
    environments = [e.strip() for e in args.environments.split(",") if e.strip()]
    bad = [e for e in environments if not ENV_NAME.match(e)]
    if not environments or bad or len(set(environments)) != len(environments):
        raise InputError("--environments", "", f"{args.environments!r} is not a list of distinct environment names",
                         "write e.g. `--environments test,staging,prod` (lowercase letters, digits, dashes)")
    files = files_for(args.model, args.app or args.model, args.baseline, environments)
    files.update({f"{SCHEMA_DIR}/{name}.schema.json": schemas.path(name).read_text() for name in schemas.NAMES})
    root = args.dir.resolve()
    for rel in files:
        linked = _linked(args.dir, rel)
        if linked is not None:  # never write through a link: it could point anywhere on the machine
            raise InputError(str(args.dir / linked), "", "is a symbolic link; init writes only plain files and folders "
                             "inside the repository", "replace the link by a folder or file of its own")
        if not (args.dir / rel).resolve().is_relative_to(root):
            raise InputError(str(args.dir / rel), "", "lies outside the repository", "run init in the repository itself")
    existing = [p for p in files if (args.dir / p).exists()]
    if existing and not args.force:
        raise InputError(str(args.dir / existing[0]), "", "exists already", "pass --force to overwrite it, or edit it")
    for rel, text in files.items():
        target = args.dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_new(target, text)
        if not rel.startswith(SCHEMA_DIR):
            print(f"wrote {rel}")
    print(f"wrote {SCHEMA_DIR}/ (the JSON Schemas your editor's YAML language server reads)")
    print(f"next: commit {args.model}'s weights under models/{args.model}/{args.baseline}/weights/, annotate each "
          f"environment's serving object with `promotion-bot/variant: {args.model}/{args.baseline}`, "
          "then run `promotion-bot validate`", file=sys.stderr)
    return 0


def _linked(root: Path, rel: str) -> str | None:
    """The first part of ``rel`` under ``root`` that is a symbolic link, or None."""
    parts = Path(rel).parts
    for i in range(1, len(parts) + 1):
        if (root / Path(*parts[:i])).is_symlink():
            return str(Path(*parts[:i]))
    return None


def _write_new(target: Path, text: str) -> None:
    """Replace ``target`` by a new plain file (a link put there in the meantime is not followed)."""
    tmp = target.with_name(f".{target.name}.init-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)
