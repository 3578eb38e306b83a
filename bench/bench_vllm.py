"""vLLM's CPU build on this machine: how long `scripts/install-vllm.sh` takes, how long each zoo
variant takes until vLLM serves it (eager and compiled) or refuses it (with vLLM's reason), and the
server's peak resident memory. The figures in docs/vllm.md come from here and from the integration
tests (tests/test_vllm_integration.py).

Environment: BENCH_VLLM_FRESH=1 installs into a new environment (several minutes, 3.5 GB) instead of
timing the cached one; PROMOTION_BOT_VLLM skips the install; VLLM_CPU_KVCACHE_SPACE (default 1 GiB).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def install() -> str:
    env = dict(os.environ)
    fresh = os.environ.get("BENCH_VLLM_FRESH") == "1"
    tmp = tempfile.mkdtemp(prefix="bench-vllm-env-") if fresh else None
    if tmp:
        env["PROMOTION_BOT_VLLM_ENV"] = f"{tmp}/env"
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install-vllm.sh")], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"install-vllm.sh failed:\n{done.stderr[-2000:]}")
    print(f"install-vllm.sh ({'fresh' if fresh else 'cached'}): {time.monotonic() - started:.0f} s (load {load()})")
    return done.stdout.strip().splitlines()[-1]


def main() -> int:
    from bot.zoo.serving import EngineArgs, ServerRefused, ServeSpec, served, stop_kept

    os.environ["PROMOTION_BOT_VLLM"] = os.environ.get("PROMOTION_BOT_VLLM") or install()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    variants = sorted(p.name for p in ZOO.iterdir() if (p / "weights" / "config.json").is_file())
    for mode, args in (("eager", ("--enforce-eager",)), ("compiled", ())):
        for variant in variants:
            spec = ServeSpec(mode="vllm", timeout=900, args=args, max_servers=1,
                             engine=EngineArgs(served_model="canopy"))
            before, started = load(), time.monotonic()
            try:
                with served(spec, ZOO / variant / "weights", name=f"canopy-tiny/{variant}") as endpoint:
                    ready = time.monotonic() - started
                    peak = endpoint.memory.peak_bytes() if endpoint.memory else None
                    print(f"{mode:8} {variant:15} served after {ready:5.0f} s, peak RSS "
                          f"{(peak or 0) / 2**30:.2f} GiB (load {before} -> {load()})")
            except ServerRefused as exc:
                print(f"{mode:8} {variant:15} refused after {time.monotonic() - started:5.0f} s: {exc.reason[:160]}")
            finally:
                stop_kept()
    return 0
