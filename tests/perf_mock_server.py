"""`python tests/perf_mock_server.py <variant> <port>`: GuideLLM's mock server with the latency
a test assigns to each variant, so command-mode serving starts a slower or faster "model"."""

from __future__ import annotations

import os
import sys

# variant -> (TTFT ms, inter-token latency ms, extra mock-server arguments)
PROFILES = {
    "v1.0-fp32": (40, 8, []),
    "v1.1-int8": (15, 3, []),  # faster than the baseline
    "v1.4-int2-g64": (250, 40, []),  # much slower
    "v1.3-int4-g64": (40, 8, ["--fail-after-requests", "3"]),  # as fast, but errors after 3 requests
}

if __name__ == "__main__":
    variant, port = sys.argv[1], sys.argv[2]
    ttft, itl, extra = PROFILES[variant]
    os.execv(sys.executable, [sys.executable, "-m", "guidellm", "mock-server", "--host", "127.0.0.1", "--port", port,
                              "--model", variant, "--ttft-ms", str(ttft), "--itl-ms", str(itl),
                              "--output-tokens", "16", *extra])
