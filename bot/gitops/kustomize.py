"""An environment folder with a `kustomization.yaml`: Argo CD applies what `kustomize build` renders,
so the bot reads that rendering, never the files as they are.

The revision is exported (without `models/`, which a kustomization has no business reading) into a
temporary folder and rendered there by `kustomize build`, or `kubectl kustomize` when only kubectl is
installed, with the allow-listed child environment and a timeout. No binary: an error saying so.
Plugins and Helm stay off (kustomize's defaults); a remote base is fetched as Argo CD would fetch it,
and fails here when the runner is offline.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.core.childenv import child_env
from bot.core.errors import InputError
from bot.zoo.variants import ZOO_ROOT

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
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
        try:
            proc = subprocess.run([*argv, str(root / folder)], cwd=root, capture_output=True, timeout=TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, env=child_env())
        except subprocess.TimeoutExpired as exc:
            raise InputError(kustomization, "", f"`{' '.join(argv)}` took more than {TIMEOUT_S:.0f}s",
                             "simplify the kustomization (a remote base on an unreachable host?)") from exc
    if proc.returncode != 0:
        problem = proc.stderr.decode("utf-8", errors="replace").replace(str(root) + "/", "").strip()
        raise InputError(kustomization, "", f"`{' '.join(argv)} {folder}` failed: {problem.splitlines()[-1] if problem else 'no output'}",
                         "run it locally and fix the kustomization")
    if len(proc.stdout) > _MAX_OUTPUT:
        raise InputError(kustomization, "", f"renders more than {_MAX_OUTPUT // 2**20} MB of manifests",
                         "split the environment into smaller applications")
    return proc.stdout.decode("utf-8", errors="replace")
