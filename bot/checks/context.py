"""What a check gets to work with: the promotion, both revisions, the policy and a scratch folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from bot.core.errors import InputError
from bot.core.output import print_progress
from bot.gitops.manifests import ManifestIndex
from bot.gitops.promotions import Promotion, baseline_ref
from bot.policy.model import Environment, Policy
from bot.vcs.reader import ExportTooLarge, GitReader
from bot.verdicts.evidence import VerdictRule
from bot.zoo.serving import EngineArgs, ServeSpec, parse_serve
from bot.zoo.serving.vllm import find_container, parse_container_args
from bot.zoo.variants import Variant, VariantRef, Zoo


@dataclass
class CheckContext:
    reader: GitReader
    base: str
    head: str
    policy: Policy
    environment: Environment
    promotion: Promotion
    workdir: Path
    cache_dir: Path
    progress: Callable[[str], None] = print_progress
    rule: VerdictRule = VerdictRule()  # the gate entry's confidence and decision rule
    _zoos: dict = field(default_factory=dict)
    _indexes: dict = field(default_factory=dict)
    _serve: ServeSpec | None = None

    def artifact(self, path: Path) -> str:
        """How the report names a file this check wrote under ``workdir``: relative to the results
        folder that is uploaded as the run's artifact (`artifacts/<job>/<name>`), never a runner path."""
        return Path(path).relative_to(self.workdir.parent.parent).as_posix()

    def zoo(self, rev: str) -> Zoo:
        if rev not in self._zoos:
            self._zoos[rev] = Zoo(self.reader, rev)
        return self._zoos[rev]

    def manifests(self, rev: str) -> ManifestIndex:
        if rev not in self._indexes:
            self._indexes[rev] = ManifestIndex(self.reader, rev, self.policy)
        return self._indexes[rev]

    @property
    def candidate(self) -> Variant:
        return self.zoo(self.head).get(self.promotion.to_variant, named_in=self.promotion.manifest,
                                       field=f"{self.promotion.object} variant")

    def baseline_ref(self) -> VariantRef:
        """The variant the candidate is measured against: the environment's rule, else the model's baseline."""
        ref = baseline_ref(self.policy, self.environment, self.promotion)
        if ref is None:
            model = self.promotion.to_variant.model
            raise InputError(self.policy.file, f"models.{model}.baseline",
                             f"no baseline variant for model {model!r}",
                             f"add `models: {{{model}: {{baseline: <variant>}}}}` to {self.policy.file}")
        return ref

    @property
    def baseline(self) -> Variant:
        """The baseline as the base revision has it: the PR cannot change what it is measured against.
        Only a model that is new in this PR has its baseline read from the head (`baseline_is_new`)."""
        ref = self.baseline_ref()
        if self.reader.exists(self.base, f"{ref.folder}/variant.yaml") or not self.baseline_is_new:
            return self.zoo(self.base).get(ref, named_in=self.policy.file, field=f"models.{ref.model}.baseline")
        return self.zoo(self.head).get(ref, named_in=self.policy.file, field=f"models.{ref.model}.baseline")

    @property
    def baseline_is_new(self) -> bool:
        """The model has no variants at the base revision: its baseline can only come from the PR."""
        return not self.zoo(self.base).variants_of(self.promotion.to_variant.model)

    def weights_dir(self, variant: Variant) -> Path:
        """A local folder with the variant's weights, exported from the revision the variant was read
        from (never another one: a baseline's weights never come from the PR head).

        Keyed by the Git tree id of what is exported (a digest of its content), so an unchanged
        variant is exported once per cache, and nothing else can sit under its key.
        """
        if variant.weights is None or variant.weights.path is None:
            raise InputError(f"{variant.folder}/variant.yaml", "weights.path",
                             "this check loads weights locally but the variant has no `weights.path`",
                             "commit the weights under the variant folder or evaluate it where it is served")
        rev = variant.source or self.head
        tree = self.reader.tree_sha(rev, variant.weights.path)
        if not tree:
            raise InputError(f"{variant.folder}/variant.yaml", "weights.path",
                             f"{variant.weights.path} does not exist at {rev[:12]}", "commit the weights or fix the path")
        target = self.cache_dir / "weights" / tree
        if not (target / ".complete").exists():
            tmp = self.cache_dir / "weights" / f".{tree}.{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            cap, what = export_cap(variant, self.policy)
            try:
                exported = self.reader.export(rev, variant.weights.path, tmp, max_bytes=cap, what=what)
            except ExportTooLarge as exc:
                raise InputError(f"{variant.folder}/variant.yaml", "weights.path", f"{variant.weights.path} "
                                 f"{exc.message}", ("make `size_bytes` the bytes of every file under weights.path, "
                                 "or remove it" if "size_bytes" in what else
                                 f"raise `limits.max_weights_gb` in {self.policy.file} on the base branch")) from exc
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(exported, target)
            shutil.rmtree(tmp, ignore_errors=True)
            (target / ".complete").write_text(tree)
        return target

    def serve_spec(self) -> ServeSpec:
        """The policy's `serve:`; for `mode: vllm`, with the serving arguments of the vLLM container
        of the object that promotes the candidate, as the merged revision has it: both variants
        are served as prod's engine will serve the candidate (bot/zoo/serving/vllm.py)."""
        if self._serve is None:
            spec = parse_serve(self.policy.serve, self.policy.file)
            self._serve = replace(spec, engine=self._engine_args()) if spec.mode == "vllm" else spec
        return self._serve

    def _engine_args(self) -> EngineArgs:
        promo = self.promotion
        source = f"{promo.manifest}: {promo.object}"
        doc = self._manifest_object()
        found = find_container(doc) if doc is not None else None
        if found is None:
            return EngineArgs(served_model=promo.served_model,
                              source=f"{source} (no vLLM container there: vLLM's defaults and `serve.args`)")
        name, tokens = found
        engine = parse_container_args(tokens, f"{source}, container {name}")
        return engine if engine.served_model else replace(engine, served_model=promo.served_model)

    def _manifest_object(self) -> Mapping[str, Any] | None:
        """The promoting object's document, from its file (or the environment's kustomize render)."""
        from bot.gitops import kustomize
        from bot.gitops.manifests import load_documents

        promo, env = self.promotion, self.environment
        if self.manifests(self.head).renders_with_kustomize(env):
            text = kustomize.build(self.reader, self.head, env.folder, promo.manifest)
        else:
            text = self.reader.read_text(self.head, promo.manifest)
        for doc in load_documents(text or "", promo.manifest):
            if not isinstance(doc, Mapping) or not isinstance(doc.get("metadata"), Mapping):
                continue
            meta = doc["metadata"]
            label = f"{meta.get('namespace') + '/' if meta.get('namespace') else ''}{doc.get('kind')}/{meta.get('name')}"
            if label == promo.object:
                return doc
        return None

def export_cap(variant: Variant, policy: Policy) -> tuple[int, str]:
    """The most bytes the variant's weights may take once written out: its declared `size_bytes`
    (when variant.yaml says it), never more than the policy's `limits.max_weights_gb`."""
    cap = int(policy.limits.max_weights_gb * 1e9)
    declared = variant.raw.get("size_bytes")
    if isinstance(declared, int) and not isinstance(declared, bool) and 0 <= declared < cap:
        return declared, f"its variant.yaml declares (`size_bytes: {declared}`)"
    return cap, f"{policy.file} allows (`limits.max_weights_gb: {policy.limits.max_weights_gb:g}`)"
