"""`promotion-bot demo`: the embedded demo, a promotion walked through test, staging and prod."""

from __future__ import annotations

from pathlib import Path

from bot.core.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("demo", help="play the canopy demo story on a throwaway GitOps repo", description=__doc__)
    p.add_argument("--source", type=Path, default=Path("."),
                   help="the folder holding the demo GitOps content: promotion.yaml, environments/, models/, evals/ (default: .)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="where comments, cards and reports go (default: demo-output)")
    p.add_argument("--cache", type=Path, help="baseline result cache (default: <out>/../.demo-cache)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bot.demo.story import main

    source = args.source.resolve()
    if not (source / "promotion.yaml").is_file():
        raise InputError(str(source / "promotion.yaml"), "", "does not exist",
                         "run the demo from a clone of promotion-bot, or pass --source with its path")
    out = args.out.resolve()
    # The cache sits beside the output folder so a rerun keeps the baseline results.
    cache = (args.cache or out.parent / ".demo-cache").resolve()
    return main(source, out, cache)
