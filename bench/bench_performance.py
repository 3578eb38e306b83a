"""The `performance` check's error rates, measured: how often identical weights fail (A/A on the real
tiny model, `transformers serve` from the demo zoo) and how often a candidate served exactly 1.5×
slower (GuideLLM's mock server, tests/perf_mock_server.py) is caught, k runs each at the default
10% limits. Prints every run's verdict and interval widths with the machine's load average, then
the false-fail rate, the catch rate and the check's wall time.

Targets: 0 fail verdicts in the A/A runs (inconclusive allowed), every slower candidate failed.
`BENCH_PERF_BEFORE=<folder with an older checkout>` also times that checkout's check on the same
A/A promotion and the same requests, alternating with this one's (new, old, new, old, ...:
`BENCH_PERF_BEFORE_RUNS` pairs, default 3) so a change of load falls on both; the ratio is the
median of the pairs' ratios (target: within 1.5×).

Environment: BENCH_PERF_AA_RUNS (default 10), BENCH_PERF_SLOW_RUNS (5), BENCH_PERF_REQUESTS (16),
BENCH_PERF_ROUNDS (8).
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
AA_RUNS = int(os.environ.get("BENCH_PERF_AA_RUNS", 10))
SLOW_RUNS = int(os.environ.get("BENCH_PERF_SLOW_RUNS", 5))
REQUESTS = int(os.environ.get("BENCH_PERF_REQUESTS", 16))
ROUNDS = int(os.environ.get("BENCH_PERF_ROUNDS", 8))
COPY = "v1.0-fp32-copy"  # the baseline's weights under another name: an A/A promotion

GATE = """\
      - check: performance
        requests: {requests}
{rounds}        rate: 2
        prompt_tokens: 32
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


def build_repo(path: Path, serve: str, candidate: str, extra: str = "", rounds: int | None = ROUNDS) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from gitops import GitOpsRepo
    from tiny_tokenizer import write_tokenizer

    repo = GitOpsRepo(path)
    # rounds=None: a checkout from before rounds existed
    gate = GATE.format(requests=REQUESTS, rounds="" if rounds is None else f"        rounds: {rounds}\n", extra=extra)
    repo.write("promotion.yaml", POLICY.format(serve=serve, gate=gate))
    for v in ("v1.0-fp32", "v1.2-int4-g128", "v1.4-int2-g64"):
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


def run_check(repo: Path, work: Path, code_root: Path = ROOT) -> tuple[dict, float]:
    out = work / "report.json"
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bot", "check", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD",
                    "--json", str(out), "--cache", str(work / "cache"), "--workdir", str(work / "work")],
                   env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    [check] = json.loads(out.read_text())["promotions"][0]["checks"]
    return check, wall


def summary(check: dict) -> str:
    parts = []
    for row in check["rows"]:
        ev = row.get("evidence")
        if ev:
            iv = ev["interval"]
            settle = f", settle≈{ev['settle_n']}" if ev.get("settle_n") else ""
            parts.append(f"{row['label'].split(' (')[0]} {iv['estimate']:+.0%} [{iv['low']:+.0%},{iv['high']:+.0%}]"
                         f" {row['verdict']}{settle}")
        elif row.get("delta") is not None and not row["label"].startswith("error rate"):
            parts.append(f"{row['label']} {row['delta']:+.0%} {row['verdict']}")
    return "; ".join(parts)


def experiment(title: str, runs: int, serve: str, candidate: str, tmp: Path, extra: str = "",
               code_root: Path = ROOT, rounds: int | None = ROUNDS) -> list[tuple[dict, float, str]]:
    results = []
    for k in range(runs):
        run_dir = tmp / f"{title}-{k}"
        run_dir.mkdir(parents=True)
        repo = build_repo(run_dir / "gitops", serve, candidate, extra, rounds)
        before = load()
        check, wall = run_check(repo, run_dir, code_root)
        results.append((check, wall, f"{before} → {load()}"))
        print(f"{title} {k + 1}/{runs}: {check['verdict']:<12} {wall:5.0f}s  load {before} → {load()}  "
              f"{summary(check)}", file=sys.stderr, flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    return results


def widths(results) -> str:
    by_label: dict[str, list[float]] = {}
    for check, _, _ in results:
        for row in check["rows"]:
            if row.get("evidence"):
                iv = row["evidence"]["interval"]
                by_label.setdefault(row["label"].split(" (")[0], []).append(iv["high"] - iv["low"])
    return ", ".join(f"{k} ±{statistics.median(v) / 2:.0%}" for k, v in by_label.items())


def main() -> int:
    if not (ZOO / "v1.0-fp32" / "weights" / "config.json").is_file():
        print("the canopy-tiny zoo is not built here: python -m bot.demo.build_zoo", file=sys.stderr)
        return 1
    local = "  mode: local\n  timeout: 180s"
    mock = f'  mode: command\n  command: ["{sys.executable}", "{MOCK}", "{{variant}}", "{{port}}"]\n' \
           '  model: "{variant}"\n  timeout: 60s'
    mock_extra = "        tokenizer: tokenizers/tiny\n"
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        tmp = Path(tmp)
        print(f"load average at start: {load()}; {REQUESTS} requests per variant in {ROUNDS} rounds, limits 10%",
              file=sys.stderr, flush=True)
        aa = experiment("A/A real", AA_RUNS, local, COPY, tmp)
        slow = experiment("1.5x mock", SLOW_RUNS, mock, "v1.4-int2-g64", tmp, mock_extra)
        before = os.environ.get("BENCH_PERF_BEFORE")
        pairs = []
        for k in range(int(os.environ.get("BENCH_PERF_BEFORE_RUNS", 3)) if before else 0):
            [(_, new_wall, _)] = experiment(f"A/A real, now, pair {k + 1}", 1, local, COPY, tmp)
            [(old_check, old_wall, _)] = experiment(f"A/A real, before, pair {k + 1}", 1, local, COPY, tmp,
                                                   code_root=Path(before), rounds=None)
            pairs.append((new_wall, old_wall, old_check["verdict"]))

    aa_verdicts = [c["verdict"] for c, _, _ in aa]
    false_fail = aa_verdicts.count("fail")
    settle = [r["evidence"]["settle_n"] for c, _, _ in aa for r in c["rows"]
              if r.get("evidence") and r["evidence"].get("settle_n")]
    caught = sum(c["verdict"] == "fail" for c, _, _ in slow)
    wall = statistics.median(w for _, w, _ in aa) if aa else float('nan')
    print(f"A/A (real tiny model, {len(aa)} runs): {false_fail} fail, {aa_verdicts.count('inconclusive')} inconclusive, "
          f"{aa_verdicts.count('pass')} pass, {aa_verdicts.count('error')} error; false-fail rate {false_fail / max(len(aa), 1):.0%}"
          + (f"; inconclusive rows would settle at about {min(settle)}–{max(settle)}" if settle else ""))
    print(f"A/A interval half-widths (median): {widths(aa)}")
    print(f"1.5× slower (mock server, {len(slow)} runs): caught {caught}/{len(slow)} (catch rate {caught / max(len(slow), 1):.0%}); "
          f"half-widths {widths(slow)}")
    print(f"wall time of the check, A/A: median {wall:.0f}s ({REQUESTS} requests per variant, {ROUNDS} rounds)")
    loads = [l for _, _, l in aa + slow]
    print(f"load average (1, 5, 15 min) before → after each run: {loads[0]} … {loads[-1]}; now {load()}")
    ok = false_fail == 0 and caught == len(slow) and "error" not in aa_verdicts
    if pairs:
        ratio = statistics.median(n / o for n, o, _ in pairs)
        print("wall time now vs before (one GuideLLM run per variant, baseline first), alternating pairs: "
              + ", ".join(f"{n:.0f}s/{o:.0f}s" for n, o, _ in pairs)
              + f"; before's verdicts {[v for _, _, v in pairs]}; median ratio {ratio:.2f} (target ≤ 1.5)")
        ok = ok and ratio <= 1.5
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
