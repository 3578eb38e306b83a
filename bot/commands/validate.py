"""`promotion-bot validate`: lint a whole repository at one revision with the errors a PR would get.

The policy, every variant of the zoo (what `zoo.require` asks of it, and its weights against its
declared quantization), the baselines the policy
names, every environment's manifests and the variants they serve, the app-flow suites and the
lm-eval tasks the gates use. One message per problem; exit 0 when there is none, 2 otherwise.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bot.appflows.suite import load_suites
from bot.checks import load_policy
from bot.checks.zoo_check import declaration_errors, metadata_problems
from bot.core.errors import InputError
from bot.gitops.manifests import ManifestIndex, is_ignored, is_manifest, parse_objects
from bot.lmeval.options import DEFAULT_TASKS_DIR, EvalOptions
from bot.lmeval.tasks import index_local, prepare
from bot.monitor.engine_metrics import VLLM_VERSION, unknown_engine_metrics
from bot.policy.model import Policy, baseline_problems
from bot.policy.variant_refs import DEFAULT_ANNOTATION
from bot.vcs.reader import GitReader
from bot.zoo.variants import VariantRef, Zoo, parse_variant_name

DEFAULT_REQUIRE = ("recipe", "calibration", "weights")


def register(sub) -> None:
    p = sub.add_parser("validate", help="lint a repository at a revision: policy, zoo, manifests, suites, tasks",
                       description=__doc__)
    p.add_argument("--repo", default=".", help="path of the GitOps repository (default: .)")
    p.add_argument("--rev", default="HEAD", help="the revision to lint (default: HEAD)")
    p.set_defaults(func=run)


def problems_at(reader, rev: str) -> list[InputError]:
    """Every problem a PR at ``rev`` could run into, each once."""
    found: list[InputError] = []
    try:
        policy: Policy | None = load_policy.from_rev(reader, rev)
    except InputError as exc:
        found.append(exc)
        policy = None
    zoo = Zoo(reader, rev)
    found += _variants(reader, rev, zoo, policy.zoo_require if policy else DEFAULT_REQUIRE)
    if policy is not None:
        found += baseline_problems(policy, zoo, new_models=False)
        applications = {}
        for env in policy.environments:
            found += _environment(reader, rev, policy, env, zoo, applications)
        found += _suites_and_tasks(reader, rev, policy, applications)
        found += rollback_metric_problems(policy)
    unique: dict[str, InputError] = {}
    for problem in found:
        unique.setdefault(str(problem), problem)
    return list(unique.values())


def rollback_metric_problems(policy: Policy) -> list[InputError]:
    """Rollback rules (the built-in ones included) whose queries name a `vllm:` metric vLLM does not
    export: such a rule would have no data in prod, and its `on_no_data` would stand in for it."""
    found = []
    for env in policy.environments:
        for rule in (env.rollback.rules if env.rollback is not None else ()):
            file, _, field = rule.field.partition(": ")
            for name, hint in unknown_engine_metrics(rule.query):
                found.append(InputError(file, f"{field}.query" if field else "query",
                                        f"rule {rule.name} queries {name}, which vLLM {VLLM_VERSION} does not export",
                                        f"use {hint}" if hint else "name a metric of vLLM's /metrics (docs/vllm.md)"))
    return found


def _variants(reader, rev: str, zoo: Zoo, require: tuple[str, ...]) -> list[InputError]:
    found = []
    for model in zoo.models():
        for name in zoo.variants_of(model):
            ref = VariantRef(model, name)
            try:
                parse_variant_name(name, file=ref.folder, field="folder name")
                variant = zoo.get(ref)
            except InputError as exc:
                found.append(exc)
                continue
            problems = [InputError(f"{ref.folder}/variant.yaml", "", f"zoo check: {problem}",
                                   f"the policy's `zoo.require` asks for {', '.join(require)}")
                        for problem in metadata_problems(reader, rev, variant, require)]
            found += problems
            if not problems:
                try:  # the weights against the declaration, as the zoo check reads them
                    declaration_errors(reader, rev, variant)
                except InputError as exc:
                    found.append(exc)
    return found


def _environment(reader, rev: str, policy: Policy, env, zoo: Zoo, applications: dict) -> list[InputError]:
    if not reader.list_files(rev, env.folder):
        return [InputError(policy.file, f"environments[{env.index}].folder",
                           f"{env.folder}/ holds no files at {rev[:12]}, so nothing can be promoted into {env.name}",
                           f"commit {env.name}'s manifests there, or set `folder:` to where Argo CD reads them")]
    index = ManifestIndex(reader, rev, policy)
    try:
        objects = index.environment_objects(env)
    except InputError as exc:
        return _every_file(reader, rev, policy, env, index, exc)
    found = []
    if not objects:
        rule = env.variant_ref
        how = (f"the annotation `{rule.annotation}`" + "".join(f" or the field `{f.field}`" for f in rule.fields)
               + "".join(f" or `{v.field}` of {v.file}" for v in rule.values))
        # What `check` says of a PR touching this environment: the bot cannot see which model it serves.
        found.append(InputError(env.folder, "", f"no object names a zoo variant through {how}, so the bot cannot "
                                "see which model it serves and a PR changing it would be an error",
                                f"name the variant where the model is set: `{DEFAULT_ANNOTATION}: <model>/<variant>` "
                                "on the serving object, `variant_ref` fields, or `variant_ref.values` for a Helm "
                                "values file"))
    for obj in objects:
        applications.setdefault(env.name, set()).add(obj.application)
        try:
            zoo.get(obj.ref, named_in=obj.manifest, field=obj.object)
        except InputError as exc:
            found.append(exc)
    return found


def _every_file(reader, rev: str, policy: Policy, env, index: ManifestIndex, first: InputError) -> list[InputError]:
    """Every manifest's own problem in a directory environment, not only the first one reading stops
    at (a kustomize environment renders as one, so its first problem is the one)."""
    if index.renders_with_kustomize(env):
        return [first]
    found = [first]
    values = {f"{env.folder}/{v.file}" for v in env.variant_ref.values}
    files = [p for p in reader.list_files(rev, env.folder) if is_manifest(p) and not is_ignored(env, p) and p not in values]
    for path, text in reader.read_many(rev, files).items():
        try:
            parse_objects(text or "", path, policy.variant_ref, affixes=(env.name,))
        except InputError as exc:
            found.append(exc)
    return found


def _suites_and_tasks(reader, rev: str, policy: Policy, applications: dict) -> list[InputError]:
    found = []
    try:  # every task YAML, used by a gate or not, parses and imports no code unasked
        index_local(reader, rev, DEFAULT_TASKS_DIR)
    except InputError as exc:
        found.append(exc)
    with tempfile.TemporaryDirectory(prefix="promotion-bot-validate-") as tmp:
        for env in policy.environments:
            folders = set()
            for spec in env.gate:
                if spec.name == "app-flows":
                    folders |= ({spec.options.suites} if spec.options.suites
                                else {f"evals/{app}" for app in applications.get(env.name, ())})
                elif isinstance(spec.options, EvalOptions):
                    try:
                        prepare(reader, rev, spec.options, Path(tmp) / "tasks", policy_file=policy.file)
                    except InputError as exc:
                        found.append(exc)
            if env.probes is not None:
                folders |= ({env.probes.suites} if env.probes.suites
                            else {f"evals/{app}" for app in applications.get(env.name, ())})
            for folder in sorted(folders):
                try:
                    load_suites(reader, rev, folder)
                except InputError as exc:
                    found.append(exc)
    return found


def run(args) -> int:
    reader = GitReader(args.repo)
    try:
        rev = reader.resolve(args.rev)
        problems = problems_at(reader, rev)
    finally:
        reader.close()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) at {rev[:12]}")
        return 2
    print(f"ok: {args.repo} at {rev[:12]}: the policy, the zoo, the manifests, suites and tasks the gates use")
    return 0
