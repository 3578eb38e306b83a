"""Run a model server as long as the bot process that started it lives, and not a moment longer.

    python lifeline.py <argv of the server...>

Started by `bot.zoo.serving.process` as the leader of a new session (its own process group), with
its standard input a pipe whose other end only the bot holds. It starts the server in that group
and waits. When the bot closes the pipe, or dies in any way (a `SIGKILL` at a check's timeout
included, which no `finally` sees), the read returns end-of-file and the lifeline stops the whole
group: `SIGTERM`, then `SIGKILL` after a grace period. vLLM's engine processes live in that group
too, so none outlives the check that started them.

It exits with the server's exit code once the server exits. Standard library only: it is run by
path, before (and without) importing the bot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 10.0


def _others_in_group() -> bool:
    """Whether a process other than this one is still in this process group (Linux's /proc)."""
    me, group = os.getpid(), os.getpgid(0)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # cannot tell: the caller waits out the grace period, then kills the group
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


def stop_group(grace_s: float = GRACE_S) -> None:
    """SIGTERM to the whole group, then SIGKILL (this process included) to whatever is left after ``grace_s``."""
    try:
        os.killpg(0, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _others_in_group():
        time.sleep(0.1)
    if _others_in_group():
        os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        print("lifeline: no server command", file=sys.stderr)
        return 2
    # A handler, not SIG_IGN: the group's SIGTERM is for the server, and exec gives the server the default back.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"lifeline: cannot start {argv[0]}: {exc}", file=sys.stderr)
        return 127

    def watch() -> None:
        while os.read(0, 4096):  # anything written is ignored; end-of-file means the bot is gone
            pass
        stop_group()

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    code = server.wait()
    stop_group()  # whatever the server left behind in the group goes with it
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
