"""Build real GitOps repositories for tests: real commits through GitPython, a zoo, manifests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import git

POLICY = """\
version: 1
models:
  canopy-tiny:
    baseline: v1.0-fp32
zoo:
  require: [recipe, calibration, weights]
environments:
  - name: test
    gate:
      - check: zoo
  - name: staging
    gate:
      - check: zoo
      - check: promotion-order
  - name: prod
    gate:
      - check: zoo
      - check: promotion-order
"""

VARIANT = """\
model: {model}
variant: {variant}
base_model: {base_model}
quantization:
  algorithm: {algorithm}
  scheme: {scheme}
  bits: {bits}
  group_size: {group}
calibration:
  dataset: canopy-calibration
  samples: 64
  sequence_length: 256
recipe: {recipe}
weights:
  path: weights
known_issues: []
"""


def manifest(variant_ref: str, *, name: str = "canopy", kind: str = "Deployment", extra_doc: bool = True) -> str:
    doc = textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: {kind}
        metadata:
          name: {name}
          labels:
            app.kubernetes.io/name: {name}
          annotations:
            promotion-bot/variant: {variant_ref}
        spec:
          replicas: 1
        """)
    if extra_doc:
        doc += textwrap.dedent(f"""\
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: {name}
            spec:
              ports: [{{port: 80}}]
            """)
    return doc


class GitOpsRepo:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.repo = git.Repo.init(self.path, initial_branch="main")
        with self.repo.config_writer() as cw:
            cw.set_value("user", "name", "Test Engineer")
            cw.set_value("user", "email", "engineer@example.com")
            cw.set_value("commit", "gpgsign", "false")

    def write(self, rel: str, text: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    def remove(self, rel: str) -> None:
        self.repo.index.remove([rel], working_tree=True)

    def move(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.repo.git.mv(old, new)

    def commit(self, message: str) -> str:
        # git itself commits what `git add` staged: GitPython's cached index can miss a change made in
        # the same second as the previous commit, and the commit then silently lacks it.
        self.repo.git.add(A=True)
        self.repo.git.commit("--quiet", "--allow-empty", "--no-verify", "-m", message)
        return self.repo.head.commit.hexsha

    def add_variant(self, variant: str, *, model: str = "canopy-tiny", with_recipe: bool = True, **overrides) -> None:
        folder = f"models/{model}/{variant}"
        precision = variant.split("-")[1]
        bits = int("".join(ch for ch in precision if ch.isdigit()) or 0)
        group = next((int(p[1:]) for p in variant.split("-")[2:] if p.startswith("g") and p[1:].isdigit()), "null")
        quantized = not precision.startswith(("fp", "bf"))
        fields = dict(
            model=model, variant=variant,
            base_model=f"{model}/v1.0-fp32" if quantized else model,
            algorithm="GPTQ" if quantized else "none",
            scheme=f"W{bits}A16" if quantized else precision.upper(),
            bits=bits, group=group,
            recipe="recipe.yaml" if quantized else "null",
        )
        fields.update(overrides)
        self.write(f"{folder}/variant.yaml", VARIANT.format(**fields))
        if quantized and with_recipe:
            self.write(f"{folder}/recipe.yaml", "default_stage:\n  default_modifiers:\n    GPTQModifier: {targets: [Linear]}\n")
        self.write(f"{folder}/weights/config.json", '{"model_type": "llama"}\n')

    def set_variant(self, env: str, ref: str, *, file: str = "canopy.yaml", name: str = "canopy", kind: str = "Deployment") -> None:
        self.write(f"environments/{env}/{file}", manifest(ref, name=name, kind=kind))


def demo_like_repo(path: Path, *, policy: str = POLICY) -> GitOpsRepo:
    """A repo with the canopy zoo and v1.0-fp32 deployed everywhere; main has one commit."""
    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", policy)
    for variant in ("v1.0-fp32", "v1.1-int8", "v1.2-int4-g128", "v1.3-int4-g64", "v1.4-int2-g64"):
        repo.add_variant(variant)
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("Initial GitOps repo")
    return repo
