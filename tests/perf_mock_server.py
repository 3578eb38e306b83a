"""`python tests/perf_mock_server.py <variant> <port> [scale]`: GuideLLM's mock server with the
latency a test assigns to each variant, so command-mode serving starts a slower, faster or identical
"model". ``scale`` multiplies every variant's latency: on a busy machine a few milliseconds of
scheduling delay per request are a smaller share of a slower request.

Every latency has a 10% standard deviation, so identical variants still differ request by request.
"""

from __future__ import annotations

import os
import sys

BASE_TTFT_MS, BASE_ITL_MS = 40.0, 8.0
# variant -> (how many times the baseline's latency, extra mock-server arguments)
PROFILES = {
    "v1.0-fp32": (1.0, []),
    "v1.1-int8": (0.5, []),  # twice as fast as the baseline
    "v1.2-int4-g128": (1.0, []),  # the same as the baseline: an A/A comparison
    "v1.4-int2-g64": (1.5, []),  # exactly 1.5× slower, in TTFT and in every token
    "v1.3-int4-g64": (1.0, ["--fail-after-requests", "3"]),  # as fast, but errors after 3 requests
}


def argv(variant: str, port: str, scale: float = 1.0) -> list[str]:
    factor, extra = PROFILES[variant]
    ttft, itl = BASE_TTFT_MS * factor * scale, BASE_ITL_MS * factor * scale
    return [sys.executable, "-m", "guidellm", "mock-server", "--host", "127.0.0.1", "--port", port,
            "--model", variant, "--ttft-ms", f"{ttft:g}", "--ttft-ms-std", f"{ttft / 10:g}",
            "--itl-ms", f"{itl:g}", "--itl-ms-std", f"{itl / 10:g}", "--output-tokens", "16", *extra]


if __name__ == "__main__":
    command = argv(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:4]))
    os.execv(command[0], command)
