"""Serving a variant behind an OpenAI-compatible API, from the policy's top-level ``serve:`` mapping
(parsed in `spec.py`, which documents every field).

``mode: local`` runs ``transformers serve`` on 127.0.0.1 on the weights folder, offline;
``mode: vllm`` runs ``vllm serve`` there with the serving arguments of the environment's own
manifest (`vllm.py`); ``url`` and ``command`` resolve the policy's templates. Every server the bot
starts runs under a lifeline (`process.py`): it is stopped when its ``with`` block ends, and also
when the bot process dies without reaching its ``finally``.

vLLM servers take a minute or more to start, so they are kept for the rest of the process once
started (`pool.py`): the checks of one promotion, which share one child process, share its
servers, at most ``max_servers`` at once; they stop when the process exits.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.childenv import child_env
from bot.core.errors import ExternalError, InputError
from bot.core.net import free_port
from bot.zoo.serving.process import PeakMemory, ServerRefused, log, started, wait_ready
from bot.zoo.serving.spec import (
    DEFAULT_TIMEOUT,
    MODES,
    PLACEHOLDERS,
    POLICY_FILE,
    VLLM_TIMEOUT,
    EngineArgs,
    ServeSpec,
    parse_serve,
)
from bot.zoo.weights_safety import check_weights

__all__ = ["DEFAULT_TIMEOUT", "MODES", "PLACEHOLDERS", "POLICY_FILE", "VLLM_TIMEOUT", "EngineArgs", "Endpoint",
           "OFFLINE_ENV", "PeakMemory", "ServeSpec", "ServerRefused", "local_command", "parse_serve",
           "served", "served_all", "stop_kept", "wait_ready"]

# Offline for good: a model server must never reach a hub while judging a PR.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class Endpoint:
    """Where to send OpenAI requests: ``{base_url}/chat/completions`` with ``"model": model``."""

    base_url: str  # ends with /v1, no trailing slash
    model: str
    memory: "PeakMemory | None" = field(default=None, compare=False, repr=False)  # None: not started here
    engine: str = "local"  # the serve mode that answers here: local | vllm | url | command
    log_file: Path | None = field(default=None, compare=False, repr=False)  # the server's output, when started here


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
    if spec.mode == "vllm":
        from bot.zoo.serving.pool import POOL

        with POOL.lease(spec, [(_checked(weights_dir, name), name) for weights_dir, name in variants]) as endpoints:
            yield endpoints
        return
    with ExitStack() as stack:
        waits = []  # (server or None, ready URL, what)
        endpoints = []
        for weights_dir, name in variants:
            if spec.mode == "url":
                values = _values(name, weights_dir, pr, None)
                base_url = _fill(spec.url, values, "url")
                ready = _fill(spec.ready_url, values, "ready_url") if spec.ready_url else f"{base_url}/models"
                log(f"using {base_url} for {name}")
                waits.append((None, ready, base_url))
                endpoints.append(Endpoint(base_url, _fill(spec.model or "{variant}", values, "model"), engine="url"))
                continue
            argv, base_url, ready, model = _launch(spec, _checked(weights_dir, name), name, pr)
            server = stack.enter_context(started(argv, child_env(**OFFLINE_ENV)))
            waits.append((server, ready, server.what))
            endpoints.append(Endpoint(base_url, model, server.memory, engine=spec.mode, log_file=server.log_file))
        for server, ready, what in waits:
            if server is None:
                wait_ready(ready, spec.timeout, what=what)
            else:
                server.wait_ready(ready, spec.timeout)
        yield endpoints


def stop_kept() -> None:
    """Stop the vLLM servers this process keeps (they stop at its exit anyway)."""
    from bot.zoo.serving.pool import POOL

    POOL.close()


def _checked(weights_dir: Path | None, name: str) -> Path:
    """The weights folder a server may load: it has a config.json and holds only data."""
    if weights_dir is None or not (Path(weights_dir) / "config.json").is_file():
        raise ExternalError("model server", f"no weights folder with config.json for {name} at {weights_dir}")
    # The server loads what the PR brought: only data, never pickles or code (whatever the server).
    check_weights(weights_dir, file=f"models/{name}/variant.yaml")
    return Path(weights_dir).resolve()


def _launch(spec: ServeSpec, weights_dir: Path, name: str, pr: int | None) -> tuple[list[str], str, str, str]:
    """The argv, base URL, readiness URL and model name of a server the bot starts (local, command)."""
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
