"""An environment folder with a `kustomization.yaml`: Argo CD applies what `kustomize build` renders,
so the bot reads that rendering, never the files as they are.

The revision is exported (without `models/`, which a kustomization has no business reading) into a
temporary folder and rendered there by `kustomize build`, or `kubectl kustomize` when only kubectl is
installed, with the allow-listed child environment and a timeout. No binary: an error saying so.
Plugins and Helm stay off (kustomize's defaults).

A remote resource (`github.com/org/repo//path?ref=...`, `https://...`) is fetched at render time,
by the bot now and by Argo CD at every sync: unless it names a full commit id its content can
change after the gate judged it, and the next PR would read "nothing to promote" while prod
serves something else. So every kustomization the environment reaches (its own, and the local
ones it lists under `resources`, `bases` and `components`) is read first, and a remote entry is
refused unless pinned with `?ref=<40-hex commit>` (or `?version=`); pinned ones are named in the
report. An HTTP file URL cannot be pinned and is refused.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.core.childenv import child_env
from bot.core.errors import InputError
from bot.core.fields import Loc, mapping
from bot.core.yamlio import load_one
from bot.zoo.variants import ZOO_ROOT

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_DIR = "origin"
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TIMEOUT_S = 60.0
_MAX_OUTPUT = 64 * 1024 * 1024


def kustomization_in(files: list[str], folder: str) -> str | None:
    """The kustomization file directly in ``folder`` (what makes Argo CD use kustomize), if any."""
    for name in KUSTOMIZATION_FILES:
        if f"{folder}/{name}" in files:
            return f"{folder}/{name}"
    return None


def nested_kustomization(files: list[str]) -> str | None:
    """A kustomization file in a sub-folder, which Argo CD would read as a plain manifest."""
    return next((p for p in files if p.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES), None)


_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git::|git@|github\.com/|gitlab\.com/|bitbucket\.org/)", re.IGNORECASE)
_PINNED = re.compile(r"[?&](?:ref|version)=([0-9a-f]{40}|[0-9a-f]{64})(?:&|$)")
_LISTS = ("resources", "bases", "components")


def remote_resources(reader, rev: str, kustomization: str) -> list[str]:
    """Every remote entry of the kustomizations ``kustomization`` reaches; InputError for one that
    is not pinned to a full commit id."""
    found: list[str] = []
    seen: set[str] = set()
    todo = [kustomization]
    while todo:
        path = todo.pop()
        if path in seen or len(seen) > 500:
            continue
        seen.add(path)
        folder = posixpath.dirname(path)
        data = load_one(reader.read_text(rev, path) or "", path) or {}
        loc = Loc(path)
        data = mapping(data, loc)
        for key in _LISTS:
            entries = data.get(key) or []
            if not isinstance(entries, list):
                continue
            for i, entry in enumerate(entries):
                if not isinstance(entry, str):
                    continue
                local = posixpath.normpath(posixpath.join(folder, entry))
                if not local.startswith("../") and reader.exists(rev, local) and not _REMOTE.match(entry):
                    nested = kustomization_in(reader.list_files(rev, local), local) if local else None
                    if nested:
                        todo.append(nested)
                    continue
                if not _REMOTE.match(entry):
                    continue  # a missing local path: kustomize itself says so
                found.append(_pinned(entry, loc.child(key).child(i)))
    return found


def _pinned(entry: str, loc: Loc) -> str:
    if entry.lower().startswith(("http://", "https://")) and "?" not in entry and not entry.rstrip("/").endswith(".git") \
            and "//" not in entry.split("://", 1)[1]:
        raise loc.error(f"{entry!r} is a file fetched over HTTP when the environment renders: its content can change "
                        "after the gate judged it, and no commit id can pin it",
                        "vendor the file into the repository, or use a git URL pinned to a commit "
                        "(`https://github.com/org/repo//path?ref=<40-hex commit>`)")
    if not _PINNED.search(entry):
        raise loc.error(f"{entry!r} is a remote resource not pinned to a full commit id: kustomize fetches it at every "
                        "render, so what Argo CD applies can change after the gate judged it",
                        "pin it with `?ref=<40-hex commit id>` (a tag or branch can move), or vendor it into the repository")
    return entry


def origin(annotation: str) -> str | None:
    """The repository path kustomize's origin annotation gives (relative to our wrapper, so
    `../repo/<path>`); None for a generated object or a remote one."""
    for line in annotation.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "path":
            path = value.strip()
            return path.removeprefix("../repo/") if path.startswith("../repo/") else None
    return None


def name_affixes(reader, rev: str, kustomization: str) -> tuple[str, ...]:
    """The `namePrefix` and `nameSuffix` an environment's own kustomization adds to every name
    (an application is the same with `prod-` before it); without their dashes."""
    try:
        data = load_one(reader.read_text(rev, kustomization) or "", kustomization) or {}
    except InputError:
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple(str(data[k]).strip("-._") for k in ("namePrefix", "nameSuffix") if isinstance(data.get(k), str) and data[k].strip("-._"))


def command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def build(reader, rev: str, folder: str, kustomization: str) -> str:
    """The YAML `kustomize build <folder>` prints at ``rev``; InputError naming the kustomization otherwise."""
    argv = command()
    if argv is None:
        raise InputError(kustomization, "", "Argo CD renders this folder with kustomize, but neither `kustomize` nor "
                         "`kubectl` is installed where the bot runs, so it cannot see what would be applied",
                         "install kustomize (or kubectl) on the runner, or commit the rendered manifests instead; "
                         "if your Argo CD application reads the folder as a plain directory (`source.directory`), "
                         f"list {kustomization.rsplit('/', 1)[-1]} under the environment's `ignore:` in the policy")
    with tempfile.TemporaryDirectory(prefix="promotion-bot-kustomize-") as tmp:
        root = Path(tmp) / "repo"
        reader.export(rev, "", root, exclude=(ZOO_ROOT,))
        # A kustomization of our own around the environment's, outside the repository's files,
        # asks kustomize for each object's source file (`config.kubernetes.io/origin`); the objects
        # are otherwise exactly the environment's. A kustomize too old for it renders without.
        wrapper = Path(tmp) / ORIGIN_DIR
        wrapper.mkdir()
        (wrapper / "kustomization.yaml").write_text(f"resources: [../repo/{folder}]\nbuildMetadata: [originAnnotations]\n")
        try:
            proc = subprocess.run([*argv, str(wrapper)], cwd=root, capture_output=True, timeout=TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, env=child_env())
            if proc.returncode != 0 and b"buildMetadata" in proc.stderr:
                proc = subprocess.run([*argv, str(root / folder)], cwd=root, capture_output=True, timeout=TIMEOUT_S,
                                      stdin=subprocess.DEVNULL, env=child_env())
        except subprocess.TimeoutExpired as exc:
            raise InputError(kustomization, "", f"`{' '.join(argv)}` took more than {TIMEOUT_S:.0f}s",
                             "simplify the kustomization (a remote base on an unreachable host?)") from exc
    if proc.returncode != 0:
        problem = proc.stderr.decode("utf-8", errors="replace").replace(str(root) + "/", "").replace(
            str(Path(tmp) / ORIGIN_DIR), folder).strip()
        # kubectl's message is several lines (`error: ...` wrapping the cause): all of it, not the last line.
        problem = " ".join(line.strip() for line in problem.splitlines() if line.strip())
        if len(problem) > 4000:
            problem = problem[:4000] + " …"
        raise InputError(kustomization, "", f"`{' '.join(argv)} {folder}` failed: {problem or 'no output'}",
                         "run it locally and fix the kustomization")
    if len(proc.stdout) > _MAX_OUTPUT:
        raise InputError(kustomization, "", f"renders more than {_MAX_OUTPUT // 2**20} MB of manifests",
                         "split the environment into smaller applications")
    return proc.stdout.decode("utf-8", errors="replace")
