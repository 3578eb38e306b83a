"""A model server as a child process: started under a lifeline, waited for, stopped, measured.

Every server runs in a session of its own, led by `lifeline.py`, which stops the whole group when
the bot closes its pipe or dies (a `SIGKILL` at a check's timeout included). While it runs,
`PeakMemory` follows the resident memory of the server's process tree (a launcher's workers
included, the lifeline not), so the performance check can compare the two variants' footprints.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import ExternalError
from bot.zoo.serving import lifeline

_STOP_GRACE = lifeline.GRACE_S
_LIFELINE = Path(lifeline.__file__).resolve()


class ServerRefused(ExternalError):
    """The server exited before it was ready: it refused what it was asked to serve.

    ``reason`` is the server's own last error line ("ValueError: ... not supported on CPU");
    ``tail`` the last lines of its output."""

    def __init__(self, what: str, code: int | None, reason: str, tail: str) -> None:
        self.what, self.code, self.reason, self.tail = what, code, reason, tail
        super().__init__("model server", f"`{what}` exited with code {code} before it was ready"
                         + (f": {reason}" if reason else "") + (f"; last output:\n{tail}" if tail else ""))


class PeakMemory:
    """The peak resident memory (bytes) of a process and its descendants, while it runs, and the CPU
    time they used (read when asked).

    A thread sums the tree's RSS every ``interval_s``; the kernel's own high-water mark of each
    process (VmHWM) catches a peak between two samples, so the result is the larger of the two.
    ``skip_root``: the root is a launcher (the lifeline) whose own memory is not the server's."""

    def __init__(self, pid: int, interval_s: float = 0.2, *, skip_root: bool = False) -> None:
        import psutil  # late: only a served process needs it

        self._psutil = psutil
        self._skip_root = skip_root
        try:
            self._root: "psutil.Process | None" = psutil.Process(pid)
        except psutil.Error:
            self._root = None  # exited already: wait_ready reports that
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, args=(interval_s,), name=f"peak-memory-{pid}", daemon=True)
        self._thread.start()

    def _follow(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.sample()

    def sample(self) -> None:
        psutil = self._psutil
        if self._root is None:
            return
        try:
            tree = [*([] if self._skip_root else [self._root]), *self._root.children(recursive=True)]
        except psutil.Error:
            return  # the server has exited: its last readings stand
        total, hwm = 0, 0
        for proc in tree:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
            hwm = max(hwm, _high_water_mark(proc.pid))
        with self._lock:
            self._peak = max(self._peak, total, hwm)

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) the server's process tree has used so far: its live processes
        and the children they have waited for (the performance check reads it around each round).
        None when the server cannot be read."""
        psutil = self._psutil
        if self._root is None:
            return None
        try:
            tree = [*([] if self._skip_root else [self._root]), *self._root.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0.0
        for proc in tree:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue  # exited between the listing and the read
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def peak_bytes(self) -> int | None:
        """The peak so far (one fresh sample first); None when nothing could be read."""
        self.sample()
        with self._lock:
            return self._peak or None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _high_water_mark(pid: int) -> int:
    """VmHWM of /proc/<pid>/status in bytes; 0 where the system has no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def log(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


@dataclass
class Server:
    """A started server: its lifeline process, the server's command, its output file and memory."""

    process: subprocess.Popen
    argv: tuple[str, ...]
    log_file: Path
    memory: PeakMemory

    @property
    def what(self) -> str:
        return shlex.join(self.argv)

    def tail(self, lines: int = 15) -> str:
        return tail(self.log_file, lines)

    def wait_ready(self, url: str, timeout: float) -> None:
        wait_ready(url, timeout, what=self.what, process=self.process, log_file=self.log_file)


def wait_ready(url: str, timeout: float, *, what: str, process: subprocess.Popen | None = None,
               log_file: Path | None = None) -> None:
    """Poll ``url`` until it answers 200. `ServerRefused` when the process exits first (with the
    server's reason and output), ExternalError at ``timeout``: a timeout is never a refusal."""
    import httpx  # here: the plan and report steps import this module and never wait for a server

    deadline = time.monotonic() + timeout
    started, last_note = time.monotonic(), 0.0
    while True:
        if process is not None and process.poll() is not None:
            text = tail(log_file, 2000)
            raise ServerRefused(what, process.returncode, refusal_reason(text), "\n".join(text.splitlines()[-15:]))
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:
                log(f"ready after {time.monotonic() - started:.1f}s")
                return
        except httpx.HTTPError:
            pass
        now = time.monotonic()
        if now >= deadline:
            out = tail(log_file)
            raise ExternalError("model server", f"`{what}` was not ready at {url} within {timeout:.0f}s"
                                + (f"; last output:\n{out}" if out else ""))
        if now - last_note >= 10:
            log(f"waiting for {url} ({now - started:.0f}s of {timeout:.0f}s)")
            last_note = now
        time.sleep(0.5)


def tail(log_file: Path | None, lines: int = 15) -> str:
    if log_file is None or not log_file.exists():
        return ""
    return "\n".join(log_file.read_text(errors="replace").strip().splitlines()[-lines:])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# vLLM's log records: "(Worker pid=13077) ERROR 12-07 00:45:38 [multiproc_executor.py:953] ..."
_RECORD = re.compile(r"^(?:\((?P<proc>[^)]*)\) )?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\d-]+ [\d:.]+ \[[^\]]*\] ?)?")
_ERROR_LINE = re.compile(r"^((?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)): (.+)")
# Errors that only say that another process failed: the root cause is further up.
_WRAPPERS = re.compile(r"root cause|See stack trace|initialization failed|failed to start|core proc", re.IGNORECASE)
_REASON_CHARS = 600


def refusal_reason(output: str) -> str:
    """The server's own reason from its output: the first `SomeError: message` line that is not a
    wrapper of another process's failure (vLLM's engine re-raises a worker's error as "Engine core
    initialization failed. See root cause above"), with its continuation lines, without log
    prefixes and colours; the last error line when every one is a wrapper; "" when there is none."""
    lines = [(m.group("proc") or "", line[m.end():]) for line in _ANSI.sub("", output).splitlines()
             for m in [_RECORD.match(line)]]
    errors = [i for i, (_, text) in enumerate(lines) if _ERROR_LINE.match(text.strip())]
    if not errors:
        return ""
    roots = [i for i in errors if not _WRAPPERS.search(lines[i][1])]
    first = roots[0] if roots else errors[-1]
    proc, text = lines[first]
    parts = [text.strip()]
    for other_proc, more in lines[first + 1:]:
        # The message goes on in lines of the same process that are neither a new record nor a traceback.
        if other_proc != proc or not more.startswith((" ", "\t")) or more.strip().startswith(("File ", "Traceback")):
            break
        parts.append(more.strip())
    reason = " ".join(p for p in parts if p)
    return reason if len(reason) <= _REASON_CHARS else reason[:_REASON_CHARS - 1] + "…"


@contextmanager
def started(argv: list[str], env: Mapping[str, str]) -> Iterator[Server]:
    """``argv`` running under a lifeline with ``env``; stopped (its whole group) when the block ends."""
    log(f"starting `{shlex.join(argv)}`")
    with tempfile.TemporaryDirectory(prefix="promotion-bot-serve-") as tmp:
        log_file = Path(tmp) / "server.log"
        with open(log_file, "wb") as out:
            try:
                process = subprocess.Popen([sys.executable, "-I", str(_LIFELINE), *argv], stdin=subprocess.PIPE,
                                           stdout=out, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True)
            except OSError as exc:
                raise ExternalError("model server", f"could not start `{shlex.join(argv)}`: {exc}") from exc
            memory = PeakMemory(process.pid, skip_root=True)
            try:
                yield Server(process, tuple(argv), log_file, memory)
            finally:
                memory.stop()
                stop(process)
                log(f"stopped `{argv[0]}` (pid {process.pid})")


def stop(process: subprocess.Popen) -> None:
    """Stop a server's whole process group: its lifeline TERMs the group and KILLs what is left
    after a grace period; KILL from here if even that does not end it."""
    try:
        process.stdin.close()  # end-of-file: the lifeline stops the group
    except (OSError, AttributeError):
        pass
    try:
        process.wait(timeout=_STOP_GRACE + 5)
        return  # the lifeline exits only once its group is gone
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
