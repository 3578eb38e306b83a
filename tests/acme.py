"""A GitOps repository of another team, written from the README: app `acme-chat`, zoo `acme-1b`,
a KServe InferenceService in test, a Deployment in staging, an Argo Rollout in prod."""

from __future__ import annotations

from pathlib import Path

import yaml
from gitops import GitOpsRepo

MODEL = "acme-1b"
BASELINE = "v2.0-bf16"
VARIANTS = (BASELINE, "v2.4-int8", "v2.4-int4-g32", "v2.4-int2-g32")
BUCKET = "s3://acme-models/models"  # a bucket whose name holds `models/`: patterns must not match inside it

POLICY = f"""\
version: 1
models:
  {MODEL}:
    baseline: {BASELINE}
variant_ref:
  fields:
    - kind: InferenceService
      field: spec.predictor.model.storageUri
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
      - check: promotion-order
"""


def inference_service(variant: str, *, annotation: str | None = None, uri: str | None = None) -> str:
    meta = {"name": "acme-chat", "namespace": "acme"}
    if annotation:
        meta["annotations"] = {"promotion-bot/variant": annotation}
    return yaml.safe_dump({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": meta,
        "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"},
                                         "storageUri": uri or f"{BUCKET}/{MODEL}/{variant}/weights"}}},
    }, sort_keys=False)


def annotated(kind: str, api: str, variant: str, annotate: bool = True) -> str:
    meta = {"name": "acme-chat", "namespace": "acme"}
    if annotate:
        meta["annotations"] = {"promotion-bot/variant": f"{MODEL}/{variant}"}
    return yaml.safe_dump({
        "apiVersion": api, "kind": kind, "metadata": meta,
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{
            "name": "server", "image": "vllm/vllm-openai:v0.6.0",
            "args": ["--model", f"/mnt/zoo/{MODEL}/{variant}/weights"]}]}}},
    }, sort_keys=False)


def deployment(variant: str, *, annotate: bool = True) -> str:
    return annotated("Deployment", "apps/v1", variant, annotate)


def rollout(variant: str, *, annotate: bool = True) -> str:
    return annotated("Rollout", "argoproj.io/v1alpha1", variant, annotate)


def acme_repo(path: Path, *, policy: str = POLICY) -> GitOpsRepo:
    """The baseline deployed in all three environments; main has one commit."""
    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", policy)
    for variant in VARIANTS:
        repo.add_variant(variant, model=MODEL, base_model=f"{MODEL}/{BASELINE}" if "int" in variant else "acme/acme-1b")
    repo.write("environments/test/acme-chat.yaml", inference_service(BASELINE))
    repo.write("environments/staging/acme-chat.yaml", deployment(BASELINE))
    repo.write("environments/prod/acme-chat.yaml", rollout(BASELINE))
    repo.commit("acme-chat: the baseline everywhere")
    return repo
