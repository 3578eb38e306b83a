"""`zoo`: the candidate exists, follows the naming scheme, carries the metadata the policy requires,
and its weights are what it declares: one weight set every loader reads (`bot.zoo.weights`) and
the quantization `variant.yaml` states (`bot.zoo.quantization`), read from the commit's blobs."""

from __future__ import annotations

import json

from bot.checks import CheckDefinition, register
from bot.core.errors import InputError
from bot.core.fields import did_you_mean
from bot.core.yamlio import load_one
from bot.policy.model import CHECK_ENTRY_KEYS
from bot.verdicts.results import FAIL, PASS, CheckResult
from bot.zoo import quantization
from bot.zoo.weights import Source, has_weights, weight_set

_MAX_CONFIG = 16 * 1024 * 1024


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
        if not problems:
            declaration_errors(ctx.reader, variant.source or ctx.head, variant)
        found = "; ".join(metadata_found(variant, ctx.policy.zoo_require)) or "its folder (nothing else is required)"
        detail = "; ".join(problems) if problems else f"{variant.ref} has {found}"
        return CheckResult(
            name=self.name, verdict=FAIL if problems else PASS,
            candidate=str(variant.ref), threshold="requires " + (", ".join(ctx.policy.zoo_require) or "nothing"),
            detail=detail,
        )


def declaration_errors(reader, rev: str, variant) -> None:
    """InputError when the weights are not the one set every loader reads, or not what variant.yaml
    declares; quiet for a variant whose weights live outside the repository or hold no tensors yet."""
    w = variant.weights
    file = f"{variant.folder}/variant.yaml"
    if w is None or not w.path or reader.kind(rev, w.path) != "folder":
        return
    source = Source.git(reader, rev, w.path)
    if not has_weights(source):
        return
    weights = weight_set(source, file=file)
    config = _json(reader, rev, f"{w.path}/config.json", file)
    recipe = None
    if variant.recipe and reader.kind(rev, variant.recipe) == "file":
        try:
            recipe = load_one(reader.read_text(rev, variant.recipe) or "", variant.recipe, unknown_tags=True)
        except InputError:
            recipe = None  # an unreadable recipe is not a statement about targets: the weights speak
    found = quantization.problems(variant, config, weights, source, recipe)
    if variant.calibration is not None and variant.calibration.data_free:
        found += [p for p in [quantization.data_free_problem(variant)] if p]
    if found:
        raise InputError(file, "quantization", "; ".join(found),
                         "make variant.yaml say what the weights are (the folder name too), or commit the weights "
                         "the declaration describes: vLLM serves what config.json and the tensors say")


def _json(reader, rev: str, path: str, file: str):
    if reader.kind(rev, path) != "file":
        return None
    if reader.blob_bytes(rev, [path]) > _MAX_CONFIG:
        raise InputError(file, "weights.path", f"{path} is larger than {_MAX_CONFIG // 2**20} MB, too large for a "
                         "config", "write the config with save_pretrained")
    try:
        return json.loads(reader.read_text(rev, path) or "{}")
    except ValueError as exc:
        raise InputError(file, "weights.path", f"{path} is not valid JSON ({exc})",
                         "write the config with save_pretrained") from None


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
            elif c.data_free:
                yield "calibration: none (a data-free scheme)"
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
        elif (kind := reader.kind(rev, variant.recipe)) != "file":
            yield f"recipe {variant.recipe} {_not_a('file', kind)}"
    if "calibration" in require and quantized:
        if variant.calibration is None:
            yield "variant.yaml has no `calibration`"
        elif variant.calibration.file and (kind := reader.kind(rev, variant.calibration.file)) != "file":
            yield f"calibration file {variant.calibration.file} {_not_a('file', kind)}"
    if "weights" in require:
        w = variant.weights
        if w is None:
            yield "variant.yaml has no `weights`"
        elif w.path and (kind := reader.kind(rev, w.path)) != "folder":
            yield f"weights folder {w.path} {_not_a('folder', kind)}"
        elif w.path and reader.kind(rev, f"{w.path}/config.json") != "file":
            yield f"weights folder {w.path} has no config.json, so no server can load it"
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


def _not_a(wanted: str, kind: str | None) -> str:
    """Why a required path does not count: it must be a plain file or folder of the revision."""
    if kind is None:
        return "does not exist"
    return f"is a {kind}, not a {wanted}" + (" of the revision (a link points at other content)" if kind == "symlink" else "")
