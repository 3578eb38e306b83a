"""Time to recover: from a prod rule's threshold crossing to the revert PR merged, with
`rollback.merge: auto`, in the local story.

The story is the README's setup on the fake GitHub (tests/github_world.py): its workflows run by
the fake's Actions runner, branch protection requiring every `promotion-bot` context, a GitHub App
for the monitor, auto-merge allowed. prod serves `v1.1-int8` (gated) and then `v1.4-int2-g64`
(gated, merged); a live `prometheus_client` exporter, scraped every second by a real Prometheus,
turns slow between two passes of the monitoring workflow, which the schedule starts every 15 s.
The clock runs from the moment Prometheus first shows the critical rule's value over its
threshold to the moment GitHub merged the revert PR. Target: under 60 s.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

POLL_S = 15.0
DEGRADE_AFTER_S = 20.0  # between the second and third pass
TARGET_S = 60.0
THRESHOLD = 2.5
SERVED = "canopy-live"
ROLLBACK = f"""\
    rollback:
      defaults: false
      merge: auto
      rules:
        - name: p95-latency
          query: histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{{model_name="{{model_name}}"}}[{{window}}])))
          above: {THRESHOLD}
          window: 20s
          critical: true
"""


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _exporter():
    """A vLLM-like /metrics whose latency the bench sets; returns (url, state, stop)."""
    from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app

    from bot.demo.local_prometheus import free_port

    registry = CollectorRegistry()
    latency = Histogram("vllm:e2e_request_latency_seconds", "e2e latency", ["model_name"], registry=registry,
                        buckets=(0.5, 1.0, 2.0, 4.0, 8.0))
    app = make_wsgi_app(registry)

    def text_format_only(environ, start_response):
        environ.pop("HTTP_ACCEPT", None)  # the classic format keeps `vllm:` as vLLM's /metrics has it
        return app(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, text_format_only, handler_class=_Quiet)
    state = {"latency": 0.8, "stop": False}

    def traffic() -> None:
        while not state["stop"]:
            latency.labels(SERVED).observe(state["latency"])
            time.sleep(0.05)

    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=traffic, daemon=True).start()

    def stop() -> None:
        state["stop"] = True
        server.shutdown()

    return f"127.0.0.1:{port}", state, stop


def _watch(prom_url: str, state: dict) -> None:
    """When Prometheus first shows the rule's value over the threshold."""
    import httpx

    from bot.policy.rollback import render_query

    expr = render_query(ROLLBACK.split("query: ", 1)[1].split("\n", 1)[0], {"model_name": SERVED, "window": "20s"})
    while not state["stop"] and state.get("crossed") is None:
        try:
            result = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}).json()["data"]["result"]
            if result and float(result[0]["value"][1]) > THRESHOLD:
                state["crossed"] = time.time()
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.2)


def main() -> int:
    from github_world import PROD, REPO, World, story_policy
    from monitorops import prod_manifest

    from bot.demo.local_prometheus import LocalPrometheus

    with tempfile.TemporaryDirectory() as tmp:
        target, state, stop = _exporter()
        try:
            with LocalPrometheus(scrape_targets=[target]) as prom:
                policy = story_policy(ordered=False).split("    rollback:\n")[0] + ROLLBACK
                world = World(Path(tmp), policy=policy, prometheus=prom.url)
                try:
                    t0 = time.monotonic()
                    for variant in ("v1.1-int8", "v1.4-int2-g64"):
                        n = world.propose(f"prod-{variant}", f"Promote {variant} to prod",
                                          lambda r, v=variant: r.write(PROD, prod_manifest(f"canopy-tiny/{v}", SERVED)))
                        code, message = world.merge(n)
                        if code != 200:
                            print(f"setting up: #{n} did not merge: {message}")
                            return 1
                    print(f"set-up: two gated promotions into prod merged in {time.monotonic() - t0:.0f} s",
                          file=sys.stderr)
                    threading.Thread(target=_watch, args=(prom.url, state), daemon=True).start()
                    return _loop(world, state, REPO)
                finally:
                    world.close()
        finally:
            stop()


def _loop(world, state: dict, repo: str) -> int:
    start = time.time()
    passes = []
    merged = None
    while time.time() - start < DEGRADE_AFTER_S + 5 * POLL_S:
        next_pass = start + len(passes) * POLL_S
        while time.time() < next_pass:
            if state["latency"] < 2 and time.time() - start >= DEGRADE_AFTER_S:
                state["latency"] = 3.0
            time.sleep(0.1)
        began = time.time()
        world.monitor_pass()
        passes.append((began - start, time.time() - began))
        said = [line for r in world.runner.runs[-3:] if r.workflow == "monitor.yml"
                for line in r.log.splitlines() if line.startswith(("revert-pr", "existing-pr", "  ", "verdict"))]
        print(f"  pass {len(passes)} at +{began - start:.1f} s took {passes[-1][1]:.1f} s: "
              + " | ".join(s.strip() for s in said[-3:]), file=sys.stderr)
        reverts = [pr for (r, _), pr in world.fake.pulls.items()
                   if r == repo and pr["head_ref"].startswith("promotion-bot/revert-")]
        if reverts and reverts[0].get("merged_ts"):
            merged = reverts[0]["merged_ts"]
            break
    crossed = state.get("crossed")
    if merged is None or crossed is None:
        print("time to recover: the rule never tripped, or the revert PR did not merge")
        return 1
    took = merged - crossed
    # A crossing just after a pass began waits a whole interval for the next one.
    to_merge = merged - (start + passes[-1][0])
    worst = POLL_S + to_merge
    print(f"  crossed at +{crossed - start:.1f} s, merged at +{merged - start:.1f} s", file=sys.stderr)
    print(f"time to recover: {took:.1f} s from the threshold crossing to the revert PR merged by GitHub; "
          f"the tripping pass merged it {to_merge:.1f} s after it started, so at most {worst:.1f} s at a "
          f"{POLL_S:g} s poll (target < {TARGET_S:g} s)")
    ok = took < TARGET_S and worst < TARGET_S
    print("PASS" if ok else "MISSED TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
