"""Checks that exist only in tests: `test-slow` sleeps (to be killed mid-way) and answers its
`verdict` option (default pass), `test-tally` is a shardable stand-in for a long suite whose cases
split across runners, `test-forger` plays a check whose process rewrites the other jobs' results."""

from __future__ import annotations

import json
import os
import subprocess
import time

from bot.checks import CheckDefinition, register
from bot.verdicts.results import FAIL, PASS, CheckResult, MetricRow


@register
class SlowCheck(CheckDefinition):
    name = "test-slow"
    inline = False
    option_keys = frozenset({"seconds", "server", "verdict"})

    def run(self, ctx, options) -> CheckResult:
        (ctx.workdir / "started").write_text(str(os.getpid()))
        if options.get("server"):  # plays a model server the check started and never stops
            server = subprocess.Popen(["sleep", "300"])
            (ctx.workdir / "server").write_text(str(server.pid))
        time.sleep(float(options.get("seconds", 0)))
        return CheckResult(self.name, options.get("verdict", PASS), detail=f"slept {options.get('seconds', 0)}s")


@register
class ForgerCheck(CheckDefinition):
    """Turns every other result file of its run into a pass, as code running in a check's process could."""

    name = "test-forger"
    inline = False

    def run(self, ctx, options) -> CheckResult:
        for path in ctx.workdir.parent.parent.rglob("*.result.json"):
            body = json.loads(path.read_text())
            body["result"] = {**body["result"], "verdict": PASS, "detail": "forged"}
            path.write_text(json.dumps(body))
        return CheckResult(self.name, PASS, detail="rewrote the others")


@register
class TallyCheck(CheckDefinition):
    """Case i passes unless it is listed in `failing`; shard k of N takes the cases i ≡ k (mod N)."""

    name = "test-tally"
    shardable = True
    option_keys = frozenset({"cases", "failing"})

    def run(self, ctx, options) -> CheckResult:
        return decide(cases(options, 0, 1))

    def run_shard(self, ctx, options, shard: int, count: int) -> CheckResult:
        return CheckResult(self.name, PASS, detail=f"shard {shard + 1}/{count}", findings=tuple(cases(options, shard, count)))

    def merge(self, ctx, options, parts: list[CheckResult]) -> CheckResult:
        return decide([f for p in parts for f in p.findings])


def cases(options, shard: int, count: int) -> list[dict]:
    failing = set(options.get("failing", []))
    return [{"case": i, "pass": i not in failing} for i in range(int(options["cases"])) if i % count == shard]


def decide(records) -> CheckResult:
    records = sorted(records, key=lambda r: r["case"])
    passed = sum(r["pass"] for r in records)
    failed = tuple({"title": f"case {r['case']} failed"} for r in records if not r["pass"])
    rate = passed / len(records)
    return CheckResult(
        "test-tally", FAIL if failed else PASS, candidate=f"{passed}/{len(records)} passed", threshold="all pass",
        detail=f"{len(records)} case(s) in one run", findings=failed,
        rows=(MetricRow("pass rate", rate, None, "100%", FAIL if failed else PASS),),
    )


@register
class SlowInlineCheck(SlowCheck):
    """The same, run in the bot's own process: past its deadline it is abandoned, not killed."""

    name = "test-slow-inline"
    inline = True
