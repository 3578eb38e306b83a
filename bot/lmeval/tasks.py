"""Task YAMLs and their data, taken from the BASE revision and screened before lm-eval sees them.

lm-eval's YAML can import Python (`!function utils.process_docs`, `class: !function ...`), so a
task definition is code. The gate therefore:

- reads `tasks_dir` (default `evals/tasks`) and the data files the selected tasks name from the
  base revision only, into a fresh folder, never from the PR head or the working tree;
- drops from that folder every YAML that uses `!function` unless the policy lists it in
  `trust_functions`, and refuses a selected task that needs one of them;
- refuses includes and data paths that leave the repository, and local data that is missing.

Data paths (`dataset_kwargs.data_files`) are relative to the repository root; lm-eval runs with
the export folder as its working directory, so they resolve there.
"""

from __future__ import annotations

import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.core.digests import digest_of
from bot.core.errors import InputError, UnsafePathError
from bot.core.paths import check_repo_path, join_repo_path
from bot.lmeval.options import EvalOptions

# `datasets` builders that read files: the only kind of dataset a task may use without the Hub.
FILE_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas"}
GLOB_CHARS = set("*?[")
VENDOR_FIX = ("vendor the data: commit it as jsonl under evals/data/ and point the task at it with "
              "`dataset_path: json` and `dataset_kwargs: {{data_files: {{test: evals/data/{name}.jsonl}}}}`")


@dataclass(frozen=True)
class LocalTask:
    """One task or group YAML under `tasks_dir` at the base revision."""

    name: str
    kind: str  # task | group
    path: str  # repo path of the YAML
    functions: tuple[str, ...]  # `!function` targets in the file or what it includes
    includes: tuple[str, ...]
    members: tuple[str, ...]  # a group's tasks
    dataset_path: str | None
    data_paths: tuple[str, ...]  # repo paths of local data files or folders


@dataclass(frozen=True)
class PreparedTasks:
    root: Path  # export root: lm-eval's working directory
    include_path: Path  # root / tasks_dir
    names: tuple[str, ...]
    local: dict[str, LocalTask] = field(default_factory=dict)
    builtin: tuple[str, ...] = ()  # selected names that are not in the repo: lm-eval's own tasks
    digest: str = ""  # of the selected task YAMLs and their data, as Git object ids
    policy_file: str = "promotion.yaml"

    @property
    def needs_builtin_index(self) -> bool:
        return bool(self.builtin)


class _ScreenLoader(yaml.SafeLoader):
    """Reads a task YAML without running anything; remembers the `!function` targets it names."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.functions: list[str] = []


def _tagged(loader: _ScreenLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if tag_suffix != "function":
        raise yaml.constructor.ConstructorError(None, None, f"unsupported tag !{tag_suffix}", node.start_mark)
    value = loader.construct_scalar(node)
    loader.functions.append(str(value))
    return f"!function {value}"


_ScreenLoader.add_multi_constructor("!", _tagged)


def screen_yaml(text: str, file: str) -> tuple[dict, tuple[str, ...]]:
    loader = _ScreenLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InputError(file, "", f"is not valid task YAML: {exc}", "fix the YAML on the base branch") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError(file, "", "must be a mapping with `task:` or `group:`", "see lm-eval's task guide")
    return data, tuple(loader.functions)


def _data_paths(cfg: dict, file: str, name: str) -> tuple[str | None, tuple[str, ...]]:
    dataset_path = cfg.get("dataset_path")
    if dataset_path is None:
        return None, ()
    kwargs = cfg.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise InputError(file, "dataset_kwargs", "must be a mapping")
    paths: list[str] = []
    files = kwargs.get("data_files")
    for i, p in enumerate(_flatten(files)):
        if not isinstance(p, str):
            raise InputError(file, "dataset_kwargs.data_files", f"entry {p!r} is not a path")
        if GLOB_CHARS & set(p) or "://" in p:
            raise InputError(file, "dataset_kwargs.data_files", f"{p!r} is not a plain file path",
                             "name each data file, relative to the repository root")
        paths.append(check_repo_path(p, file=file, field=f"dataset_kwargs.data_files[{i}]"))
    if kwargs.get("data_dir") is not None:
        paths.append(check_repo_path(str(kwargs["data_dir"]), file=file, field="dataset_kwargs.data_dir"))
    if dataset_path in FILE_BUILDERS and not paths:
        raise InputError(file, "dataset_kwargs.data_files", f"task {name} uses the `{dataset_path}` loader but names no files",
                         VENDOR_FIX.format(name=name))
    if isinstance(dataset_path, str) and dataset_path.startswith(("/", ".", "~")):
        paths.append(check_repo_path(dataset_path, file=file, field="dataset_path"))
    return str(dataset_path), tuple(paths)


def _flatten(value: Any) -> Iterable[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [p for v in value.values() for p in _flatten(v)]
    if isinstance(value, list):
        return [p for v in value for p in _flatten(v)]
    return [value]


def index_local(reader, rev: str, tasks_dir: str) -> dict[str, LocalTask]:
    """Every task/group YAML under ``tasks_dir`` at ``rev``, by name, with what it depends on."""
    raw: dict[str, tuple[dict, tuple[str, ...]]] = {}
    for path in reader.list_files(rev, tasks_dir):
        if path.endswith((".yaml", ".yml")):
            raw[path] = screen_yaml(reader.read_text(rev, path) or "", path)

    def includes_of(path: str, cfg: dict) -> tuple[str, ...]:
        inc = cfg.get("include")
        out = []
        for i, item in enumerate(inc if isinstance(inc, list) else ([inc] if inc else [])):
            target = join_repo_path(posixpath.dirname(path), str(item), file=path, field=f"include[{i}]")
            if not target.startswith(tasks_dir + "/") or target not in raw:
                raise UnsafePathError(path, "include", f"{item!r} is not a task YAML under {tasks_dir}/",
                                      f"include only files inside {tasks_dir}/ on the base branch")
            out.append(target)
        return tuple(out)

    def merged(path: str, seen: tuple[str, ...] = ()) -> tuple[dict, tuple[str, ...], tuple[str, ...]]:
        if path in seen:
            raise InputError(path, "include", "includes itself", "remove the include cycle")
        cfg, functions = raw[path]
        out: dict = {}
        all_functions, all_includes = list(functions), []
        for inc in includes_of(path, cfg):
            inc_cfg, inc_functions, inc_includes = merged(inc, seen + (path,))
            out.update(inc_cfg)
            all_functions += inc_functions
            all_includes += [inc, *inc_includes]
        out.update({k: v for k, v in cfg.items() if k != "include"})
        return out, tuple(all_functions), tuple(all_includes)

    index: dict[str, LocalTask] = {}
    for path in raw:
        cfg, functions, includes = merged(path)
        if "group" in cfg:
            name, kind = cfg["group"], "group"
            members = tuple(m if isinstance(m, str) else str(m.get("task", "")) for m in _flatten_list(cfg.get("task")))
        elif "task" in cfg and isinstance(cfg["task"], str):
            name, kind, members = cfg["task"], "task", ()
        else:
            continue  # a fragment other YAMLs include
        if not isinstance(name, str):
            raise InputError(path, kind, "must be a name")
        if name in index:
            raise InputError(path, kind, f"{name!r} is also defined in {index[name].path}", "give each task a unique name")
        dataset_path, data = _data_paths(cfg, path, name) if kind == "task" else (None, ())
        index[name] = LocalTask(name, kind, path, functions, includes, members, dataset_path, data)
    return index


def _flatten_list(value: Any) -> list:
    return value if isinstance(value, list) else ([value] if value else [])


def prepare(reader, rev: str, options: EvalOptions, dest: Path, *, policy_file: str) -> PreparedTasks:
    """Export what ``options`` needs from ``rev`` into ``dest``; refuse anything untrusted."""
    tasks_dir = options.tasks_dir
    local = index_local(reader, rev, tasks_dir)
    trusted = set(options.trust_functions)
    untrusted = {t.path: t for t in local.values() if t.functions and not ({t.path, *t.includes} <= trusted)}

    selected: list[LocalTask] = []
    builtin: list[str] = []

    def select(name: str) -> None:
        task = local.get(name)
        if task is None:
            if options.local_only:
                raise InputError(policy_file, f"{options.where}.tasks", f"task {name!r} is not defined under {tasks_dir}/ "
                                 f"at the base revision {rev[:12]}",
                                 "task definitions are read from the base branch: merge the task YAML there first")
            if name not in builtin:  # lm-eval's own task, tag or group (also as a local group's member)
                builtin.append(name)
            return
        if task.path in untrusted:
            raise InputError(task.path, "!function",
                             f"task {name!r} imports Python through `!function` ({', '.join(task.functions)}); "
                             "task code runs only from YAMLs the policy trusts",
                             f"add `trust_functions: [{task.path}]` to the `{options.check}` check in {policy_file} "
                             "on the base branch, or express the task without `!function`")
        if task not in selected:
            selected.append(task)
            for member in task.members:
                select(member)

    for spec in options.tasks:
        select(spec.name)

    root = dest
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    include_path = root / tasks_dir
    if local:
        reader.export(rev, tasks_dir, root)
    include_path.mkdir(parents=True, exist_ok=True)
    for path in untrusted:  # lm-eval indexes the whole folder: leave nothing in it that imports code
        (root / path).unlink(missing_ok=True)

    parts = [f"tasks_dir={tasks_dir}"]
    for task in selected:
        parts += [f"{p}={reader.tree_sha(rev, p)}" for p in (task.path, *task.includes)]
        if task.functions:  # trusted code next to the YAML is part of the task
            folder = posixpath.dirname(task.path)
            parts.append(f"{folder}={reader.tree_sha(rev, folder)}")
        for data in task.data_paths:
            sha = reader.tree_sha(rev, data)
            if sha is None:
                raise InputError(task.path, "dataset_kwargs.data_files",
                                 f"task {task.name}: {data} does not exist at the base revision {rev[:12]}",
                                 VENDOR_FIX.format(name=task.name))
            parts.append(f"{data}={sha}")
            if (root / data).exists():
                continue  # already exported (it lives under tasks_dir, or another task reads it)
            if reader.list_files(rev, data):
                reader.export(rev, data, root)  # a folder of data files
            else:
                _write_blob(reader, rev, data, root)
        if task.kind == "task" and task.dataset_path not in FILE_BUILDERS and not task.data_paths and options.local_only:
            raise InputError(task.path, "dataset_path",
                             f"task {task.name} reads {task.dataset_path!r} from the Hub; `domain` tasks use local data only",
                             VENDOR_FIX.format(name=task.name))
    return PreparedTasks(root=root, include_path=include_path, names=options.task_names,
                         local={t.name: t for t in selected}, builtin=tuple(builtin),
                         digest=digest_of(*sorted(parts), *sorted(builtin)), policy_file=policy_file)


def _write_blob(reader, rev: str, path: str, root: Path) -> None:
    data = reader.read_bytes(rev, path)
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data or b"")
