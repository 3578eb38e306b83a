"""`check` on a generated GitOps repo: 5,000 manifests, a PR touching 500 of them, model checks off.

Target: under 3 s wall time and under 200 MB peak memory (RSS of the `check` process). The CPU
time and the load average are printed too: on a shared, busy machine the wall time is mostly
waiting for a core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import compiled_like_an_install

MANIFESTS = 5000
TOUCHED = 500
TARGET_S = 3.0
TARGET_MB = 200.0

POLICY = """\
version: 1
models:
  m:
    baseline: v1.0-fp16
environments:
  - name: test
    gate: [{check: zoo}]
  - name: staging
    gate: [{check: zoo}, {check: promotion-order}]
  - name: prod
    gate: [{check: zoo}, {check: promotion-order}]
"""

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels: {{app.kubernetes.io/name: app-{i}}}
  annotations:
    promotion-bot/variant: m/{variant}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--served-model-name", "app-{i}"]
---
apiVersion: v1
kind: Service
metadata: {{name: app-{i}}}
spec:
  ports: [{{port: 80, targetPort: 8000}}]
"""

VARIANT = """\
model: m
base_model: org/m
quantization: {{algorithm: GPTQ, scheme: W4A16, bits: 4, group_size: 128}}
calibration: {{dataset: c4, samples: 512, sequence_length: 2048}}
recipe: recipe.yaml
weights: {{uri: "hf://org/m-{v}", revision: 0123456789abcdef}}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def build_repo(root: Path) -> Path:
    repo = root / "gitops"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "promotion.yaml").write_text(POLICY)
    for v in ("v1.0-fp16", "v1.1-int8", "v1.2-int4-g128"):
        d = repo / "models" / "m" / v
        d.mkdir(parents=True)
        (d / "variant.yaml").write_text(VARIANT.format(v=v))
        (d / "recipe.yaml").write_text("quant_stage: {}\n")
    envs = ("test", "staging", "prod")
    for i in range(MANIFESTS):
        env = envs[i % 3]
        d = repo / "environments" / env
        d.mkdir(parents=True, exist_ok=True)
        variant = "v1.1-int8" if env != "prod" else "v1.0-fp16"
        (d / f"app-{i}.yaml").write_text(MANIFEST.format(i=i, variant=variant))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    touched = 0
    for i in range(MANIFESTS):
        env = envs[i % 3]
        if env == "prod" or touched >= TOUCHED:
            continue
        path = repo / "environments" / env / f"app-{i}.yaml"
        path.write_text(MANIFEST.format(i=i, variant="v1.2-int4-g128"))
        touched += 1
    git(repo, "commit", "-q", "-am", "promote 500")
    return repo


def main() -> int:
    compiled_like_an_install()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        repo = build_repo(root)
        print(f"generated {MANIFESTS} manifests, PR touches {TOUCHED} ({time.monotonic() - t0:.1f}s to build)")
        out = root / "report.json"
        best = None
        for _ in range(3):
            t = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-c",
                 "import resource, sys; from bot.cli import main; code = main(sys.argv[1:]); "
                 "u = resource.getrusage(resource.RUSAGE_SELF); "
                 "print('MAXRSS', u.ru_maxrss, 'CPU', u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(code)",
                 "check", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out),
                 "--comment", str(root / "comment.md"), "--cache", str(root / "cache")],
                capture_output=True, text=True,
            )
            wall = time.monotonic() - t
            usage = proc.stderr.rsplit("MAXRSS", 1)[1].split()
            rss_mb, cpu = int(usage[0]) / 1024, float(usage[2])
            best = min(best or (wall, rss_mb, cpu), (wall, rss_mb, cpu))
        report = json.loads(out.read_text())
        n = len(report["promotions"])
        wall, rss_mb, cpu = best
        print(f"check: {n} promotions, verdict {report['verdict']}, exit {proc.returncode}")
        print(f"wall time: {wall:.2f} s (target < {TARGET_S} s); CPU {cpu:.2f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"peak RSS:  {rss_mb:.0f} MB (target < {TARGET_MB} MB)")
        ok = n == TOUCHED and wall < TARGET_S and rss_mb < TARGET_MB
        print("PASS" if ok else "MISSED TARGET")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
