"""The order of the rounds, and the child process that runs them.

`schedule` pairs a baseline round with a candidate round and flips the order every other pair
(B C, C B, B C, ...: ABBA), so a machine that slowly gets busier or quieter weighs on both sides
alike instead of on whichever ran second.

`python -m bot.perf.rounds plan.json` runs a plan's GuideLLM rounds one after the other in this
one process, printing a progress line after each.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

BASELINE, CANDIDATE = "baseline", "candidate"
PROGRESS = "@@progress "  # lines the parent forwards as the check's progress


def schedule(rounds: int, *, interleaved: bool = True) -> list[tuple[int, str]]:
    """(pair index, side) for each round, in running order; ``rounds`` is even, half per side.

    Sequential: every baseline round, then every candidate round (one server at a time)."""
    if rounds < 2 or rounds % 2:
        raise ValueError(f"rounds must be an even number of at least 2, got {rounds}")
    pairs = rounds // 2
    if not interleaved:
        return [(i, BASELINE) for i in range(pairs)] + [(i, CANDIDATE) for i in range(pairs)]
    order = []
    for i in range(pairs):
        first, second = (BASELINE, CANDIDATE) if i % 2 == 0 else (CANDIDATE, BASELINE)
        order += [(i, first), (i, second)]
    return order


# GuideLLM 0.8.1 sometimes ends a round before its scheduler recorded any timing (seen on a loaded
# 2-core runner) and then cannot compile it: nothing was measured, so the round is run once more.
UNMEASURED = "No measurement start or end times available"


# GuideLLM starts fresh worker processes for every round. Spawned, each imports GuideLLM again
# (about 1.5 s a round on 2 cores); from a fork server that imported it once, they start at once.
WORKER_PRELOAD = ["guidellm.scheduler", "guidellm.backends", "guidellm.benchmark"]


def main(argv: list[str]) -> int:
    import multiprocessing
    import os

    os.environ["GUIDELLM__MP_CONTEXT_TYPE"] = "forkserver"  # read when GuideLLM's settings are imported
    multiprocessing.set_forkserver_preload(WORKER_PRELOAD)
    from guidellm.__main__ import cli  # late: the parent process never imports GuideLLM

    with open(argv[0]) as f:
        plan = json.load(f)
    for index, item in enumerate(plan, 1):
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                cli.main(args=item["argv"], standalone_mode=False, prog_name="guidellm")
                break
            except SystemExit as exc:  # click exits on a usage error even outside standalone mode
                if exc.code:
                    print(f"round {item['name']} exited with {exc.code}", flush=True)
                    return 1
                break
            except Exception as exc:  # noqa: BLE001 — anything GuideLLM raises ends the check as an error
                if attempt == 1 and UNMEASURED in str(exc):
                    print(f"{PROGRESS}round {item['name']}: GuideLLM measured nothing ({exc}); running it again",
                          flush=True)
                    continue
                traceback.print_exc(file=sys.stdout)
                print(f"round {item['name']} failed", flush=True)
                return 1
        print(f"{PROGRESS}round {index}/{len(plan)} ({item['name']}) in {time.monotonic() - started:.1f}s",
              flush=True)
    return 0


if __name__ == "__main__":  # GuideLLM's workers are spawned: they import this module and must not run it
    raise SystemExit(main(sys.argv[1:]))
