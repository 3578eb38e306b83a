"""`zoo`: the candidate exists, follows the naming scheme and carries the metadata the policy requires."""

from __future__ import annotations

from bot.checks import CheckDefinition, register
from bot.core.fields import did_you_mean
from bot.policy.model import CHECK_ENTRY_KEYS
from bot.verdicts.results import FAIL, PASS, CheckResult


@register
class ZooCheck(CheckDefinition):
    name = "zoo"
    summary = "the variant exists in the zoo with the metadata the policy requires"

    def parse_options(self, raw, loc):
        for key in raw:
            close = did_you_mean(str(key), CHECK_ENTRY_KEYS)
            raise loc.child(str(key)).error(
                "is not a setting of check `zoo`, which has no options of its own",
                (f"did you mean `{close}`? " if close else "") + "What it requires is set once for the whole zoo, "
                "at the top of the policy: `zoo: {require: [recipe, calibration, weights]}`; a gate entry also takes "
                + ", ".join(sorted(CHECK_ENTRY_KEYS - {"check"})))
        return super().parse_options(raw, loc)  # nothing left: the common parse, as for every check

    def run(self, ctx, options) -> CheckResult:
        variant = ctx.candidate  # raises InputError (→ error) when missing or misnamed
        problems = list(metadata_problems(ctx.reader, ctx.head, variant, ctx.policy.zoo_require))
        found = "; ".join(metadata_found(variant, ctx.policy.zoo_require)) or "its folder (nothing else is required)"
        detail = "; ".join(problems) if problems else f"{variant.ref} has {found}"
        return CheckResult(
            name=self.name, verdict=FAIL if problems else PASS,
            candidate=str(variant.ref), threshold="requires " + (", ".join(ctx.policy.zoo_require) or "nothing"),
            detail=detail,
        )


def metadata_found(variant, require: tuple[str, ...]):
    """What the variant actually carries for each required fact, in words (only called without problems)."""
    quantized = variant.is_quantized
    exempt = f"not needed for the unquantized {variant.name.precision}"
    for fact in require:
        if fact == "quantization":
            q = variant.quantization
            yield f"quantization {q.algorithm} {q.scheme}".rstrip() if quantized else f"quantization {q.algorithm} ({exempt})"
        elif fact == "recipe":
            yield f"recipe {variant.recipe}" if quantized else f"recipe {exempt}"
        elif fact == "calibration":
            c = variant.calibration
            if not quantized:
                yield f"calibration {exempt}"
            else:
                counts = ", ".join(f"{n} {what}" for n, what in ((c.samples, "samples"), (c.sequence_length, "tokens each"))
                                   if n is not None)
                yield f"calibration {c.dataset}" + (f" ({counts})" if counts else "") + (f" in {c.file}" if c.file else "")
        elif fact == "weights":
            w = variant.weights
            yield f"weights {w.path}/" if w.path else f"weights {w.uri} @ {w.revision}"
        elif fact == "results":
            yield f"results ({', '.join(sorted(map(str, variant.results)))})"
        elif fact == "known_issues":
            yield f"known_issues ({len(variant.known_issues)})"


def metadata_problems(reader, rev: str, variant, require: tuple[str, ...]):
    """Human-readable gaps between a variant's metadata and what the policy requires."""
    quantized = variant.is_quantized
    if "quantization" in require and variant.quantization is None:
        yield "variant.yaml has no `quantization`"
    if "recipe" in require and quantized:
        if not variant.recipe:
            yield "variant.yaml has no `recipe`"
        elif not reader.exists(rev, variant.recipe):
            yield f"recipe {variant.recipe} does not exist"
    if "calibration" in require and quantized:
        if variant.calibration is None:
            yield "variant.yaml has no `calibration`"
        elif variant.calibration.file and not reader.exists(rev, variant.calibration.file):
            yield f"calibration file {variant.calibration.file} does not exist"
    if "weights" in require:
        w = variant.weights
        if w is None:
            yield "variant.yaml has no `weights`"
        elif w.path and not reader.exists(rev, w.path):
            yield f"weights folder {w.path} does not exist"
        elif w.uri and not w.revision:
            yield f"weights uri {w.uri} is not pinned: add `revision:`"
    if "results" in require and not variant.results:
        yield "variant.yaml has no recorded `results`"
    if "known_issues" in require and "known_issues" not in variant.raw:
        yield "variant.yaml has no `known_issues` list (write `known_issues: []` if none)"
    q = variant.quantization
    if q is not None and quantized:
        if variant.name.bits is not None and q.bits is not None and q.bits != variant.name.bits:
            yield f"folder says {variant.name.precision} but quantization.bits is {q.bits}"
        if variant.name.group_size is not None and q.group_size is not None and q.group_size != variant.name.group_size:
            yield f"folder says g{variant.name.group_size} but quantization.group_size is {q.group_size}"
