"""`promotion-bot zoo`: every variant, where it runs and what its gates recorded.

The records are the Git notes the gate writes (`refs/notes/promotion-bot`, docs/model-zoo.md);
`--fetch` merges the remote's into the local ones first. `--compare MODEL` puts every variant of
a model side by side on the recorded metrics (`--json` for scripts).
"""

from __future__ import annotations

import json

from bot.checks import load_policy
from bot.core.errors import InputError
from bot.gitops.manifests import ManifestIndex
from bot.render.zoo_table import change_of, compare, compare_markdown, metric_key
from bot.vcs.notes import GitNotes
from bot.vcs.reader import GitReader
from bot.zoo.records import Record, all_records, landed_only, latest_per_environment, with_landing
from bot.zoo.variants import VariantRef, Zoo, parse_variant_name


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the model zoo, where each variant is deployed and its recorded gate results",
                       description=__doc__)
    p.add_argument("--repo", default=".", help="path of the GitOps repository (default: .)")
    p.add_argument("--rev", default="HEAD", help="the revision whose zoo and environments are listed")
    p.add_argument("--compare", metavar="MODEL", help="every variant of MODEL side by side on the recorded metrics")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--fetch", action="store_true", help="merge the remote's recorded results first (git fetch of the notes ref)")
    p.set_defaults(func=run)


def read_records(repo: str, *, fetch: bool = False) -> list[Record]:
    """Every record, each marked whether the tree it judged reached its branch (a PR's result until then)."""
    notes = GitNotes(repo)
    if fetch and notes.has_remote():
        notes.pull()
    return with_landing(all_records(notes.all()), notes.trees_on)


def key_metrics(record: Record) -> str:
    """Each compared metric, short, in the comment's words: `word_perplexity worse by 0.07%, acc better by 2.5 pt`."""
    parts = []
    for c in record.checks:
        for row in c.rows:
            change = change_of(row)
            if change is not None:
                parts.append(f"{metric_key(row.label)} {change.text(interval=False)}")
    return ", ".join(parts)


def zoo_rows(reader, rev: str, records: list[Record] | None = None) -> list[dict]:
    policy = load_policy.from_rev(reader, rev)
    index = ManifestIndex(reader, rev, policy)
    deployed: dict[VariantRef, list[str]] = {}
    for env in policy.environments:
        for obj in index.environment_objects(env):
            deployed.setdefault(obj.ref, []).append(env.name)
    zoo = Zoo(reader, rev)
    rows = []
    for model in zoo.models():
        for name in zoo.variants_of(model):
            ref = VariantRef(model, name)
            recorded = latest_per_environment(landed_only(records or []), str(ref))
            pending = latest_per_environment([r for r in records or [] if r.landed is False], str(ref))
            row = {"variant": str(ref), "precision": "?", "config": "", "recipe": False, "calibration": False,
                   "environments": sorted(set(deployed.get(ref, []))), "problem": "",
                   "results": {env: {"verdict": r.verdict, "recorded_at": r.recorded_at, "pr": r.pr, "commit": r.commit,
                                     "key_metrics": key_metrics(r)} for env, r in recorded.items()},
                   "pr_results": {env: {"verdict": r.verdict, "recorded_at": r.recorded_at, "pr": r.pr, "commit": r.commit,
                                        "branch": r.branch} for env, r in pending.items()
                                  if env not in recorded or r.recorded_at > recorded[env].recorded_at}}
            try:
                parsed = parse_variant_name(name, file=ref.folder)
                row["precision"], row["config"] = parsed.precision, parsed.config or ""
                v = zoo.get(ref)
                row["recipe"] = bool(v.recipe and reader.exists(rev, v.recipe))
                row["calibration"] = v.calibration is not None
            except InputError as exc:
                row["problem"] = str(exc)
            rows.append(row)
    return rows


def comparison(reader, rev: str, model: str, records: list[Record]) -> dict:
    policy = load_policy.from_rev(reader, rev)
    zoo = Zoo(reader, rev)
    if model not in zoo.models():
        raise InputError("--compare", "", f"no model {model!r} in the zoo at {rev[:12]}",
                         f"pass one of: {', '.join(zoo.models()) or 'none (add models/<model>/)'}")
    baseline_name = policy.baselines.get(model)
    baseline = zoo.get(VariantRef(model, baseline_name)) if baseline_name in zoo.variants_of(model) else None
    variants = [zoo.get(VariantRef(model, n)) for n in zoo.variants_of(model) if n != baseline_name]
    return compare(model, baseline, variants, landed_only(records))


def run(args) -> int:
    reader = GitReader(args.repo)
    try:
        rev = reader.resolve(args.rev)
        records = read_records(args.repo, fetch=args.fetch)
        if args.compare:
            table = comparison(reader, rev, args.compare, records)
            print(json.dumps(table, indent=2) if args.json else compare_markdown(table), end="\n" if args.json else "")
            return 0
        rows = zoo_rows(reader, rev, records)
    finally:
        reader.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 2 if any(r["problem"] for r in rows) else 0
    yes = {True: "yes", False: "-"}
    header = f"{'variant':34} {'precision':9} {'config':8} {'recipe':6} {'calib':6} environments"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['variant']:34} {r['precision']:9} {r['config']:8} {yes[r['recipe']]:6} {yes[r['calibration']]:6} "
              f"{', '.join(r['environments']) or '-'}")
        for env, res in r["results"].items():
            pr = f"PR #{res['pr']}" if res["pr"] else f"commit {res['commit'][:10]}"
            print(f"    {env:8} {res['verdict']:12} {res['recorded_at'][:16].replace('T', ' ')}Z  {pr}  "
                  f"{res['key_metrics'] or '(no compared metric)'}")
        for env, res in r["pr_results"].items():
            pr = f"PR #{res['pr']}" if res["pr"] else f"commit {res['commit'][:10]}"
            print(f"    {env:8} {res['verdict']:12} {res['recorded_at'][:16].replace('T', ' ')}Z  {pr}  "
                  f"(a PR's result: what it judged has not reached {res['branch'] or 'its branch'})")
        if r["problem"]:
            print(f"    problem: {r['problem']}")
    return 2 if any(r["problem"] for r in rows) else 0
