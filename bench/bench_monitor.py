"""`monitor` over many prod deployments against a real local Prometheus (needs `prometheus`).

One pass, every deployment × the shipped default rules (5 rules, 3 of them relative to the
previous variant). Queries are batched across deployments, so the requests stay at one per
rule (plus one per relative rule and promotion time) however many deployments there are. Targets: 50 deployments under 2 s; 200 deployments
under 5 s and 150 MB peak RSS of the monitor process. Requests made are reported too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((50, 2.0), (200, 5.0))
TARGET_MB = 150.0

POLICY = """\
version: 1
models:
  m:
    baseline: v1.0-fp16
environments:
  - name: test
  - name: staging
  - name: prod
    rollback: {defaults: true}
"""

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  annotations:
    promotion-bot/variant: m/{variant}
    promotion-bot/served-model: model-{i}
spec:
  replicas: 2
"""


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def build_repo(root: Path, n: int, promoted_at: float) -> Path:
    import os

    repo = root / f"gitops-{n}"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "promotion.yaml").write_text(POLICY)
    prod = repo / "environments" / "prod"
    prod.mkdir(parents=True)
    for variant, at, message in (("v1.0-fp16", promoted_at - 86400, "serve"), ("v1.2-int4-g128", promoted_at, "promote")):
        for i in range(n):
            (prod / f"app-{i}.yaml").write_text(MANIFEST.format(i=i, variant=variant))
        stamp = f"{int(at)} +0000"
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message, env={**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return repo


def main() -> int:
    from bot.monitor.local_prometheus import LocalPrometheus
    from bot.monitor.series import Phase, openmetrics

    now = time.time()
    promoted_at = now - 1800
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        biggest = max(n for n, _ in SIZES)
        history = openmetrics({(f"app-{i}", f"model-{i}"): [Phase(now - 3 * 3600, now - 5)] for i in range(biggest)},
                              step_s=30)
        t0 = time.monotonic()
        with LocalPrometheus(history) as prom:
            print(f"Prometheus with {biggest} served models ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
            for n, target_s in SIZES:
                repo = build_repo(root, n, promoted_at)
                out = root / f"monitor-{n}.json"
                best = None
                for _ in range(3):
                    t = time.monotonic()
                    proc = subprocess.run(
                        [sys.executable, "-c",
                         # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from this (large) parent.
                         "import sys; from bot.cli import main; code = main(sys.argv[1:]); "
                         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
                         "print('MAXRSS', hwm, file=sys.stderr); sys.exit(code)",
                         "monitor", "--repo", str(repo), "--prometheus", prom.url, "--dry-run", "--json", str(out)],
                        capture_output=True, text=True,
                    )
                    wall = time.monotonic() - t
                    if "MAXRSS" not in proc.stderr:
                        print(proc.stderr, file=sys.stderr)
                        return 1
                    rss_mb = int(proc.stderr.rsplit("MAXRSS", 1)[1].split()[0]) / 1024
                    best = min(best or (wall, rss_mb), (wall, rss_mb))
                report = json.loads(out.read_text())
                wall, rss_mb = best
                rules = sum(len(d["rules"]) for d in report["deployments"])
                print(f"monitor: {len(report['deployments'])} deployments × {rules // max(n, 1)} rules, verdict "
                      f"{report['verdict']}, {report['requests']} Prometheus requests")
                print(f"  wall time: {wall:.2f} s (target < {target_s} s)   peak RSS: {rss_mb:.0f} MB (target < {TARGET_MB} MB)")
                ok &= report["verdict"] == "healthy" and wall < target_s and rss_mb < TARGET_MB
    print("PASS" if ok else "MISSED TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
