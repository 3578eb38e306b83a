"""A/A and known-answer runs of the gates on the demo zoo: the first test of any gate.

A/A: the baseline promoted against an identical copy of itself (`v1.0-fp32-aa`, the same weights
under another name) must pass every run, with zero-width intervals: a gate that fails or is
inconclusive on equal models teaches reviewers to ignore it. Known answers: int2 must fail, int8
and int4-g64 must pass stage 1. Each PR is judged several times: the verdicts and intervals of the
same PR must not change between runs.

    python -m bench aa                    # 10 A/A runs of stage 1 and of app-flows, 3 of the others
    BENCH_AA_RUNS=2 BENCH_AA_OTHERS=1 python -m bench aa

Prints one line per run (with the machine's load average) and a summary table; exits non-zero
when an A/A run does not pass or a known answer is wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"
RUNS = int(os.environ.get("BENCH_AA_RUNS", "10"))
OTHERS = int(os.environ.get("BENCH_AA_OTHERS", "3"))
AA = "v1.0-fp32-aa"


def policy() -> str:
    """The demo policy with staging judged by app-flows alone (performance has its own bench)."""
    data = yaml.safe_load((ROOT / "promotion.yaml").read_text())
    for env in data["environments"]:
        if env["name"] == "staging":
            env["gate"] = [c for c in env["gate"] if c["check"] == "app-flows"]
        env.pop("rollback", None)
        env.pop("probes", None)
        env.pop("require_canary", None)
    data.pop("templates", None)
    return yaml.safe_dump(data, sort_keys=False)


def build_repo(path: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from gitops import GitOpsRepo

    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", policy())
    for variant in ("v1.0-fp32", "v1.1-int8", "v1.3-int4-g64", "v1.4-int2-g64"):
        shutil.copytree(ZOO / variant, path / "models" / "canopy-tiny" / variant)
    shutil.copytree(ZOO / "v1.0-fp32", path / "models" / "canopy-tiny" / AA)
    text = (path / "models" / "canopy-tiny" / AA / "variant.yaml").read_text()
    (path / "models" / "canopy-tiny" / AA / "variant.yaml").write_text(text.replace("v1.0-fp32", AA, 1))
    shutil.copytree(ROOT / "evals", path / "evals")
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("The demo zoo, with an identical copy of the baseline")
    return repo


def pr(repo, env: str, variant: str, *, also_test: bool = False) -> tuple[str, str]:
    """A branch promoting ``variant`` into ``env`` (test serving it first when ``also_test``)."""
    repo.repo.git.checkout("main")
    if also_test:
        repo.set_variant("test", f"canopy-tiny/{variant}")
        repo.commit(f"{variant} in test")
    base = repo.repo.head.commit.hexsha
    repo.set_variant(env, f"canopy-tiny/{variant}")
    head = repo.commit(f"Promote {variant} to {env}")
    repo.repo.git.reset("--hard", base)  # main stays at base; the PR lives on as a commit
    return base, head


def judge(repo, base: str, head: str, cache: Path, out: Path) -> tuple[dict, float]:
    """`promotion-bot check` as a user runs it (its summary goes to /dev/null: the rows are printed here)."""
    from bot.cli import main as cli

    started = time.monotonic()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        cli(["check", "--repo", str(repo.path), "--base", base, "--head", head, "--json", str(out),
             "--cache", str(cache)])
    return json.loads(out.read_text()), time.monotonic() - started


def rows_of(report: dict) -> list[tuple[str, str, dict | None]]:
    return [(f"{c['name']}: {r['label']}", r["verdict"], r.get("evidence"))
            for p in report["promotions"] for c in p["checks"] for r in c["rows"]
            if c["name"] not in ("zoo", "promotion-order")]


def fmt_interval(ev: dict | None) -> str:
    if not ev:
        return "no interval"
    i = ev["interval"]
    return f"[{i['low']:+.4g}, {i['high']:+.4g}] (limit {ev['limit']:g} {ev['unit']})"


def main() -> int:
    plans = [("A/A stage 1", "test", AA, False, RUNS, {"pass"}),
             ("A/A app-flows", "staging", AA, True, RUNS, {"pass"}),
             ("int2 stage 1", "test", "v1.4-int2-g64", False, OTHERS, {"fail"}),
             ("int2 app-flows", "staging", "v1.4-int2-g64", True, OTHERS, {"fail"}),
             ("int8 stage 1", "test", "v1.1-int8", False, OTHERS, {"pass"}),
             ("int4-g64 stage 1", "test", "v1.3-int4-g64", False, OTHERS, {"pass"})]
    if not (ZOO / "v1.0-fp32" / "weights" / "config.json").is_file():
        print("the demo zoo is not built here: python -m bot.demo.build_zoo", file=sys.stderr)
        return 1
    bad = 0
    summary = []
    with tempfile.TemporaryDirectory(prefix="bench-aa-") as tmp:
        tmp = Path(tmp)
        repo = build_repo(tmp / "repo")
        cache = tmp / "cache"
        for name, env, variant, also_test, runs, expected in plans:
            base, head = pr(repo, env, variant, also_test=also_test)
            verdicts, widths, intervals, seconds = Counter(), [], set(), []
            for k in range(runs):
                report, took = judge(repo, base, head, cache, tmp / f"{name}-{k}.json".replace(" ", "_").replace("/", ""))
                seconds.append(took)
                verdicts[report["verdict"]] += 1
                rows = rows_of(report)
                intervals.add(tuple((label, fmt_interval(ev)) for label, _, ev in rows))
                widths += [ev["interval"]["high"] - ev["interval"]["low"] for _, _, ev in rows if ev]
                load = os.getloadavg()[0]
                print(f"  {name} run {k + 1}/{runs}: {report['verdict']} in {took:.1f}s (load {load:.2f}); "
                      + "; ".join(f"{label} {verdict} {fmt_interval(ev)}" for label, verdict, ev in rows), flush=True)
            ok = set(verdicts) <= expected and len(intervals) == 1
            bad += not ok
            summary.append((name, runs, dict(verdicts), max(widths, default=0.0), len(intervals) == 1,
                            sum(seconds) / len(seconds), "ok" if ok else "WRONG"))
    print("\n| Gate | Runs | Verdicts | Widest interval | Same intervals every run | Mean time | |")
    print("|---|---|---|---|---|---|---|")
    for name, runs, verdicts, widest, same, mean, ok in summary:
        print(f"| {name} | {runs} | {', '.join(f'{v} {n}' for v, n in sorted(verdicts.items()))} | {widest:.4g} | "
              f"{'yes' if same else 'no'} | {mean:.1f}s | {ok} |")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    return 1 if bad else 0
