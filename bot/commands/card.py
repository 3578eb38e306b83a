"""`promotion-bot card VARIANT_DIR`: the variant's model card (Hugging Face metadata + Markdown).

Without `--results`, the numbers are the latest the gates recorded for the variant in the
repository's notes (`refs/notes/promotion-bot`): each check's newest result, whichever
environment's gate ran it, named in the card.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.errors import InputError
from bot.core.output import write_atomic
from bot.render.card import full_card, metadata_yaml, recorded_card, render_card_body
from bot.vcs.notes import GitNotes
from bot.verdicts.results import CheckResult
from bot.zoo.records import all_records
from bot.zoo.variants import ZOO_ROOT, VariantRef, card_facts, complete, parse_variant


def register(sub) -> None:
    p = sub.add_parser("card", help="render a variant's model card")
    p.add_argument("variant_dir", type=Path, help="models/<model>/<variant>/")
    p.add_argument("--results", type=Path, help="a JSON report from `check`: its numbers for this variant go into the card "
                                                "(default: the latest results the gates recorded in the repo's notes)")
    p.add_argument("--repo", type=Path, help="the GitOps repository holding the recorded results "
                                             "(default: the one VARIANT_DIR is in)")
    p.add_argument("-o", "--output", type=Path, help="write the card here (default: stdout)")
    p.set_defaults(func=run)


def load_variant_dir(folder: Path):
    folder = folder.resolve()
    path = folder / "variant.yaml"
    if not path.is_file():
        raise InputError(str(path), "", "does not exist", f"pass a variant folder such as {_example_variant(folder)}")
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


def sibling_variant(folder: Path, ref: str | None):
    """The baseline's variant.yaml next to the variant's folder (models/<model>/<baseline>/)."""
    if not ref or "/" not in ref:
        return None
    path = folder.resolve().parent / ref.split("/", 1)[1] / "variant.yaml"
    return parse_variant(VariantRef(*ref.split("/", 1)), path.read_text()) if path.is_file() else None


def run(args) -> int:
    variant = load_variant_dir(args.variant_dir)
    recipe_text = None
    if variant.recipe:
        recipe_file = args.variant_dir / Path(variant.recipe).name
        recipe_text = recipe_file.read_text() if recipe_file.is_file() else None
    baseline = variant.base_model if "/" in variant.base_model else None
    if args.results:
        checks = checks_from_report(args.results, str(variant.ref))
        facts = card_facts(variant, baseline=baseline if checks else None, recipe_text=recipe_text,
                           baseline_variant=sibling_variant(args.variant_dir, baseline))
        card = full_card(metadata_yaml(facts, checks), render_card_body(facts, checks))
    else:
        notes = GitNotes(args.repo or args.variant_dir.resolve().parents[2])
        records = all_records(notes.all()) if notes.is_repository() else []
        latest = [r.baseline for r in records if r.variant == str(variant.ref) and r.baseline]
        baseline = latest[-1] if latest else baseline
        card = recorded_card(variant, records, baseline_variant=sibling_variant(args.variant_dir, baseline),
                             recipe_text=recipe_text)
    if args.output:
        write_atomic(args.output, card)
    else:
        print(card, end="")
    return 0
