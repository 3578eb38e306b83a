"""Weights a PR brings must be data, never code: the one check every loader and server runs first.

Refused, whatever else the folder holds:
- pickles (`*.bin`, `*.pt`, `*.pth`, `*.pkl`, `*.ckpt`..., or any file that starts like a pickle or a
  zipped `torch.save`): unpickling runs code, and a `*.safetensors` beside them does not stop every
  loader (a server or a `from_pretrained(..., use_safetensors=False)`) from reading the pickle;
- `auto_map` in a `*config.json`: it names Python classes to import from the folder or a hub repo;
- code files (`*.py`, `*.pyc`, `*.so`...): what `auto_map` or a custom pipeline would import;
- symlinks, and anything but plain files and folders: a link points outside the folder (another
  variant's weights, a runner's files) once the folder moves into the cache;
- a folder whose safetensors files vLLM and transformers would choose differently
  (`bot.zoo.weights`): the gate must judge the one weight set production loads.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

from bot.core.errors import InputError
from bot.zoo.weights import Source, WeightSet, weight_set

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".npz"})
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyw", ".so", ".dylib", ".dll", ".sh", ".ipynb"})
# Pickle protocols 2-5 start with PROTO (0x80) and the protocol number.
_PICKLE_MAGIC = tuple(bytes([0x80, n]) for n in range(2, 6))
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_CONFIG_BYTES = 16 * 1024 * 1024
SAFE_FIX = ("save the weights as safetensors with no custom code: "
            "model.save_pretrained(folder, safe_serialization=True) on a model of a built-in transformers class")


def check_weights(folder: Path | str, *, file: str, field: str = "weights.path") -> WeightSet:
    """InputError naming ``file``/``field`` when ``folder`` holds anything that could run code or
    reach outside it, or two weight sets; else the one set every loader reads."""
    root = Path(folder)
    try:
        root_mode = os.lstat(root).st_mode
    except OSError as exc:
        raise InputError(file, field, f"the weights folder cannot be read ({exc.strerror})",
                         "commit the weights folder or fix the path") from exc
    if not stat.S_ISDIR(root_mode):
        raise InputError(file, field, "the weights folder is a symlink or not a folder",
                         "commit the weights as a plain folder of files")
    problems: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            kind = _problem(path)
            if kind:
                problems.setdefault(kind, []).append(rel)
    if not problems:
        return weight_set(Source.folder(root), file=file, field=field)
    kind, names = next(iter(problems.items()))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    what, why, fix = _MESSAGES[kind]
    raise InputError(file, field, f"the weights folder holds {what} ({shown}), {why}", fix)


_MESSAGES = {  # what, why, fix
    "link": ("symlinks or special files", "which point outside it", "commit the files themselves, not links to them"),
    "pickle": ("pickle files", "which can run code when loaded", SAFE_FIX),
    "code": ("code files", "which a loader may import and run",
             "remove them: a promoted variant loads with built-in transformers classes only"),
    "auto_map": ("a config with `auto_map`", "which makes loaders import custom code",
                 "remove `auto_map` from the config: a promoted variant loads with built-in transformers classes only"),
    "config": ("a config that is not valid JSON", "or too large to be one", "write the config with save_pretrained"),
}


def _problem(path: Path) -> str | None:
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        return "link"
    name = path.name.lower()
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES or _looks_pickled(path):
        return "pickle"
    if suffix in CODE_SUFFIXES:
        return "code"
    if name.endswith("config.json"):
        return _config_problem(path)
    return None


def _looks_pickled(path: Path) -> bool:
    """A pickle or a zipped `torch.save` under another name (`model.safetensors`, `weights.dat`)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] in _PICKLE_MAGIC:
        return True
    if head == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith((".pkl", "/data.pkl")) for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _config_problem(path: Path) -> str | None:
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        return "config"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "config"
    return _auto_map(data)


def _auto_map(node, depth: int = 0) -> str | None:
    """`auto_map` anywhere in the config: nested configs such as `text_config` carry their own."""
    if depth > 32:
        return "config"  # deeper than any real config: refuse rather than walk on
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    if isinstance(node, dict) and "auto_map" in node:
        return "auto_map"
    return next((p for p in (_auto_map(c, depth + 1) for c in children) if p), None)
