"""The order of the rounds, and the child process that runs them.

`schedule` pairs a baseline round with a candidate round and flips the order every other pair
(B C, C B, B C, ...: ABBA), so a machine that slowly gets busier or quieter weighs on both sides
alike instead of on whichever ran second.

`python -P bot/perf/rounds.py` runs GuideLLM rounds one after the other in this one process as
they arrive on stdin (one JSON object a line: `{"name", "argv"}`), marking each round's start and
end and printing a progress line after each, until stdin closes.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

BASELINE, CANDIDATE = "baseline", "candidate"
PROGRESS = "@@progress "  # lines the parent forwards as the check's progress
STARTING, FINISHED = "@@starting ", "@@finished "  # a round's bounds: the parent reads the server's CPU there


def pairs_in_order(start: int, stop: int, *, interleaved: bool = True) -> list[tuple[int, str]]:
    """(pair index, side) for each round of pairs ``start``..``stop`` (exclusive), in running order;
    pair i runs B C when i is even, C B when it is odd, whichever look it falls in.

    Sequential: every baseline round, then every candidate round (one server at a time)."""
    if not 0 <= start < stop:
        raise ValueError(f"pairs {start}..{stop} are no pairs to run")
    if not interleaved:
        return [(i, BASELINE) for i in range(start, stop)] + [(i, CANDIDATE) for i in range(start, stop)]
    order = []
    for i in range(start, stop):
        first, second = (BASELINE, CANDIDATE) if i % 2 == 0 else (CANDIDATE, BASELINE)
        order += [(i, first), (i, second)]
    return order


def round_name(pair: int, side: str, *, pairs: int, interleaved: bool = True) -> str:
    """`round3-candidate`: the round's place in the running order of all ``pairs`` (its report's name)."""
    if not interleaved:
        return f"round{pair + 1 + (pairs if side == CANDIDATE else 0)}-{side}"
    first = BASELINE if pair % 2 == 0 else CANDIDATE
    return f"round{2 * pair + (1 if side == first else 2)}-{side}"


# GuideLLM 0.8.1 sometimes ends a round before its scheduler recorded any timing (seen on a loaded
# 2-core runner) and then cannot compile it: nothing was measured, so the round is run again.
UNMEASURED = "No measurement start or end times available"
# How often a round is run before a report that measured nothing or lost a request ends the check.
# Losing one is a race in GuideLLM 0.8.1's scheduler, not a property of the server: the thread that
# receives a worker's last update sets the shutdown event (`WorkerGroupState._locked_update`) before
# it queues that update, and the consumer, whose 0.1 s poll may time out in between, then stops
# without it. On a busy runner that window is wide enough to be hit twice in a row (seen once in a
# full test suite beside a benchmark, load about 5); each attempt is an independent draw.
ATTEMPTS = 3


def unaccounted(report: dict) -> int:
    """How many requests GuideLLM's scheduler still held (queued, pending or in flight) when it ended
    a round that no constraint stopped: 0.8.1 on a loaded runner sometimes ends a round with one
    request in flight and reports the others only (3 of 4), so that round says nothing of the
    request it lost. A round a constraint ended (its request count or time limit) has a processing
    end, and GuideLLM finalises the requests it cut (cancelled): those are accounted for."""
    state = (report.get("benchmarks") or [{}])[0].get("scheduler_state") or {}
    if state.get("end_processing_time") is not None:
        return 0
    return sum(int(state.get(k) or 0) for k in ("queued_requests", "pending_requests", "processing_requests"))


def unaccounted_in(path: str | Path | None) -> int:
    try:
        with open(path) as f:
            return unaccounted(json.load(f))
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return 0  # no report or not one GuideLLM wrote: the parent says so when it reads it


# GuideLLM starts fresh worker processes for every round. Spawned, each imports GuideLLM again
# (about 1.5 s a round on 2 cores); from a fork server that imported it once, they start at once.
WORKER_PRELOAD = ["guidellm.scheduler", "guidellm.backends", "guidellm.benchmark"]


def main(lines) -> int:
    import multiprocessing
    import os

    os.environ["GUIDELLM__MP_CONTEXT_TYPE"] = "forkserver"  # read when GuideLLM's settings are imported
    multiprocessing.set_forkserver_preload(WORKER_PRELOAD)
    from guidellm.__main__ import cli  # late: the parent process never imports GuideLLM

    for index, line in enumerate(lines, 1):
        item = json.loads(line)
        started = time.monotonic()
        for attempt in range(1, ATTEMPTS + 1):
            print(f"{STARTING}{item['name']}", flush=True)  # again on a rerun: its CPU is the rerun's only
            try:
                cli.main(args=item["argv"], standalone_mode=False, prog_name="guidellm")
            except SystemExit as exc:  # click exits on a usage error even outside standalone mode
                if exc.code:
                    print(f"round {item['name']} exited with {exc.code}", flush=True)
                    return 1
            except Exception as exc:  # noqa: BLE001 — anything GuideLLM raises ends the check as an error
                if attempt < ATTEMPTS and UNMEASURED in str(exc):
                    print(f"{PROGRESS}round {item['name']}: GuideLLM measured nothing ({exc}); running it again",
                          flush=True)
                    continue
                traceback.print_exc(file=sys.stdout)
                print(f"round {item['name']} failed", flush=True)
                return 1
            lost = unaccounted_in(item.get("report"))
            if attempt < ATTEMPTS and lost:  # the parent refuses a report that still loses requests
                print(f"{PROGRESS}round {item['name']}: GuideLLM lost track of {lost} request(s); running it again",
                      flush=True)
                continue
            break
        print(f"{FINISHED}{item['name']}", flush=True)
        print(f"{PROGRESS}round {index} ({item['name']}) in {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":  # GuideLLM's workers are spawned: they import this module and must not run it
    raise SystemExit(main(sys.stdin))
