"""Options of the lm-eval checks, parsed strictly so a policy mistake fails before anything runs.

    - check: perplexity            # one loglikelihood_rolling task
      task: canopy_heldout
      metric: word_perplexity      # default
      max_increase: 3%             # relative, in the metric's worse direction (default 3%)
    - check: benchmarks            # any lm-eval tasks, each with an allowed drop in points
      tasks:
        canopy_mc: {max_drop: 5, metrics: [acc]}
        arc_easy: 2                # short form: max_drop
    - check: domain                # like benchmarks, but only the repo's own tasks under evals/
      tasks: [canopy_qa]
      max_drop: 5

Shared: limit, num_fewshot, batch_size, bootstrap_iters, backend, base_url, model_name, tokenizer,
max_length, add_bos_token, tasks_dir, trust_functions, sequential (see `bot.verdicts.looks`).

`backend`: `hf` loads the weights in-process with transformers; `local-completions` sends lm-eval's
requests to an OpenAI-compatible `/v1/completions` endpoint (`base_url`, else the variant served
as the policy's `serve:` says). Unset, it follows `serve:`: `local-completions` under
`serve: {mode: vllm}`, so stage 1 judges what prod's engine computes; `hf` otherwise.

Both sides (and both backends) are pinned alike: `max_length` is the context of one request in
tokens (default: the engine's `--max-model-len`, else the smaller `max_position_embeddings` of the
two variants), so a rolling window scores the same tokens everywhere; `add_bos_token` (default
false) is passed to both; the tokenizer is each variant's own (or `tokenizer:`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from bot.core.fields import Loc, get_int, get_str, mapping, parse_percent, reject_unknown, sequence
from bot.core.paths import check_repo_path
from bot.verdicts.looks import SequentialOption, parse_sequential

BACKENDS = ("hf", "local-completions")
DEFAULT_TASKS_DIR = "evals/tasks"
DEFAULT_MAX_INCREASE = 0.03

COMMON_KEYS = {"limit", "num_fewshot", "batch_size", "bootstrap_iters", "backend", "base_url",
               "model_name", "tokenizer", "tasks_dir", "trust_functions", "dtype", "sequential",
               "max_length", "add_bos_token"}
# lm-eval's API models keep one token for the generated one and one for the rolling window's
# context, which its `hf` model does not: the same `max_length` scores 2 tokens fewer per window.
API_EXTRA_TOKENS = 2


@dataclass(frozen=True)
class Limit:
    """How much worse the candidate may be. ``relative`` is a fraction (0.03); else points."""

    amount: float
    relative: bool

    def describe(self) -> str:
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g} pt"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    metrics: tuple[str, ...] | None  # None: every metric the task reports
    limit: Limit


@dataclass(frozen=True)
class EvalOptions:
    check: str
    tasks: tuple[TaskSpec, ...]
    limit: int | None = None
    num_fewshot: int | None = None
    batch_size: int | str = 8
    bootstrap_iters: int = 1000
    backend: str | None = None  # None: follows `serve:` (see the module docstring); resolved before a run
    base_url: str | None = None
    model_name: str | None = None
    tokenizer: str | None = None  # repo path of a tokenizer folder (local-completions); None: each variant's own
    max_length: int | None = None  # tokens per request, both sides; None: resolved from the engine and the variants
    add_bos_token: bool = False
    dtype: str = "auto"
    tasks_dir: str = DEFAULT_TASKS_DIR
    trust_functions: tuple[str, ...] = ()  # task YAMLs (repo paths) allowed to use `!function`
    local_only: bool = False  # `domain`: only the repo's own tasks
    # Looks at growing document counts up to `limit`; None: `sequential: off`. Not in the cache key:
    # it changes which documents run, not the values a document gets.
    sequential: SequentialOption | None = SequentialOption()
    where: str = ""  # the gate entry's field path in the policy, for error messages

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def run_fingerprint(self) -> str:
        """What changes the numbers a model gets; thresholds do not, so they stay out of cache keys."""
        return json.dumps({
            "tasks": sorted(self.task_names), "limit": self.limit, "num_fewshot": self.num_fewshot,
            "batch_size": self.batch_size, "bootstrap_iters": self.bootstrap_iters, "backend": self.backend,
            "dtype": self.dtype, "tokenizer": self.tokenizer, "max_length": self.max_length,
            "add_bos_token": self.add_bos_token,
        }, sort_keys=True)

    def model_max_length(self) -> int | None:
        """The `max_length` model argument of this backend that scores the same windows as `hf`'s
        `max_length - 2` (lm-eval's API models keep 2 tokens for themselves; see API_EXTRA_TOKENS)."""
        if self.max_length is None:
            return None
        return self.max_length if self.backend == "local-completions" else self.max_length - API_EXTRA_TOKENS

    def to_json(self) -> dict:
        return asdict(self)


def parse_perplexity(raw: Mapping[str, Any], loc: Loc) -> EvalOptions:
    reject_unknown(raw, COMMON_KEYS | {"task", "metric", "max_increase"}, loc)
    task = get_str(raw, "task", loc)
    metric = get_str(raw, "metric", loc, "word_perplexity")
    amount = parse_percent(raw["max_increase"], loc.child("max_increase")) if "max_increase" in raw else DEFAULT_MAX_INCREASE
    if amount < 0:
        raise loc.child("max_increase").error("must not be negative", "write e.g. `max_increase: 3%`")
    spec = TaskSpec(task, (metric,), Limit(amount, relative=True))
    return _common("perplexity", (spec,), raw, loc)


def parse_task_list(check: str, raw: Mapping[str, Any], loc: Loc, *, local_only: bool) -> EvalOptions:
    reject_unknown(raw, COMMON_KEYS | {"tasks", "max_drop", "metrics"}, loc)
    default_limit = _drop(raw["max_drop"], loc.child("max_drop")) if "max_drop" in raw else None
    default_metrics = _metrics(raw["metrics"], loc.child("metrics")) if "metrics" in raw else None
    t_loc = loc.child("tasks")
    if "tasks" not in raw or not raw["tasks"]:
        raise t_loc.error("is required", "list lm-eval task names, e.g. `tasks: {mmlu: {max_drop: 2}}`")
    entries = raw["tasks"]
    items: list[tuple[str, Any, Loc]]
    if isinstance(entries, list):
        items = [(_task_name(e, t_loc.child(i)), None, t_loc.child(i)) for i, e in enumerate(entries)]
    else:
        items = [(_task_name(k, t_loc), v, t_loc.child(str(k))) for k, v in mapping(entries, t_loc).items()]
    specs, seen = [], set()
    for name, value, e_loc in items:
        if name in seen:
            raise e_loc.error(f"task {name!r} is listed twice", "list each task once")
        seen.add(name)
        limit, metrics = default_limit, default_metrics
        if isinstance(value, Mapping):
            reject_unknown(value, {"max_drop", "metrics"}, e_loc)
            if "max_drop" in value:
                limit = _drop(value["max_drop"], e_loc.child("max_drop"))
            if "metrics" in value:
                metrics = _metrics(value["metrics"], e_loc.child("metrics"))
        elif value is not None:
            limit = _drop(value, e_loc)
        if limit is None:
            raise e_loc.child("max_drop").error("is required: how many points the candidate may lose",
                                                f"add `max_drop: 2` to the task or to the `{check}` entry")
        specs.append(TaskSpec(name, metrics, limit))
    return _common(check, tuple(specs), raw, loc, local_only=local_only)


def _task_name(value: Any, loc: Loc) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "/\\*?[") or value.startswith("."):
        raise loc.error(f"{value!r} is not an lm-eval task name", "name a task, group or tag, e.g. `hellaswag` or one of the repo's own task YAMLs")
    return value


def _drop(value: Any, loc: Loc) -> Limit:
    if isinstance(value, str) and value.strip().endswith("%"):
        amount = parse_percent(value, loc)
        relative = True
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, relative = float(value), False
    else:
        raise loc.error(f"must be points like 2 or a relative drop like 5%, got {value!r}", "write e.g. `max_drop: 2`")
    if amount < 0:
        raise loc.error("must not be negative")
    return Limit(amount, relative)


def _metrics(value: Any, loc: Loc) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    names = sequence(value, loc)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise loc.error("must list metric names", "e.g. `metrics: [acc, acc_norm]`")
    return tuple(names)


def _common(check: str, tasks: tuple[TaskSpec, ...], raw: Mapping[str, Any], loc: Loc, *,
            local_only: bool = False) -> EvalOptions:
    limit = get_int(raw, "limit", loc, None, minimum=1)
    num_fewshot = get_int(raw, "num_fewshot", loc, None, minimum=0)
    batch_size = raw.get("batch_size", 8)
    if not (batch_size == "auto" or (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1)):
        raise loc.child("batch_size").error(f"must be a whole number ≥ 1 or `auto`, got {batch_size!r}")
    bootstrap_iters = get_int(raw, "bootstrap_iters", loc, 1000, minimum=0)
    backend = get_str(raw, "backend", loc, None)
    if backend is not None and backend not in BACKENDS:
        raise loc.child("backend").error(f"{backend!r} is not supported", f"use one of: {', '.join(BACKENDS)}")
    base_url = get_str(raw, "base_url", loc, None)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise loc.child("base_url").error(f"{base_url!r} is not an http(s) URL",
                                          "e.g. `http://{variant}.models.internal/v1/completions`")
    if base_url is not None and backend != "local-completions":
        raise loc.child("base_url").error("only applies to `backend: local-completions`", "remove it or set the backend")
    max_length = get_int(raw, "max_length", loc, None, minimum=API_EXTRA_TOKENS + 2)
    add_bos_token = raw.get("add_bos_token", False)
    if not isinstance(add_bos_token, bool):
        raise loc.child("add_bos_token").error(f"must be true or false, got {add_bos_token!r}")
    tokenizer = get_str(raw, "tokenizer", loc, None)
    if tokenizer is not None:
        tokenizer = check_repo_path(tokenizer, file=loc.file, field=f"{loc.path}.tokenizer")
    tasks_dir = check_repo_path(get_str(raw, "tasks_dir", loc, DEFAULT_TASKS_DIR), file=loc.file,
                                field=f"{loc.path}.tasks_dir").rstrip("/")
    trust = tuple(check_repo_path(str(p), file=loc.file, field=f"{loc.path}.trust_functions[{i}]")
                  for i, p in enumerate(sequence(raw.get("trust_functions") or [], loc.child("trust_functions"))))
    return EvalOptions(
        check=check, tasks=tasks, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
        bootstrap_iters=bootstrap_iters, backend=backend, base_url=base_url,
        model_name=get_str(raw, "model_name", loc, None), tokenizer=tokenizer, max_length=max_length,
        add_bos_token=add_bos_token,
        dtype=get_str(raw, "dtype", loc, "auto"), tasks_dir=tasks_dir, trust_functions=trust,
        local_only=local_only, where=loc.path, sequential=parse_sequential(raw, loc),
    )
