"""The vLLM servers a process keeps, so the checks of one promotion start each server once.

vLLM takes 52–220 s to start on a CPU runner (docs/vllm.md), and a promotion's model checks
(`servable`, the lm-eval checks, `app-flows`, `performance`) run one after the other in one child
process, each serving the same candidate and baseline. A server is keyed by everything that makes
it what it is (the serve spec, the engine arguments, the weights folder, the name); a lease marks
it in use; a new one needs room (`max_servers`), made by stopping idle ones, the least recently
used first. A server that refuses or dies is dropped. All stop when the process exits (atexit,
and their lifelines when it dies without one).
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.childenv import child_env
from bot.core.errors import ExternalError
from bot.core.net import free_port
from bot.zoo.serving import OFFLINE_ENV, Endpoint, vllm
from bot.zoo.serving.process import Server, log, started
from bot.zoo.serving.spec import ServeSpec

Key = tuple[ServeSpec, str, str]


@dataclass
class _Kept:
    server: Server
    endpoint: Endpoint
    ready_url: str
    stack: ExitStack
    users: int = 0
    ready: bool = False
    last_used: float = field(default_factory=time.monotonic)


class Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Key, _Kept] = {}
        self._registered = False

    @contextmanager
    def lease(self, spec: ServeSpec, variants: list[tuple[Path, str]]) -> Iterator[list[Endpoint]]:
        """Endpoints for ``(weights_dir, name)`` each, started (or reused) and ready."""
        keys = [(spec, str(weights_dir), name) for weights_dir, name in variants]
        if len(set(keys)) > spec.max_servers:
            raise ExternalError("vLLM", f"{len(set(keys))} variants must be served at once, more than "
                                        f"`serve.max_servers: {spec.max_servers}` allows")
        with self._lock:
            self._make_room(spec, [k for k in keys if k not in self._kept])
            for key, (weights_dir, name) in zip(keys, variants):
                if key not in self._kept:
                    self._kept[key] = self._start(spec, weights_dir, name)
                self._kept[key].users += 1
            if not self._registered:
                atexit.register(self.close)
                self._registered = True
        try:
            for key in dict.fromkeys(keys):
                kept = self._kept[key]
                if not kept.ready:
                    try:
                        kept.server.wait_ready(kept.ready_url, spec.timeout)
                    except BaseException:
                        self._drop(key)
                        raise
                    kept.ready = True
                elif kept.server.process.poll() is not None:
                    self._drop(key)
                    raise ExternalError("vLLM", f"the server of {key[2]} exited with code "
                                                f"{kept.server.process.returncode} between two checks; last output:\n"
                                                f"{kept.server.tail()}")
            yield [self._kept[k].endpoint for k in keys]
        finally:
            with self._lock:
                for key in keys:
                    if key in self._kept:
                        self._kept[key].users -= 1
                        self._kept[key].last_used = time.monotonic()

    def _make_room(self, spec: ServeSpec, new: list[Key]) -> None:
        """Stop idle servers, least recently used first, until ``new`` fit (caller holds the lock)."""
        need = len(self._kept) + len(set(new)) - spec.max_servers
        for key, kept in sorted(self._kept.items(), key=lambda kv: kv[1].last_used):
            if need <= 0:
                break
            if kept.users == 0:
                log(f"stopping the server of {key[2]} to make room (`max_servers: {spec.max_servers}`)")
                self._kept.pop(key).stack.close()
                need -= 1
        if need > 0:
            raise ExternalError("vLLM", f"no room for another server: {len(self._kept)} in use, "
                                        f"`serve.max_servers: {spec.max_servers}`")

    def _start(self, spec: ServeSpec, weights_dir: Path, name: str) -> _Kept:
        port = free_port()
        argv, model = vllm.command(spec, weights_dir, port)
        stack = ExitStack()
        server = stack.enter_context(started(argv, vllm.server_env(child_env(**OFFLINE_ENV))))
        base_url = f"http://127.0.0.1:{port}/v1"
        endpoint = Endpoint(base_url, model, server.memory, engine="vllm", log_file=server.log_file)
        return _Kept(server, endpoint, f"{base_url}/models", stack)

    def _drop(self, key: Key) -> None:
        with self._lock:
            kept = self._kept.pop(key, None)
        if kept is not None:
            kept.stack.close()

    def close(self) -> None:
        """Stop every kept server."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            k.stack.close()


POOL = Pool()
