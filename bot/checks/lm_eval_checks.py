"""`perplexity`, `benchmarks` and `domain`: lm-eval on the candidate and the baseline, compared.

Each runs in its own child process (killed at its `timeout`). Task YAMLs and data come from the
base revision (see `bot.lmeval.tasks`); baseline results come from the cache when the baseline's
weights, the tasks, lm-eval and the options are unchanged (see `bot.lmeval.cache`). With a
`limit` above `sequential.min`, the documents are evaluated in looks that stop once the verdict is
settled (see `bot.lmeval.sequential`).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Iterator, Mapping

from bot.checks import CheckDefinition, register
from bot.core.errors import InputError
from bot.core.fields import Loc
from bot.core.output import write_atomic
from bot.lmeval import harness, sanity
from bot.lmeval.cache import BaselineCache, cache_key
from bot.lmeval.options import EvalOptions, parse_perplexity, parse_task_list
from bot.lmeval.tasks import prepare
from bot.verdicts.results import CheckResult
from bot.zoo.weights_safety import check_weights


class LmEvalCheck(CheckDefinition):
    inline = False
    needs_baseline = True
    default_timeout_s = 1800.0

    def run(self, ctx, options: EvalOptions) -> CheckResult:
        from bot.lmeval import sequential  # statistics: imported by a run, not by a policy read

        started = time.monotonic()
        candidate, baseline = ctx.candidate, ctx.baseline
        if options.backend == "hf":  # refuse unsafe candidate weights before minutes of baseline evaluation
            check_weights(ctx.weights_dir(candidate), file=f"{candidate.folder}/variant.yaml")
        ctx.progress(f"{self.name}: task definitions from the base revision {ctx.base[:12]}")
        prepared = prepare(ctx.reader, ctx.base, options, ctx.workdir / "lm-eval", policy_file=ctx.policy.file)

        def evaluate(role: str, documents: tuple[int, int] | None) -> dict:
            variant = candidate if role == "candidate" else baseline
            with model_target(ctx, variant, role, options) as target:
                return harness.run(target, prepared, options, progress=ctx.progress, documents=documents)

        weights_id = weights_identity(ctx, baseline, options)
        key = weights_id and cache_key(weights=weights_id, tasks_digest=prepared.digest,
                                       lm_eval_version=harness.lm_eval_version(),
                                       run_fingerprint=options.run_fingerprint())
        base = sequential.Baseline(evaluate, BaselineCache(ctx.cache_dir / "lm-eval", ctx.progress), key,
                                   {"variant": str(baseline.ref), "weights": weights_id, "tasks": list(prepared.names),
                                    "options": options.run_fingerprint()}, options, ctx.progress)
        if base.cached is not None:
            ctx.progress(f"{self.name}: baseline {baseline.ref} from the cache ({key[:12]})")
        plan, why_fixed = sequential.seq_plan(options, ctx.rule, lambda: harness.inspect(prepared, options))
        run = sequential.evaluate(evaluate, options, ctx.rule, base, candidate_variant=str(candidate.ref),
                                  baseline_variant=str(baseline.ref), plan=plan, progress=ctx.progress)

        artifacts = []
        for role, raw in (("baseline", run.baseline), ("candidate", run.candidate)):
            path = ctx.workdir / f"lm-eval-{role}.json"
            write_atomic(path, json.dumps(raw, indent=1, sort_keys=True) + "\n")
            artifacts.append(ctx.artifact(path))

        notes = []
        if ctx.baseline_is_new:
            notes.append(f"{baseline.ref} is new in this PR: the baseline comes from the PR itself, so review its files")
        if options.limit and run.looks is None:
            notes.append(f"lm-eval limit {options.limit}: at most {options.limit} samples per task")
        if why_fixed:
            notes.append(why_fixed)
        notes += run.notes
        notes += sanity.absurd_baseline(run.baseline.get("results") or {}, vocab_size(ctx, baseline, options))
        if candidate.is_quantized:
            notes += sanity.better_than_baseline(run.outcome.rows)
        findings = list(run.evaluations)
        if run.looks is not None:
            findings.append({"title": run.looks.stopped(), "sequential": run.looks.to_json()})
        detail = self.detail(run.outcome, options)
        return CheckResult(
            name=self.name, verdict=run.outcome.verdict,
            candidate=self.summary_value(run.outcome.rows, "candidate"),
            baseline=self.summary_value(run.outcome.rows, "baseline"),
            threshold=self.threshold_text(options), detail=f"{run.looks.stopped()}: {detail}" if run.looks else detail,
            rows=run.outcome.rows, notes=tuple(notes), findings=tuple(findings), artifacts=tuple(artifacts),
            wall_time_s=time.monotonic() - started,
        )

    def summary_value(self, rows, side: str) -> Any:
        return getattr(rows[0], side) if len(rows) == 1 else None

    def threshold_text(self, options: EvalOptions) -> str:
        return "; ".join(f"{t.name}: worse by ≤ {t.limit.describe()}" for t in options.tasks)

    def detail(self, outcome, options: EvalOptions) -> str:
        if outcome.problems:
            return "; ".join(outcome.problems)
        return "; ".join(outcome.changes) or f"no metrics compared on {', '.join(options.task_names)}"


def vocab_size(ctx, variant, options: EvalOptions) -> int | None:
    """The baseline's `vocab_size` from its config.json, where its weights are local; else None."""
    if options.backend != "hf":
        return None
    try:
        value = json.loads((ctx.weights_dir(variant) / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def weights_identity(ctx, variant, options: EvalOptions) -> str | None:
    """A digest that changes whenever the weights do; None: not cacheable (unpinned URI)."""
    w = variant.weights
    if w is not None and w.path:
        # The tree id of exactly what `weights_dir` exports (the variant's own revision): a content key.
        sha = ctx.reader.tree_sha(variant.source or ctx.head, w.path)
        if sha:
            return f"git-tree:{sha}"
    if w is not None and w.uri and w.revision:
        return f"uri:{w.uri}@{w.revision}"
    ctx.progress(f"{variant.ref}: weights are not pinned to a revision; its results are not cached")
    return None


@contextlib.contextmanager
def model_target(ctx, variant, role: str, options: EvalOptions) -> Iterator[harness.ModelTarget]:
    """The model as lm-eval should load it; for `local-completions`, served while the block runs."""
    ref = str(variant.ref)
    if options.backend == "hf":
        folder = ctx.weights_dir(variant)
        # Weights may come from the PR head: never run code that ships with them.
        check_weights(folder, file=f"{variant.folder}/variant.yaml")
        args = {"pretrained": str(folder), "dtype": options.dtype, "device": "cpu", "trust_remote_code": False}
        yield harness.ModelTarget(role, ref, "hf", args)
        return
    if options.tokenizer is None:
        raise InputError(ctx.policy.file, f"{options.where}.tokenizer",
                         "`backend: local-completions` needs a local tokenizer folder (the bot stays offline)",
                         "add `tokenizer: models/<model>/<variant>/weights`")
    tokenizer = ctx.workdir / "tokenizer"
    if not (tokenizer / options.tokenizer).exists():
        ctx.reader.export(ctx.base, options.tokenizer, tokenizer)
    check_weights(tokenizer / options.tokenizer, file=ctx.policy.file, field=f"{options.where}.tokenizer")
    with _endpoint(ctx, variant, options) as (completions_url, model_name):
        args = {"model": model_name, "base_url": completions_url, "tokenizer": str(tokenizer / options.tokenizer),
                "tokenizer_backend": "huggingface", "max_retries": 3}
        yield harness.ModelTarget(role, ref, "local-completions", args)


@contextlib.contextmanager
def _endpoint(ctx, variant, options: EvalOptions) -> Iterator[tuple[str, str]]:
    """`base_url` from the check's options, else the policy's `serve:` (bot.zoo.serving) endpoint."""
    ref = variant.ref
    if options.base_url:
        yield (options.base_url.format(model=ref.model, variant=ref.variant, name=str(ref)),
               (options.model_name or "{variant}").format(model=ref.model, variant=ref.variant, name=str(ref)))
        return
    from bot.zoo.serving import parse_serve, served

    spec = parse_serve(ctx.policy.serve, ctx.policy.file)
    weights = ctx.weights_dir(variant) if spec.mode != "url" else None
    with served(spec, weights, name=str(ref)) as endpoint:
        yield f"{endpoint.base_url}/completions", options.model_name or endpoint.model


@register
class PerplexityCheck(LmEvalCheck):
    name = "perplexity"
    summary = "perplexity of a loglikelihood_rolling task within a relative limit of the baseline (default +3%)"

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> EvalOptions:
        return parse_perplexity(raw, loc)


@register
class BenchmarksCheck(LmEvalCheck):
    name = "benchmarks"
    summary = "lm-eval tasks, each with an allowed drop in points"

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> EvalOptions:
        return parse_task_list(self.name, raw, loc, local_only=False)


@register
class DomainCheck(LmEvalCheck):
    name = "domain"
    summary = "the team's own lm-eval tasks under evals/, reading local data"

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> EvalOptions:
        return parse_task_list(self.name, raw, loc, local_only=True)

