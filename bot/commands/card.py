"""`promotion-bot card VARIANT_DIR`: the variant's model card (Hugging Face metadata + Markdown)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.card import full_card, metadata_yaml, render_card_body
from bot.errors import InputError
from bot.output import write_atomic
from bot.results import CheckResult
from bot.zoo import ZOO_ROOT, VariantRef, parse_variant


def register(sub) -> None:
    p = sub.add_parser("card", help="render a variant's model card")
    p.add_argument("variant_dir", type=Path, help="models/<model>/<variant>/")
    p.add_argument("--results", type=Path, help="a JSON report from `check`: its numbers for this variant go into the card")
    p.add_argument("-o", "--output", type=Path, help="write the card here (default: stdout)")
    p.set_defaults(func=run)


def load_variant_dir(folder: Path):
    folder = folder.resolve()
    path = folder / "variant.yaml"
    if not path.is_file():
        raise InputError(str(path), "", "does not exist", f"pass a variant folder such as {_example_variant(folder)}")
    ref = VariantRef(folder.parent.name, folder.name)
    return parse_variant(ref, path.read_text())


def _example_variant(folder: Path) -> str:
    """A variant folder near the one asked for (its siblings, or the zoo of the current folder)."""
    for pattern_root, pattern in ((folder.parent, "*/variant.yaml"), (folder.parent.parent, "*/*/variant.yaml"),
                                  (Path.cwd() / ZOO_ROOT, "*/*/variant.yaml")):
        found = sorted(pattern_root.glob(pattern)) if pattern_root.is_dir() else []
        if found:
            return f"{ZOO_ROOT}/{found[0].parent.parent.name}/{found[0].parent.name}"
    return f"{ZOO_ROOT}/<model>/<variant>"


def checks_from_report(report_path: Path, ref: str) -> list[CheckResult]:
    try:
        data = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(str(report_path), "", f"is not a readable JSON report: {exc}", "pass the file `check --json` wrote") from exc
    checks: list[CheckResult] = []
    for p in data.get("promotions", []):
        if p.get("to_variant") == ref:
            checks.extend(CheckResult.from_json(c) for c in p.get("checks", []))
    return checks


def run(args) -> int:
    variant = load_variant_dir(args.variant_dir)
    checks = checks_from_report(args.results, str(variant.ref)) if args.results else []
    recipe_text = None
    if variant.recipe:
        recipe_file = args.variant_dir / Path(variant.recipe).name
        recipe_text = recipe_file.read_text() if recipe_file.is_file() else None
    card = full_card(metadata_yaml(variant, checks), render_card_body(variant, checks, recipe_text=recipe_text))
    if args.output:
        write_atomic(args.output, card)
    else:
        print(card, end="")
    return 0
