"""What a check gets to work with: the promotion, both revisions, the policy and a scratch folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bot.core.errors import InputError
from bot.core.output import print_progress
from bot.gitops.manifests import ManifestIndex
from bot.gitops.promotions import Promotion, baseline_ref
from bot.policy.model import Environment, Policy
from bot.vcs.reader import GitReader
from bot.verdicts.evidence import VerdictRule
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
            exported = self.reader.export(rev, variant.weights.path, tmp)
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(exported, target)
            shutil.rmtree(tmp, ignore_errors=True)
            (target / ".complete").write_text(tree)
        return target
