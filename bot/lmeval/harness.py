"""One lm-eval run on one model, through lm-eval's Python API, offline.

Runs inside the check's own child process (`CheckDefinition.inline = False`), which the runner
kills at the gate entry's `timeout`; anything lm-eval raises becomes an error, never a pass.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bot.core.errors import ExternalError, InputError
from bot.lmeval.options import EvalOptions
from bot.lmeval.tasks import VENDOR_FIX, PreparedTasks

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               # bootstrap stderr in-process: no fork pool inside a check that is already a child
               "DISABLE_MULTIPROC": "1", "TOKENIZERS_PARALLELISM": "false"}


@dataclass(frozen=True)
class ModelTarget:
    """What lm-eval should load: a backend name and its model_args."""

    role: str  # candidate | baseline
    variant: str
    backend: str
    model_args: dict = field(default_factory=dict)

    def describe(self) -> str:
        where = self.model_args.get("base_url") or self.model_args.get("pretrained") or ""
        return f"{self.role} {self.variant} ({self.backend}{': ' + str(where) if where else ''})"


def require_prompt_logprobs(target: ModelTarget, timeout_s: float = 120.0) -> None:
    """Refuse an endpoint that does not return the log-probabilities of the prompt's own tokens.

    lm-eval's loglikelihood requests ask `/v1/completions` for `echo: true, logprobs: 1,
    max_tokens: 1` and read the prompt's tokens back. A server that ignores `echo` (llama.cpp's)
    gives no error and lm-eval scores every document at chance, a verdict on nothing: one short
    request first, and an error unless each prompt token after the first has a number."""
    import httpx
    from transformers import AutoTokenizer

    args = target.model_args
    tokenizer = AutoTokenizer.from_pretrained(args["tokenizer"], local_files_only=True)
    ids = tokenizer("The quick brown fox", add_special_tokens=False)["input_ids"][:8]
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    prompt = ([prefix] if prefix is not None else []) + ids
    body = {"model": args["model"], "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    fix = ("serve the variant with vLLM (`serve: {mode: vllm}`), whose /v1/completions returns them, "
           "or evaluate in-process with `backend: hf`")
    try:
        resp = httpx.post(args["base_url"], json=body, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ExternalError("lm-eval", f"{target.describe()}: {args['base_url']} did not answer "
                                       f"({type(exc).__name__}: {exc})") from exc
    if resp.status_code != 200:
        raise ExternalError("lm-eval", f"{target.describe()}: {args['base_url']} refused a prompt of token ids with "
                                       f"`echo: true, logprobs: 1` (HTTP {resp.status_code}: {resp.text[:300]}); {fix}")
    try:
        values = resp.json()["choices"][0]["logprobs"]["token_logprobs"]
    except (ValueError, KeyError, IndexError, TypeError):
        values = None
    echoed = values[1:len(prompt)] if isinstance(values, list) and len(values) >= len(prompt) else []
    if not echoed or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in echoed):
        raise ExternalError("lm-eval", f"{target.describe()}: {args['base_url']} does not return the log-probabilities "
                                       f"of the prompt's tokens (`echo: true, logprobs: 1`), so lm-eval would score "
                                       f"every document at chance instead of judging the model; {fix}")


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def force_offline() -> None:
    """Set the offline switches, also in hub/datasets modules that already read them at import."""
    os.environ.update(OFFLINE_ENV)
    for module, names in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                          ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        mod = sys.modules.get(module)
        for name in names:
            if mod is not None and hasattr(mod, name):
                setattr(mod, name, True)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def without_machine_survey() -> Iterator[None]:
    """lm-eval describes the machine in its results: `git describe` in the task folder (not a
    repository: "fatal: not a git repository" on every run) and torch's collect_env (about half a
    second per run, many per sequential check). The bot records the versions it needs itself."""
    from lm_eval import evaluator

    def versions_only(storage: dict) -> None:
        import transformers

        storage.update(lm_eval_version=lm_eval_version(), transformers_version=transformers.__version__)

    saved = evaluator.get_git_commit_hash, evaluator.add_env_info
    evaluator.get_git_commit_hash, evaluator.add_env_info = (lambda: None), versions_only
    try:
        yield
    finally:
        evaluator.get_git_commit_hash, evaluator.add_env_info = saved


def _is_offline_miss(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("OfflineModeIsEnabled", "Couldn't reach", "ConnectionError",
                                   "DatasetNotFoundError", "offline mode", "LocalEntryNotFoundError"))


def load_tasks(tm, prepared: PreparedTasks, options: EvalOptions) -> list:
    """Build each selected task on its own, so a failure names the task that caused it."""
    objects: list = []
    for name in prepared.names:
        if name not in tm.all_tasks:
            import difflib

            close = difflib.get_close_matches(name, tm.all_tasks, n=1)
            raise InputError(prepared.policy_file, f"{options.where}.tasks",
                             f"lm-eval knows no task {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                             f"define it under {options.tasks_dir}/ on the base branch or use an lm-eval task name")
        try:
            loaded = tm.load([name])
        except Exception as exc:
            where = prepared.local[name].path if name in prepared.local else f"lm-eval task {name}"
            if _is_offline_miss(exc):
                raise InputError(where, "dataset_path",
                                 f"task {name}: its data is not available offline ({type(exc).__name__}: {exc})",
                                 VENDOR_FIX.format(name=name)) from exc
            raise InputError(where, "", f"task {name} cannot be loaded: {type(exc).__name__}: {exc}",
                             "fix the task YAML on the base branch") from exc
        groups = loaded.get("groups") or {}
        objects += [groups[name]] if name in groups else list(loaded["tasks"].values())
    return objects


@dataclass(frozen=True)
class TaskFacts:
    """What the sequential gate must know of a task before evaluating it."""

    documents: int  # how many documents it has
    aggregations: dict  # metric → lm-eval aggregation name ("mean", "weighted_perplexity"...), "" if unknown


class NotSplittable(Exception):
    """The tasks cannot be evaluated in batches of documents (a group, or a task lm-eval cannot index)."""


def aggregation_names(task) -> dict[str, str]:
    """metric → the name of lm-eval's aggregation function, matched by identity ("" for anything else,
    e.g. a task's own `!function` aggregation), so a recomputation never guesses."""
    from lm_eval.api import metrics

    known = {metrics.mean: "mean", metrics.weighted_perplexity: "weighted_perplexity",
             metrics.bits_per_byte: "bits_per_byte", metrics.perplexity: "perplexity"}
    return {str(m): known.get(fn, "") for m, fn in (task.aggregation() or {}).items()}


def inspect(prepared: PreparedTasks, options: EvalOptions) -> dict[str, TaskFacts]:
    """Each selected task's document count and aggregations, without evaluating anything."""
    force_offline()
    from lm_eval.api.task import Task
    from lm_eval.tasks import TaskManager, get_task_name_from_object

    with working_directory(prepared.root):
        tm = TaskManager(include_path=str(prepared.include_path), include_defaults=prepared.needs_builtin_index)
        out = {}
        for task in load_tasks(tm, prepared, options):
            if not isinstance(task, Task):
                raise NotSplittable(f"{type(task).__name__} {getattr(task, 'group_name', task)!s} is a group of tasks, "
                                    "whose aggregate lm-eval computes across its subtasks")
            out[get_task_name_from_object(task)] = TaskFacts(len(task.eval_docs), aggregation_names(task))
    return out


def run(target: ModelTarget, prepared: PreparedTasks, options: EvalOptions, *,
        progress: Callable[[str], None], documents: tuple[int, int] | None = None) -> dict:
    """Evaluate ``target`` on the prepared tasks; returns the JSON-able part of lm-eval's results.

    ``documents=(start, stop)``: only documents start..stop−1 of each task (lm-eval's `samples=`),
    instead of the first `limit`; a task with fewer than ``start`` documents is left out.
    """
    force_offline()
    started = time.monotonic()
    window = "" if documents is None else f" (documents {documents[0] + 1}–{documents[1]})"
    progress(f"lm-eval: {target.describe()} on {', '.join(prepared.names)}"
             + (window or (f" (limit {options.limit})" if options.limit else "")))
    import lm_eval
    from lm_eval.tasks import TaskManager, get_task_name_from_object

    with working_directory(prepared.root):
        tm = TaskManager(include_path=str(prepared.include_path), include_defaults=prepared.needs_builtin_index)
        tasks = load_tasks(tm, prepared, options)
        limit, samples = options.limit, None
        if documents is not None:
            # lm-eval reads an empty index list as "every document": leave such a task out instead.
            limit, samples = None, {}
            for task in tasks:
                name = get_task_name_from_object(task)
                indices = list(range(documents[0], min(documents[1], len(task.eval_docs))))
                if indices:
                    samples[name] = indices
            tasks = [t for t in tasks if get_task_name_from_object(t) in samples]
            if not tasks:
                raise ValueError(f"no task has documents {documents[0] + 1}–{documents[1]}")
        aggregations = {get_task_name_from_object(t): aggregation_names(t) for t in tasks if hasattr(t, "aggregation")}
        try:
            with warnings.catch_warnings(), without_machine_survey():
                # lm-eval's HFLM hands a compressed-tensors model's own quantization_config back to
                # from_pretrained, and transformers warns that it got the config it already has.
                warnings.filterwarnings("ignore", message="You passed `quantization_config`", category=UserWarning)
                out = lm_eval.simple_evaluate(
                    model=target.backend, model_args=dict(target.model_args), tasks=tasks, task_manager=tm,
                    limit=limit, samples=samples, num_fewshot=options.num_fewshot, batch_size=options.batch_size,
                    bootstrap_iters=options.bootstrap_iters, log_samples=True, write_out=False,
                )
        except InputError:
            raise
        except Exception as exc:
            raise ExternalError("lm-eval", f"evaluating {target.describe()} failed: {type(exc).__name__}: {exc}") from exc
    if not out or "results" not in out:
        raise ExternalError("lm-eval", f"evaluating {target.describe()} returned no results")
    seconds = time.monotonic() - started
    progress(f"lm-eval: {target.role} done in {seconds:.1f}s")
    return {
        "results": _plain(out["results"]),
        "higher_is_better": _plain(out.get("higher_is_better", {})),
        "n-samples": _plain(out.get("n-samples", {})),
        "versions": _plain(out.get("versions", {})),
        "samples": per_document(out.get("samples") or {}),
        "aggregations": aggregations,
        "lm_eval_version": out.get("lm_eval_version") or lm_eval_version(),
        "variant": target.variant,
        "seconds": round(seconds, 3),
    }


def per_document(samples: dict) -> dict:
    """lm-eval's logged samples, cut to what a paired comparison needs: per task, one entry per
    document and filter with its id, a digest of the document and its metric values (a number, or
    [loglikelihood, words or bytes] for perplexity-type metrics)."""
    out: dict[str, list] = {}
    for task, examples in samples.items():
        out[str(task)] = [{"doc_id": ex.get("doc_id"), "doc_hash": ex.get("doc_hash"), "filter": ex.get("filter", "none"),
                           "values": {m: _plain(ex.get(m)) for m in ex.get("metrics", ())}}
                          for ex in examples]
    return out


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars become floats, NaN/inf become strings the parser flags."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(number)
