"""`promotion-bot card VARIANT_DIR`: the variant's model card (Hugging Face metadata + Markdown)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.card import full_card, metadata_yaml, render_card_body
from bot.errors import InputError
from bot.output import write_atomic
from bot.results import CheckResult
from bot.zoo import VariantRef, complete, parse_variant


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
        raise InputError(str(path), "", "does not exist", "pass a variant folder such as models/canopy-tiny/v1.3-int4-g64")
    ref = VariantRef(folder.parent.name, folder.name)
    variant = parse_variant(ref, path.read_text())

    def local(repo_path: str) -> Path:  # repo paths of the variant's files, under the folder given
        return folder / repo_path.removeprefix(variant.folder + "/")

    def read_text(repo_path: str) -> str | None:
        return local(repo_path).read_text() if local(repo_path).is_file() else None

    def size_of(repo_path: str) -> int | None:
        files = [f for f in local(repo_path).rglob("*") if f.is_file()] if local(repo_path).is_dir() else []
        return sum(f.stat().st_size for f in files) if files else None

    return complete(variant, read_text, size_of)


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
