"""`monitor` against a real local Prometheus (needs `prometheus`): pass time, and time to revert.

One pass, every deployment × the shipped default rules (5 rules, 3 of them relative to the
previous variant). Queries are batched across deployments, so the requests stay at one per
rule (plus one per relative rule and promotion time) however many deployments there are. Targets: 50 deployments under 2 s; 200 deployments
under 5 s and 150 MB peak RSS of the monitor process. Requests made are reported too.

Time to revert: a live `prometheus_client` exporter scraped every second degrades between two
polls of a 15 s monitoring loop; from the moment Prometheus first shows the rule's value over its
threshold to the revert branch on the remote. Target: under one poll interval plus 5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler

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


POLL_S = 15.0
DEGRADE_AFTER_S = 20.0  # between the second and third poll
REVERT_RULE = """\
    rollback:
      rules:
        - name: p95-latency
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{model_name="{model_name}"}[{window}])))
          above: 2.5
          window: 20s
"""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def time_to_revert(root: Path) -> bool:
    import io
    import threading
    from wsgiref.simple_server import make_server

    import httpx
    from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app

    from bot.core.net import free_port
    from bot.demo.local_prometheus import LocalPrometheus
    from bot.forge.local import LocalForge
    from bot.monitor.watch import monitor
    from bot.policy.rollback import render_query

    repo = root / "revert" / "gitops"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "promotion.yaml").write_text(POLICY.replace("    rollback: {defaults: true}\n", REVERT_RULE))
    prod = repo / "environments" / "prod"
    prod.mkdir(parents=True)
    for variant in ("v1.0-fp16", "v1.2-int4-g128"):
        (prod / "app-0.yaml").write_text(MANIFEST.format(i=0, variant=variant))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"serve {variant}")
    bare = root / "revert" / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")

    registry = CollectorRegistry()
    latency = Histogram("vllm:e2e_request_latency_seconds", "e2e latency", ["model_name"], registry=registry,
                        buckets=(0.5, 1.0, 2.0, 4.0, 8.0))
    port = free_port()
    metrics_app = make_wsgi_app(registry)

    def text_format_only(environ, start_response):
        # prometheus_client's OpenMetrics output rewrites `vllm:` to `vllm_`; vLLM's /metrics as
        # Prometheus stores it keeps the colon, so serve the classic text format.
        environ.pop("HTTP_ACCEPT", None)
        return metrics_app(environ, start_response)

    server = make_server("127.0.0.1", port, text_format_only, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = {"latency": 0.8, "stop": False, "crossed": None}

    def traffic() -> None:
        while not state["stop"]:
            latency.labels("model-0").observe(state["latency"])
            time.sleep(0.05)

    threads = [threading.Thread(target=traffic, daemon=True)]
    try:
        with LocalPrometheus(scrape_targets=[f"127.0.0.1:{port}"]) as prom:
            expr = render_query(REVERT_RULE.split("query: ", 1)[1].split("\n", 1)[0], {"model_name": "model-0", "window": "20s"})

            def watch() -> None:
                while not state["stop"] and state["crossed"] is None:
                    try:
                        result = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}).json()["data"]["result"]
                        if result and float(result[0]["value"][1]) > 2.5:
                            state["crossed"] = time.time()
                    except (httpx.HTTPError, KeyError, ValueError):
                        pass
                    time.sleep(0.2)

            threads.append(threading.Thread(target=watch, daemon=True))
            for t in threads:
                t.start()
            start = time.time()
            pushed = None
            polls = 0
            while time.time() - start < DEGRADE_AFTER_S + 4 * POLL_S:
                if state["latency"] < 2 and time.time() - start >= DEGRADE_AFTER_S:
                    state["latency"] = 3.0
                next_poll = start + polls * POLL_S
                while time.time() < next_poll:
                    if state["latency"] < 2 and time.time() - start >= DEGRADE_AFTER_S:
                        state["latency"] = 3.0
                    time.sleep(0.1)
                polls += 1
                code = monitor(repo, prom.url, env="prod", forge=LocalForge(root / "revert" / "forge"), out=io.StringIO())
                print(f"  poll {polls} at +{time.time() - start:.1f}s: exit {code}", file=sys.stderr)
                if code == 1:
                    pushed = time.time()
                    break
    finally:
        state["stop"] = True
        server.shutdown()
    branches = subprocess.run(["git", "-C", str(bare), "branch", "--list", "promotion-bot/*"],
                              capture_output=True, text=True).stdout.split()
    if pushed is None or state["crossed"] is None or not branches:
        print("time to revert: the rule never tripped or nothing was pushed")
        return False
    took = pushed - state["crossed"]
    print(f"time to revert: {took:.1f} s from the threshold crossing to {branches[-1]} pushed "
          f"(poll every {POLL_S:g} s; target < {POLL_S + 5:g} s)")
    return took < POLL_S + 5


def main() -> int:
    from bot.demo.local_prometheus import LocalPrometheus
    from bot.demo.series import Phase, openmetrics

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
                         "monitor", "--repo", str(repo), "--prometheus-url", prom.url, "--dry-run", "--json", str(out)],
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
        ok &= time_to_revert(root)
    print("PASS" if ok else "MISSED TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
