"""Serving a variant behind an OpenAI-compatible API, from the policy's top-level ``serve:`` mapping.

```yaml
serve:
  mode: local            # local (default) | url | command
  timeout: 120s          # how long to wait for the server to answer its readiness URL
  # mode: url — a preview environment per PR (an Argo CD ApplicationSet PR generator makes these)
  url: https://canopy-pr-{pr}.preview.example.com/v1
  # mode: command — a real GPU server; the template is split into argv items, never run by a shell
  command: vllm serve {weights} --port {port}
  base_url: http://127.0.0.1:{port}/v1     # command mode; this is the default
  ready_url: http://127.0.0.1:{port}/health # default: <base_url>/models
  model: "{variant}"     # model name sent in requests (url/command); default: what the server needs
```

Placeholders: ``{pr}`` (PR number), ``{model}`` (``canopy-tiny``), ``{variant}`` (``v1.3-int4-g64``),
``{name}`` (``canopy-tiny/v1.3-int4-g64``), ``{weights}`` (absolute weights folder) and ``{port}``
(a free loopback port). ``mode: local`` runs ``transformers serve`` on 127.0.0.1 on the weights
folder, offline. A started server is always stopped when the ``with`` block ends, whatever happens.
While it runs, `PeakMemory` follows the resident memory of its whole process tree (a launcher's
workers included), so the performance check can compare the two variants' footprints.
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.core.childenv import child_env
from bot.core.errors import ExternalError, InputError
from bot.core.fields import Loc, get_duration, get_str, mapping, reject_unknown
from bot.core.net import free_port
from bot.zoo.weights_safety import check_weights

POLICY_FILE = "promotion.yaml"
MODES = ("local", "url", "command")
PLACEHOLDERS = ("pr", "model", "variant", "name", "weights", "port")
DEFAULT_TIMEOUT = 120.0
_STOP_GRACE = 10.0
# Offline for good: a model server must never reach a hub while judging a PR.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class Endpoint:
    """Where to send OpenAI requests: ``{base_url}/chat/completions`` with ``"model": model``."""

    base_url: str  # ends with /v1, no trailing slash
    model: str
    memory: "PeakMemory | None" = field(default=None, compare=False, repr=False)  # None: not started here

    def __str__(self) -> str:
        return self.base_url


class PeakMemory:
    """The peak resident memory (bytes) of a process and its descendants, while it runs.

    A thread sums the tree's RSS every ``interval_s``; the kernel's own high-water mark of each
    process (VmHWM) catches a peak between two samples, so the result is the larger of the two."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        import psutil  # late: only a served process needs it

        self._psutil = psutil
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
            tree = [self._root, *self._root.children(recursive=True)]
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


@dataclass(frozen=True)
class ServeSpec:
    mode: str = "local"
    timeout: float = DEFAULT_TIMEOUT
    url: str | None = None
    command: tuple[str, ...] = ()
    base_url: str = "http://127.0.0.1:{port}/v1"
    ready_url: str | None = None
    model: str | None = None


def _placeholders(template: str, loc: Loc) -> set[str]:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise loc.error(f"is not a valid template ({exc})", "write placeholders as {pr}, {variant}, {port}, ...")
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise loc.error(f"uses unknown placeholder {{{unknown[0]}}}",
                        "use only " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    return names


def _http_template(data: Mapping[str, Any], key: str, loc: Loc, default: Any = None) -> str | None:
    value = get_str(data, key, loc, default)
    if value is None:
        return None
    _placeholders(value, loc.child(key))
    if not value.startswith(("http://", "https://")):
        raise loc.child(key).error(f"must be an http(s) URL, got {value!r}",
                                   "write it like https://canopy-pr-{pr}.preview.example.com/v1")
    return value.rstrip("/")


def parse_serve(raw: Mapping[str, Any] | None, file: str = POLICY_FILE) -> ServeSpec:
    """The ``serve:`` mapping of the policy (``Policy.serve``) as a ServeSpec, or InputError."""
    loc = Loc(file, "serve")
    data = mapping(raw or {}, loc)
    reject_unknown(data, {"mode", "timeout", "url", "command", "base_url", "ready_url", "model"}, loc)
    mode = data.get("mode", "local")
    if mode not in MODES:
        raise loc.child("mode").error(f"must be one of {', '.join(MODES)}, got {mode!r}",
                                      "use `local` to run transformers serve on the weights folder")
    timeout = get_duration(data, "timeout", loc, DEFAULT_TIMEOUT)
    model = get_str(data, "model", loc, None)
    if model is not None:
        _placeholders(model, loc.child("model"))

    allowed = {"local": {"mode", "timeout"}, "url": {"mode", "timeout", "url", "ready_url", "model"},
               "command": {"mode", "timeout", "command", "base_url", "ready_url", "model"}}[mode]
    for key in data:
        if key not in allowed:
            raise loc.child(key).error(f"does not apply to mode {mode}",
                                       f"remove it, or settings for mode {mode} are: {', '.join(sorted(allowed))}")

    if mode == "url":
        url = _http_template(data, "url", loc)
        if url is None:
            raise loc.child("url").error("is required for mode url",
                                         "add `url: https://canopy-pr-{pr}.preview.example.com/v1`")
        return ServeSpec(mode=mode, timeout=timeout, url=url, model=model,
                         ready_url=_http_template(data, "ready_url", loc))
    if mode == "command":
        return ServeSpec(mode=mode, timeout=timeout, command=_command(data, loc), model=model,
                         base_url=_http_template(data, "base_url", loc, "http://127.0.0.1:{port}/v1"),
                         ready_url=_http_template(data, "ready_url", loc))
    return ServeSpec(mode=mode, timeout=timeout)


def _command(data: Mapping[str, Any], loc: Loc) -> tuple[str, ...]:
    c_loc = loc.child("command")
    value = data.get("command")
    fix = "write it like `vllm serve {weights} --port {port}` (or as a YAML list of arguments)"
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise c_loc.error(f"cannot be split into arguments ({exc})", fix)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        argv = list(value)
    elif value is None:
        raise c_loc.error("is required for mode command", fix)
    else:
        raise c_loc.error(f"must be a string or a list of strings, got {type(value).__name__}", fix)
    if not argv:
        raise c_loc.error("is empty", fix)
    names: set[str] = set()
    for item in argv:
        names |= _placeholders(item, c_loc)
    if "port" not in names:
        raise c_loc.error("does not pass {port} to the server", "add `--port {port}` so the bot can pick a free port")
    return tuple(argv)


def _values(name: str, weights_dir: Path | None, pr: int | None, port: int | None) -> dict[str, str]:
    model, _, variant = name.partition("/")
    return {"name": name, "model": model, "variant": variant or model,
            "weights": str(weights_dir) if weights_dir else "", "port": str(port or ""),
            "pr": "" if pr is None else str(int(pr))}


def _fill(template: str, values: Mapping[str, str], field: str) -> str:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = sorted(n for n in names if not values.get(n))
    if missing:
        raise InputError(POLICY_FILE, f"serve.{field}", f"uses {{{missing[0]}}} but this run has no value for it",
                         "run the check for a pull request (--pr) or drop the placeholder")
    return template.format_map(values)


def _log(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def wait_ready(url: str, timeout: float, *, what: str, process: subprocess.Popen | None = None,
               log_file: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; ExternalError naming ``what`` on timeout or early exit."""
    deadline = time.monotonic() + timeout
    started, last_note = time.monotonic(), 0.0
    while True:
        if process is not None and process.poll() is not None:
            raise ExternalError("model server", f"`{what}` exited with code {process.returncode} before it was ready"
                                + _tail(log_file))
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:
                _log(f"ready after {time.monotonic() - started:.1f}s")
                return
        except httpx.HTTPError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise ExternalError("model server", f"`{what}` was not ready at {url} within {timeout:.0f}s"
                                + _tail(log_file))
        if now - last_note >= 10:
            _log(f"waiting for {url} ({now - started:.0f}s of {timeout:.0f}s)")
            last_note = now
        time.sleep(0.5)


def _tail(log_file: Path | None, lines: int = 15) -> str:
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").strip().splitlines()[-lines:]
    return ("; last output:\n" + "\n".join(text)) if text else ""


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group: TERM, then KILL after a grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=_STOP_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def _started(argv: list[str]) -> Iterator[tuple[subprocess.Popen, Path, PeakMemory]]:
    """A server process, its log file and its memory reading; stopped when the block ends."""
    _log(f"starting `{shlex.join(argv)}`")
    with tempfile.TemporaryDirectory(prefix="promotion-bot-serve-") as tmp:
        log_file = Path(tmp) / "server.log"
        with open(log_file, "wb") as out:
            try:
                # The allow-listed environment: no token or cloud credential reaches PR-controlled files.
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                           env=child_env(**OFFLINE_ENV), start_new_session=True)
            except OSError as exc:
                raise ExternalError("model server", f"could not start `{shlex.join(argv)}`: {exc}") from exc
            memory = PeakMemory(process.pid)
            try:
                yield process, log_file, memory
            finally:
                memory.stop()
                _stop(process)
                _log(f"stopped `{argv[0]}` (pid {process.pid})")


def local_command(weights_dir: Path, port: int) -> list[str]:
    """``transformers serve`` from this interpreter's environment, pinned to the weights folder."""
    script = Path(sys.executable).with_name("transformers")
    if script.is_file():
        launcher = [str(script)]
    else:
        launcher = [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())"]
    return [*launcher, "serve", str(weights_dir), "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", "--log-level", "warning"]


@contextmanager
def served(spec: ServeSpec | Mapping[str, Any] | None, weights_dir: Path | None, *, name: str,
           pr: int | None = None) -> Iterator[Endpoint]:
    """Serve ``name`` (``<model>/<variant>``) and yield its Endpoint; stops what it started on exit.

    ``spec`` is a ServeSpec or the raw ``Policy.serve`` mapping. ``weights_dir`` is the local
    folder (``CheckContext.weights_dir(variant)``); url mode does not need it.
    """
    with served_all(spec, [(weights_dir, name)], pr=pr) as (endpoint,):
        yield endpoint


@contextmanager
def served_all(spec: ServeSpec | Mapping[str, Any] | None, variants: Sequence[tuple[Path | None, str]], *,
               pr: int | None = None) -> Iterator[list[Endpoint]]:
    """Serve several variants at once: ``(weights_dir, name)`` each, endpoints in the same order.

    Every server is started before any is waited for, so their start-ups (imports, loading the
    weights) overlap instead of adding up. Each must answer within ``spec.timeout``."""
    if not isinstance(spec, ServeSpec):
        spec = parse_serve(spec)
    with ExitStack() as stack:
        waits: list[tuple[str, str, subprocess.Popen | None, Path | None]] = []  # what, ready URL, process, log
        endpoints = []
        for weights_dir, name in variants:
            if spec.mode == "url":
                values = _values(name, weights_dir, pr, None)
                base_url = _fill(spec.url, values, "url")
                ready = _fill(spec.ready_url, values, "ready_url") if spec.ready_url else f"{base_url}/models"
                _log(f"using {base_url} for {name}")
                waits.append((base_url, ready, None, None))
                endpoints.append(Endpoint(base_url, _fill(spec.model or "{variant}", values, "model")))
                continue
            argv, base_url, ready, model = _launch(spec, weights_dir, name, pr)
            process, log_file, memory = stack.enter_context(_started(argv))
            waits.append((shlex.join(argv), ready, process, log_file))
            endpoints.append(Endpoint(base_url, model, memory))
        for what, ready, process, log_file in waits:
            wait_ready(ready, spec.timeout, what=what, process=process, log_file=log_file)
        yield endpoints


def _launch(spec: ServeSpec, weights_dir: Path | None, name: str, pr: int | None) -> tuple[list[str], str, str, str]:
    """The argv, base URL, readiness URL and model name of a server the bot starts."""
    if weights_dir is None or not (Path(weights_dir) / "config.json").is_file():
        raise ExternalError("model server", f"no weights folder with config.json for {name} at {weights_dir}")
    # The server loads what the PR brought: only data, never pickles or code (whatever the server).
    check_weights(weights_dir, file=f"models/{name}/variant.yaml")
    weights_dir = Path(weights_dir).resolve()
    port = free_port()
    if spec.mode == "local":
        return (local_command(weights_dir, port), f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/health",
                str(weights_dir))
    values = _values(name, weights_dir, pr, port)
    argv = [_fill(item, values, "command") for item in spec.command]
    base_url = _fill(spec.base_url, values, "base_url")
    ready = _fill(spec.ready_url, values, "ready_url") if spec.ready_url else f"{base_url}/models"
    model = _fill(spec.model, values, "model") if spec.model else str(weights_dir)
    return argv, base_url, ready, model
