"""`promotion-bot zoo`: every variant, its precision and config, what metadata it has, where it runs."""

from __future__ import annotations

from bot.errors import InputError
from bot.manifests import ManifestIndex
from bot import policy_load
from bot.vcs.reader import GitReader
from bot.zoo import VariantRef, Zoo, parse_variant_name


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the model zoo and where each variant is deployed", description=__doc__)
    p.add_argument("--repo", default=".", help="path of the GitOps repository (default: .)")
    p.add_argument("--rev", default="HEAD", help="the revision to read the zoo, the policy and the environments at "
                                                 "(default: HEAD)")
    p.set_defaults(func=run)


def zoo_rows(reader, rev: str) -> list[dict]:
    policy = policy_load.from_rev(reader, rev)
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
            row = {"variant": str(ref), "precision": "?", "config": "", "recipe": False, "calibration": False,
                   "results": False, "environments": sorted(set(deployed.get(ref, []))), "problem": ""}
            try:
                parsed = parse_variant_name(name, file=ref.folder)
                row["precision"], row["config"] = parsed.precision, parsed.config or ""
                v = zoo.get(ref)
                row["recipe"] = bool(v.recipe and reader.exists(rev, v.recipe))
                row["calibration"] = v.calibration is not None
                row["results"] = bool(v.results or v.measured)
            except InputError as exc:
                row["problem"] = str(exc)
            rows.append(row)
    return rows


def run(args) -> int:
    reader = GitReader(args.repo)
    try:
        rows = zoo_rows(reader, reader.resolve(args.rev))
    finally:
        reader.close()
    yes = {True: "yes", False: "-"}
    header = f"{'variant':34} {'precision':9} {'config':8} {'recipe':6} {'calib':6} {'results':7} environments"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['variant']:34} {r['precision']:9} {r['config']:8} {yes[r['recipe']]:6} {yes[r['calibration']]:6} "
              f"{yes[r['results']]:7} {', '.join(r['environments']) or '-'}")
        if r["problem"]:
            print(f"    problem: {r['problem']}")
    return 2 if any(r["problem"] for r in rows) else 0
