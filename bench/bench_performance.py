"""The `performance` check at its defaults, measured: the verdicts it settles on and the time it takes.

On GuideLLM's mock server (tests/perf_mock_server.py; deterministic latencies with a 10% spread),
each scenario k times with the check's defaults (no requests, rounds or looks set):

    equal +20%    as fast as the baseline, `expect: {output_tokens_per_second: +20%}`  → fail
    faster +20%   twice as fast, the same expectation                                  → pass
    slower        1.5× slower, the default 10% limits                                   → fail
    A/A mock      identical, the default limits                                         → pass or inconclusive

and the real tiny model served twice (`transformers serve`, the demo zoo), A/A with the servers'
CPU per output token judged too, for the interval half-widths a shared CPU gives. Prints every run's
verdict, where its looks stopped, its wall time and the load average; exits 0 when every scenario
gave its verdict in every run.

Environment: BENCH_PERF_RUNS (default 5), BENCH_PERF_AA_RUNS (default 3; 0 skips the real model),
BENCH_PERF_SCENARIOS (comma-separated names, default all).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"
MOCK = ROOT / "tests" / "perf_mock_server.py"
RUNS = int(os.environ.get("BENCH_PERF_RUNS", 5))
AA_RUNS = int(os.environ.get("BENCH_PERF_AA_RUNS", 3))
COPY = "v1.0-fp32-copy"  # the baseline's weights under another name: an A/A promotion
WIN = "        expect: {output_tokens_per_second: +20%}\n"
# name: (candidate, the gate entry's extra lines, the verdicts that count as right)
SCENARIOS = {
    "equal +20%": ("v1.2-int4-g128", WIN, ("fail",)),
    "faster +20%": ("v1.1-int8", WIN, ("pass",)),
    "slower": ("v1.4-int2-g64", "", ("fail",)),
    "A/A mock": ("v1.2-int4-g128", "", ("pass", "inconclusive")),
}

GATE = """\
      - check: performance
        rate: 2
        prompt_tokens: 16
        output_tokens: 16
{extra}"""
POLICY = """\
version: 1
models:
  canopy-tiny: {{baseline: v1.0-fp32}}
serve:
{serve}
environments:
  - name: test
    gate: [{{check: zoo}}]
  - name: staging
    gate:
{gate}"""


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_repo(path: Path, serve: str, candidate: str, extra: str) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from gitops import GitOpsRepo
    from tiny_tokenizer import write_tokenizer

    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", POLICY.format(serve=serve, gate=GATE.format(extra=extra)))
    for v in ("v1.0-fp32", "v1.1-int8", "v1.2-int4-g128", "v1.4-int2-g64"):
        if (ZOO / v).is_dir():
            shutil.copytree(ZOO / v, path / "models" / "canopy-tiny" / v)
    copy = path / "models" / "canopy-tiny" / COPY
    shutil.copytree(ZOO / "v1.0-fp32", copy)
    text = (copy / "variant.yaml").read_text().replace("variant: v1.0-fp32", f"variant: {COPY}")
    (copy / "variant.yaml").write_text(text)
    write_tokenizer(path / "tokenizers" / "tiny")
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("GitOps repo with the canopy-tiny zoo")
    repo.set_variant("staging", f"canopy-tiny/{candidate}")
    repo.commit(f"Promote {candidate} to staging")
    return path


def run_check(repo: Path, work: Path) -> tuple[dict, float]:
    out = work / "report.json"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bot", "check", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD",
                    "--json", str(out), "--cache", str(work / "cache"), "--workdir", str(work / "work"), "--no-record"],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=work, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    [check] = json.loads(out.read_text())["promotions"][0]["checks"]
    return check, wall


def looked(check: dict) -> str:
    seq = next((f["sequential"] for f in check["findings"] if "sequential" in f), None)
    return f"{seq['observations']:>2} of {seq['limit']} pairs" if seq else "one look"


def summary(check: dict) -> str:
    parts = []
    for row in check["rows"]:
        ev = row.get("evidence")
        if ev:
            iv = ev["interval"]
            low = "−∞" if iv["low"] is None else f"{iv['low']:+.0%}"
            high = "+∞" if iv["high"] is None else f"{iv['high']:+.0%}"
            parts.append(f"{row['label'].split(' (')[0]} worse by {iv['estimate']:+.0%} [{low},{high}] {row['verdict']}")
    return "; ".join(parts)


def experiment(title: str, runs: int, serve: str, candidate: str, extra: str, tmp: Path) -> list[tuple[dict, float]]:
    results = []
    for k in range(runs):
        run_dir = tmp / f"{title.replace(' ', '_')}-{k}"
        run_dir.mkdir(parents=True)
        repo = build_repo(run_dir / "gitops", serve, candidate, extra)
        before = load()
        check, wall = run_check(repo, run_dir)
        results.append((check, wall))
        print(f"{title} {k + 1}/{runs}: {check['verdict']:<12} {looked(check)}  {wall:5.0f}s  load {before} → {load()}  "
              f"{summary(check)}", file=sys.stderr, flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    return results


def half_widths(results) -> str:
    by_label: dict[str, list[float]] = {}
    for check, _ in results:
        for row in check["rows"]:
            iv = (row.get("evidence") or {}).get("interval")
            if iv and iv["low"] is not None and iv["high"] is not None:
                by_label.setdefault(row["label"].split(" (")[0], []).append(iv["high"] - iv["low"])
    return ", ".join(f"{k} ±{statistics.median(v) / 2:.0%}" for k, v in by_label.items())


def main() -> int:
    mock = f'  mode: command\n  command: ["{sys.executable}", "{MOCK}", "{{variant}}", "{{port}}"]\n' \
           '  model: "{variant}"\n  timeout: 60s'
    wanted = [s.strip() for s in os.environ.get("BENCH_PERF_SCENARIOS", ",".join(SCENARIOS)).split(",")]
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        tmp = Path(tmp)
        print(f"load average at start: {load()}; the check's defaults, {RUNS} run(s) per scenario", file=sys.stderr)
        for name in wanted:
            candidate, extra, right = SCENARIOS[name]
            results = experiment(name, RUNS, mock, candidate, extra + "        tokenizer: tokenizers/tiny\n", tmp)
            verdicts = [c["verdict"] for c, _ in results]
            good = sum(v in right for v in verdicts)
            walls = [w for _, w in results]
            print(f"{name}: {good}/{len(results)} {'/'.join(right)} ({', '.join(verdicts)}); wall time "
                  f"{', '.join(f'{w:.0f}s' for w in walls)} (median {statistics.median(walls):.0f}s)")
            ok = ok and good == len(results)
        if AA_RUNS and (ZOO / "v1.0-fp32" / "weights" / "config.json").is_file():
            aa = experiment("A/A real", AA_RUNS, "  mode: local\n  timeout: 180s", COPY,
                            "        limits: {cpu_per_token: 10%}\n        tokenizer: tokenizers/tiny\n", tmp)
            verdicts = [c["verdict"] for c, _ in aa]
            print(f"A/A real tiny model: {verdicts.count('fail')} fail of {len(aa)} ({', '.join(verdicts)}); "
                  f"median half-widths: {half_widths(aa)}; wall time median {statistics.median(w for _, w in aa):.0f}s")
            ok = ok and "fail" not in verdicts and "error" not in verdicts
    print(f"load average now: {load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
