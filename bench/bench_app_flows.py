"""The canopy app-flow suites (evals/canopy) against one model server: wall time, and the share
of it spent outside the server (loading suites, building requests, judging replies, comparing).

The server is `transformers serve` on the zoo's baseline (models/canopy-tiny/v1.0-fp32/weights)
when the zoo is there (or the folder in $BENCH_APP_FLOWS_WEIGHTS); otherwise a loopback stub answering after a fixed delay, which measures
the bot's own overhead against a known server time. Target: under 5% outside the server.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "evals" / "canopy"
WEIGHTS = Path(os.environ.get("BENCH_APP_FLOWS_WEIGHTS") or ROOT / "models" / "canopy-tiny" / "v1.0-fp32" / "weights")
TARGET_SHARE = 0.05
STUB_DELAY_S = 0.05
ROUNDS = 3  # the suite runs this many times against one server: the first round warms it up


class _Stub(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(STUB_DELAY_S)
        data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": "Paris"}'}}],
                           "usage": {"completion_tokens": 5}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from bot.appflows.runner import Endpoint

        yield Endpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", "stub"), f"stub answering after {STUB_DELAY_S * 1000:.0f} ms"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def real_server():
    from bot.appflows.runner import Endpoint
    from bot.zoo.serving import served

    with served({"mode": "local"}, WEIGHTS, name="canopy-tiny/v1.0-fp32") as ep:
        yield Endpoint(ep.base_url, ep.model), f"transformers serve on {WEIGHTS}"


def one_round(endpoint) -> tuple[float, float, int]:
    """(wall seconds, seconds with a request in flight, cases) for load + run + judge + compare."""
    from bot.appflows.compare import compare, records
    from bot.appflows.options import GateOptions
    from bot.appflows.runner import run_cases
    from bot.appflows.suite import all_cases, load_suite_files

    started = time.monotonic()
    cases = all_cases(load_suite_files(sorted(SUITES.glob("*.yaml"))))
    run = run_cases(endpoint, cases, concurrency=4, timeout_s=120)
    compare("app-flows", GateOptions(), records(run, run))
    return time.monotonic() - started, run.server_s, len(cases)


def main() -> int:
    server = real_server if (WEIGHTS / "config.json").is_file() else stub_server
    with server() as (endpoint, what):
        print(f"server: {what}", file=sys.stderr, flush=True)
        rounds = []
        for n in range(ROUNDS):
            rounds.append(one_round(endpoint))
            print(f"round {n + 1}/{ROUNDS}: {rounds[-1][0]:.2f}s", file=sys.stderr, flush=True)
    measured = rounds[1:] or rounds
    wall = sum(r[0] for r in measured) / len(measured)
    inside = sum(r[1] for r in measured) / len(measured)
    share = (wall - inside) / wall if wall else 0.0
    cases = measured[0][2]
    print(f"app-flows suite: {cases} cases, wall {wall:.2f}s, in the server {inside:.2f}s, outside {share:.1%} "
          f"({(wall - inside) / cases * 1000:.1f} ms per case; target < {TARGET_SHARE:.0%}) [{what}]")
    return 0 if share < TARGET_SHARE else 1


if __name__ == "__main__":
    raise SystemExit(main())
