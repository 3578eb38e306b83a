"""`promotion.yaml`: environments in promotion order, each with its gate, plus the zoo's baselines.

Parsed once into frozen types; every error names the field path and the fix. `rollback:` and
`probes:` are parsed by their modules beside this one; each gate entry's options by its check,
looked up through the `check` the caller hands in (`bot.checks.load_policy` plugs in the check
registry, which lives above the policy), so an unknown check, a bad threshold or a typo in a
rollback rule fails here, before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bot.core.errors import InputError, UnknownKeyError
from bot.core.fields import (
    Loc,
    did_you_mean,
    get_bool,
    get_duration,
    get_int,
    get_str,
    get_str_list,
    mapping,
    parse_percent,
    reject_unknown,
    sequence,
)
from bot.core.paths import check_repo_path
from bot.core.yamlio import load_one
from bot.policy.probes import ProbePolicy, parse_probes
from bot.policy.rollback import RollbackPolicy, parse_rollback
from bot.policy.variant_refs import VariantRefRule, VariantRefs, parse_variant_ref
from bot.verdicts.evidence import VerdictRule
from bot.zoo.variants import NAMING_FIX, VARIANT_NAME

POLICY_FILE = "promotion.yaml"
ENVIRONMENTS_ROOT = "environments"
DEFAULT_TIMEOUT_S = 3600.0
ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class CheckSpec:
    """One entry of a gate: the check's name, its parsed options and how to run it."""

    name: str
    options: Any
    raw: Mapping[str, Any]
    timeout_s: float
    runs_on: tuple[str, ...]
    shards: int
    loc: Loc
    rule: VerdictRule = VerdictRule()


@dataclass(frozen=True)
class Environment:
    name: str
    folder: str
    gate: tuple[CheckSpec, ...]
    baseline: str | None  # None: the model's baseline; "deployed": what the environment served before
    require_canary: bool
    rollback: RollbackPolicy | None  # None when the environment has no `rollback:`
    probes: ProbePolicy | None  # None when it has no `probes:`
    index: int
    fail_fast: bool = True  # skip a promotion's remaining model checks once one failed
    variant_ref: VariantRefRule = VariantRefRule()  # its own `variant_ref:`, else the policy's
    ignore: tuple[str, ...] = ()  # globs, relative to ``folder``, of files Argo CD does not apply


@dataclass(frozen=True)
class Limits:
    """Bounds on what one PR may ask for: hostile or mistaken PRs must not plan without end."""

    max_promotions: int = 1000
    max_model_jobs: int = 100  # lm-eval, app-flow and GuideLLM jobs, after identical ones are merged


@dataclass(frozen=True)
class Policy:
    file: str
    environments: tuple[Environment, ...]
    baselines: Mapping[str, str]  # model -> baseline variant name
    variant_ref: VariantRefs  # `.for_path(manifest)`: the rule of the environment holding it
    zoo_require: tuple[str, ...]
    templates: str | None
    serve: Mapping[str, Any]
    default_runs_on: tuple[str, ...]
    limits: Limits = Limits()
    zoo_immutable: bool = True  # a deployed variant's files never change; False: a change re-gates where it is served
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def environment_for_path(self, path: str) -> Environment | None:
        return next((e for e in self.environments if path.startswith(e.folder + "/")), None)

    def previous(self, env: Environment) -> Environment | None:
        return self.environments[env.index - 1] if env.index > 0 else None


ZOO_FACTS = ("recipe", "calibration", "weights", "quantization", "results", "known_issues")


# A check's name → its definition (`parse_options`, `inline`...); raises InputError for an unknown one.
CheckLookup = Callable[[str, Loc], Any]


def parse_policy(text: str, file: str, check: CheckLookup) -> Policy:
    root = Loc(file)
    data = mapping(load_one(text, file) or {}, root)
    reject_unknown(data, {"version", "variant_ref", "models", "zoo", "environments", "serve", "templates", "runners",
                          "limits"}, root)
    version = data.get("version", 1)
    if version != 1:
        raise root.child("version").error(f"version {version!r} is not supported", "use `version: 1`")

    models_loc = root.child("models")
    baselines: dict[str, str] = {}
    for model, spec in mapping(data.get("models") or {}, models_loc).items():
        m_loc = models_loc.child(str(model))
        spec = mapping(spec, m_loc)
        reject_unknown(spec, {"baseline"}, m_loc)
        baselines[str(model)] = get_str(spec, "baseline", m_loc)
        if not VARIANT_NAME.fullmatch(baselines[str(model)]):
            raise m_loc.child("baseline").error(f"{baselines[str(model)]!r} is not a variant name", NAMING_FIX)

    variant_ref = parse_variant_ref(data.get("variant_ref"), root.child("variant_ref"))

    zoo_loc = root.child("zoo")
    zoo = mapping(data.get("zoo") or {}, zoo_loc)
    reject_unknown(zoo, {"require", "immutable"}, zoo_loc)
    immutable = get_bool(zoo, "immutable", zoo_loc, True)
    require = tuple(str(x) for x in sequence(zoo.get("require", ["recipe", "calibration", "weights"]), zoo_loc.child("require")))
    for i, fact in enumerate(require):
        if fact not in ZOO_FACTS:
            raise zoo_loc.child("require").child(i).error(f"{fact!r} is not a zoo fact", f"use one of {', '.join(ZOO_FACTS)}")

    runners_loc = root.child("runners")
    runners = mapping(data.get("runners") or {}, runners_loc)
    reject_unknown(runners, {"default"}, runners_loc)
    default_runs_on = _labels(runners.get("default", ["ubuntu-latest"]), runners_loc.child("default"))

    limits_loc = root.child("limits")
    raw_limits = mapping(data.get("limits") or {}, limits_loc)
    reject_unknown(raw_limits, {"max_promotions", "max_model_jobs"}, limits_loc)
    limits = Limits(max_promotions=get_int(raw_limits, "max_promotions", limits_loc, Limits.max_promotions, minimum=1),
                    max_model_jobs=get_int(raw_limits, "max_model_jobs", limits_loc, Limits.max_model_jobs, minimum=1))

    templates = data.get("templates")
    if templates is not None:
        templates = check_repo_path(str(templates), file=file, field="templates")

    env_loc = root.child("environments")
    raw_envs = sequence(data.get("environments"), env_loc) if "environments" in data else None
    if not raw_envs:
        raise env_loc.error("is required and must list at least one environment", "list them in promotion order: test, staging, prod")
    environments = []
    seen: set[str] = set()
    for i, raw_env in enumerate(raw_envs):
        e_loc = env_loc.child(i)
        env = mapping(raw_env, e_loc)
        reject_unknown(env, {"name", "folder", "gate", "baseline", "require_canary", "fail_fast", "rollback", "probes",
                             "variant_ref", "ignore"}, e_loc)
        name = get_str(env, "name", e_loc)
        if not ENV_NAME.match(name):
            raise e_loc.child("name").error(f"{name!r} is not a valid environment name", "use lowercase letters, digits and dashes")
        if name in seen:
            raise e_loc.child("name").error(f"environment {name!r} is listed twice", "list each environment once")
        seen.add(name)
        folder = check_repo_path(str(env.get("folder") or f"{ENVIRONMENTS_ROOT}/{name}"), file=file, field=f"{e_loc.path}.folder")
        gate = tuple(_parse_check(raw, e_loc.child("gate").child(j), check, default_runs_on)
                     for j, raw in enumerate(sequence(env.get("gate") or [], e_loc.child("gate"))))
        baseline = env.get("baseline")
        if baseline is not None and (not isinstance(baseline, str)
                                     or (baseline != "deployed" and not VARIANT_NAME.fullmatch(baseline))):
            raise e_loc.child("baseline").error(f"must be `deployed` or a variant name like v1.0-fp16, got {baseline!r}",
                                                "write `baseline: deployed` (what the environment served before) "
                                                "or name a variant folder, e.g. `baseline: v1.0-bf16`")
        rollback = env.get("rollback")
        if rollback is not None:
            rollback = parse_rollback(mapping(rollback, e_loc.child("rollback")), e_loc.child("rollback"))
        probes = env.get("probes")
        if probes is not None:
            probes = parse_probes(mapping(probes, e_loc.child("probes")), e_loc.child("probes"))
        require_canary = get_bool(env, "require_canary", e_loc, False)
        fail_fast = get_bool(env, "fail_fast", e_loc, True,
                             "true skips the model checks left once one fails; false runs them all")
        ignore = get_str_list(env, "ignore", e_loc)
        for j, glob in enumerate(ignore):
            if glob.startswith("/") or ".." in glob.split("/"):
                raise e_loc.child("ignore").child(j).error(f"{glob!r} must be relative to the environment's folder",
                                                           "write e.g. `ignore: [kustomization.yaml, drafts/*]`")
        environments.append(Environment(
            name=name, folder=folder, gate=gate, baseline=baseline, require_canary=require_canary,
            rollback=rollback, probes=probes, index=i, fail_fast=fail_fast,
            variant_ref=parse_variant_ref(env.get("variant_ref"), e_loc.child("variant_ref"), variant_ref),
            ignore=ignore,
        ))

    serve = mapping(data.get("serve") or {}, root.child("serve"))
    return Policy(
        file=file,
        environments=tuple(environments),
        baselines=baselines,
        variant_ref=VariantRefs(variant_ref, tuple((e.folder, e.variant_ref) for e in environments)),
        zoo_require=require,
        templates=templates,
        serve=serve,
        default_runs_on=default_runs_on,
        limits=limits,
        zoo_immutable=immutable,
        raw=data,
    )


def _labels(value: Any, loc: Loc) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in sequence(value, loc))


# Keys of every gate entry; the rest are the check's own options.
CHECK_ENTRY_KEYS = {"check", "timeout", "runs_on", "shards", "confidence", "decide", "on_inconclusive"}


def _parse_rule(spec: Mapping[str, Any], loc: Loc) -> VerdictRule:
    confidence = parse_percent(spec["confidence"], loc.child("confidence")) if "confidence" in spec else 0.95
    if not 0.5 <= confidence < 1:
        raise loc.child("confidence").error(f"must be a level between 50% and 99.99%, got {spec['confidence']!r}",
                                            "use e.g. `confidence: 95%`")
    choices = {"decide": ("interval", "estimate"), "on_inconclusive": ("fail", "pass")}
    chosen = {}
    for key, allowed in choices.items():
        value = spec.get(key, allowed[0])
        if value not in allowed:
            raise loc.child(key).error(f"must be one of {', '.join(allowed)}, got {value!r}")
        chosen[key] = value
    return VerdictRule(confidence=confidence, **chosen)


def _parse_check(raw: Any, loc: Loc, check: Callable[[str, Loc], Any], default_runs_on: tuple[str, ...]) -> CheckSpec:
    spec = mapping(raw, loc)
    name = get_str(spec, "check", loc)
    definition = check(name, loc.child("check"))
    raw_options = {k: v for k, v in spec.items() if k not in CHECK_ENTRY_KEYS}
    try:
        options = definition.parse_options(raw_options, loc)
    except UnknownKeyError as exc:  # a mistyped entry key (`timout:`) reaches the check's parser, which lacks it
        if exc.field != f"{loc.path}.{exc.key}":
            raise  # a key inside one of the check's own options
        close = did_you_mean(exc.key, CHECK_ENTRY_KEYS)
        if close and did_you_mean(exc.key, exc.allowed) is None:
            raise loc.child(exc.key).error(exc.message, f"did you mean `{close}`?") from exc
        if not exc.allowed:
            raise loc.child(exc.key).error(exc.message, f"check `{name}` has no options of its own; every entry takes "
                                                        f"{', '.join(sorted(CHECK_ENTRY_KEYS))}") from exc
        raise
    timeout_s = get_duration(spec, "timeout", loc, definition.default_timeout_s)
    runs_on = _labels(spec["runs_on"], loc.child("runs_on")) if "runs_on" in spec else (definition.default_runs_on or default_runs_on)
    shards = spec.get("shards", 1)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise loc.child("shards").error(f"must be a whole number ≥ 1, got {shards!r}")
    if shards > 1 and not definition.shardable:
        raise loc.child("shards").error(f"check {name!r} cannot be split into shards", "remove `shards:`")
    return CheckSpec(name=name, options=options, raw=raw_options, timeout_s=timeout_s,
                     runs_on=runs_on, shards=shards, loc=loc, rule=_parse_rule(spec, loc))



def baseline_problems(policy: Policy, zoo, *, new_models: bool = True) -> list[InputError]:
    """Every baseline the policy names that the zoo (``zoo``: `bot.zoo.variants.Zoo` at the base revision)
    lacks, checked whether or not a gate uses it: a typo must not wait for the first check that needs it.

    A model with no variants at all is new: its baseline comes with the PR that adds it (the
    checks say so), unless ``new_models`` is False (`validate`, which lints one revision alone).
    """
    problems: list[InputError] = []
    known_models = zoo.models()
    present: list[str] = []
    for model, baseline in policy.baselines.items():
        variants = zoo.variants_of(model) if model in known_models else []
        if not variants:
            if not new_models:
                close = did_you_mean(model, known_models)
                problems.append(InputError(policy.file, f"models.{model}", f"names model {model!r} but the zoo has no "
                                           f"models/{model}/", f"did you mean `{close}`?" if close else
                                           f"add models/{model}/<variant>/variant.yaml, or remove the entry"))
            continue
        present.append(model)
        if baseline not in variants:
            problems.append(_missing_baseline(policy.file, f"models.{model}.baseline", model, baseline, variants))
    for env in policy.environments:
        if env.baseline is None or env.baseline == "deployed":
            continue
        for model in present or known_models:
            variants = zoo.variants_of(model)
            if env.baseline not in variants:
                problems.append(_missing_baseline(policy.file, f"environments[{env.index}].baseline", model,
                                                  env.baseline, variants))
    return problems


def _missing_baseline(file: str, field: str, model: str, baseline: str, variants: list[str]) -> InputError:
    close = did_you_mean(baseline, variants)
    fix = f"did you mean `{close}`?" if close else f"existing variants of {model}: {', '.join(variants)}"
    return InputError(file, field, f"baseline {model}/{baseline} does not exist: there is no models/{model}/{baseline}/",
                      fix)
