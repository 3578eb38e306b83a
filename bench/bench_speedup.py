"""Are the compressed tiny-model variants faster than fp32 on this CPU? One interleaved run: every
zoo variant served at once by `transformers serve`, GuideLLM rounds in cycles (one round per
variant per cycle, the order rotated each cycle so no variant always runs first), and each variant
judged against fp32's rounds of the same cycles by the performance check's own comparison
(`bot.perf.compare.decide`) with `expect: {output_tokens_per_second: +20%}`, the demo policy's
promise. Prints each variant's throughput and request-latency change with its interval, its peak
resident memory against fp32's, the verdict, and the load average before and after.

Environment: BENCH_SPEEDUP_CYCLES (default 6), BENCH_SPEEDUP_REQUESTS (per round, default 8),
BENCH_SPEEDUP_EXPECT (default 20, percent).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"
BASELINE = "v1.0-fp32"
CYCLES = int(os.environ.get("BENCH_SPEEDUP_CYCLES", 6))
REQUESTS = int(os.environ.get("BENCH_SPEEDUP_REQUESTS", 8))
EXPECT = float(os.environ.get("BENCH_SPEEDUP_EXPECT", 20)) / 100


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    from bot.perf.compare import PeakMemory, change, compare
    from bot.perf.guidellm import Profile, RoundSpec, command, run_rounds
    from bot.perf.options import MEMORY, METRICS, PerfLimits
    from bot.zoo.serving import ServeSpec, served

    variants = sorted(p.name for p in ZOO.iterdir() if (p / "weights" / "config.json").is_file())
    if BASELINE not in variants:
        print(f"no {BASELINE} in {ZOO}: build the zoo with `python -m bot.demo.build_zoo`")
        return 1
    profile = Profile(kind="concurrent", rate=2, requests=REQUESTS, prompt_tokens=32, output_tokens=16)
    before = load()
    with tempfile.TemporaryDirectory(prefix="bench-speedup-") as tmp, contextlib.ExitStack() as stack:
        out = Path(tmp)
        eps = {v: stack.enter_context(served(ServeSpec(timeout=300), ZOO / v / "weights", name=f"canopy-tiny/{v}"))
               for v in variants}
        tokenizer = ZOO / BASELINE / "weights"
        specs, names = [], {}
        warm = Profile(**{**profile.__dict__, "requests": 2})
        specs += [RoundSpec(f"warmup-{v}", tuple(command(eps[v].base_url, eps[v].model, warm, tokenizer, out, f"warmup-{v}")))
                  for v in variants]
        for cycle in range(CYCLES):
            shift = cycle % len(variants)
            order = variants[shift:] + variants[:shift]
            p = Profile(**{**profile.__dict__, "seed": profile.seed + cycle})  # the same prompts for every variant of a cycle
            for v in order:
                name = f"cycle{cycle + 1}-{v}"
                names[(cycle, v)] = name
                specs.append(RoundSpec(name, tuple(command(eps[v].base_url, eps[v].model, p, tokenizer, out, name))))
        print(f"{len(variants)} variants served at once; {len(specs)} GuideLLM rounds of {REQUESTS} requests "
              f"(2 streams, 32-token prompts, 16-token replies), load before: {before}", flush=True)
        started = time.monotonic()
        done = {r.name: r for r in run_rounds(specs, out_dir=out, timeout_s=3600, progress=lambda m: None)}
        peaks = {v: eps[v].memory.peak_bytes() for v in variants}
    after = load()
    limits = PerfLimits(expect={"output_tokens_per_second": EXPECT})
    tps = next(m for m in METRICS if m.key == "output_tokens_per_second")
    lat = next(m for m in METRICS if m.key == "request_latency")
    print(f"{'variant':<16} {'throughput vs fp32 (98.75%)':<30} {'request latency vs fp32':<28} "
          f"{'peak memory':<22} verdict (expect ≥ +{EXPECT:.0%})")
    for v in variants:
        if v == BASELINE:
            continue
        base = [done[names[(c, BASELINE)]] for c in range(CYCLES)]
        cand = [done[names[(c, v)]] for c in range(CYCLES)]
        result = compare("performance", limits, base, cand, memory=PeakMemory(peaks[v], peaks[BASELINE]))
        rows = {r.label: r for r in result.rows}

        def shown(m) -> str:
            ev = rows[m.label].evidence
            if ev is None:
                return "–"
            est, low, high = change(m, ev.interval)
            return f"{est:+.0%} [{low:+.0%}, {high:+.0%}]"
        mem = rows[MEMORY.label]
        print(f"{v:<16} {shown(tps):<30} {shown(lat):<28} "
              f"{mem.candidate:.0f} vs {mem.baseline:.0f} MB{'':<6} {result.verdict}: {result.detail[:160]}")
    print(f"{time.monotonic() - started:.0f}s of rounds; load average before {before}, after {after}")
    return 0
