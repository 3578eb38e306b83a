"""The policy's `serve:` mapping, parsed strictly into a `ServeSpec`.

```yaml
serve:
  mode: local            # local (default) | vllm | url | command
  timeout: 120s          # how long to wait for the server to be ready (vllm: 600s by default)
  # mode: vllm — `vllm serve` on the weights folder, on loopback, with the serving arguments of the
  # vLLM container in the environment's own manifest (docs/vllm.md)
  executable: vllm       # default: $PROMOTION_BOT_VLLM, else `vllm` on PATH
  args: [--enforce-eager]   # after the manifest's arguments (the last one given wins)
  max_servers: 2         # vLLM servers at once (the candidate's and the baseline's); 1: one after the other
  # mode: url — a preview environment per PR (an Argo CD ApplicationSet PR generator makes these)
  url: https://canopy-pr-{pr}.preview.example.com/v1
  # mode: command — any server; the template is split into argv items, never run by a shell
  command: vllm serve {weights} --port {port}
  base_url: http://127.0.0.1:{port}/v1     # command mode; this is the default
  ready_url: http://127.0.0.1:{port}/health # default: <base_url>/models
  model: "{variant}"     # model name sent in requests (url/command); default: what the server needs
```

Placeholders: ``{pr}`` (PR number), ``{model}`` (``canopy-tiny``), ``{variant}`` (``v1.3-int4-g64``),
``{name}`` (``canopy-tiny/v1.3-int4-g64``), ``{weights}`` (absolute weights folder) and ``{port}``
(a free loopback port).
"""

from __future__ import annotations

import shlex
import string
from dataclasses import dataclass
from typing import Any, Mapping

from bot.core.fields import Loc, get_duration, get_int, get_str, mapping, reject_unknown, sequence

# Set by the bot for every vLLM server, never taken from a manifest or the policy.
RESERVED = {
    "--model": "the bot serves the variant's own weights folder",
    "--host": "the bot serves on loopback",
    "--port": "the bot picks a free loopback port",
    "--served-model-name": "the manifest's container or its promotion-bot/served-model annotation names it",
    "--trust-remote-code": "weights are data: the bot never runs code that ships with them",
}

POLICY_FILE = "promotion.yaml"
MODES = ("local", "vllm", "url", "command")
PLACEHOLDERS = ("pr", "model", "variant", "name", "weights", "port")
DEFAULT_TIMEOUT = 120.0
# vLLM's start-up, measured on a 2-core CPU runner: 52 s eager, 69 s with a warm compile cache,
# 103–219 s cold while the machine is busy (docs/vllm.md); a GPU runner loading a large model is
# no faster. 120 s would call a slow start-up an error.
VLLM_TIMEOUT = 600.0
DEFAULT_MAX_SERVERS = 2
_KEYS = {"local": {"mode", "timeout"},
         "vllm": {"mode", "timeout", "executable", "args", "max_servers"},
         "url": {"mode", "timeout", "url", "ready_url", "model"},
         "command": {"mode", "timeout", "command", "base_url", "ready_url", "model"}}


@dataclass(frozen=True)
class ServeSpec:
    mode: str = "local"
    timeout: float = DEFAULT_TIMEOUT
    url: str | None = None
    command: tuple[str, ...] = ()
    base_url: str = "http://127.0.0.1:{port}/v1"
    ready_url: str | None = None
    model: str | None = None
    # mode vllm
    executable: str | None = None  # None: $PROMOTION_BOT_VLLM, else `vllm` on PATH
    args: tuple[str, ...] = ()  # the policy's own arguments, after the manifest's
    max_servers: int = DEFAULT_MAX_SERVERS
    # Set by the check from the environment's manifest (bot.checks.serving), never by the policy:
    engine: "EngineArgs | None" = None

    @property
    def one_at_a_time(self) -> bool:
        """The candidate and the baseline cannot be served at once (`max_servers: 1`)."""
        return self.mode == "vllm" and self.max_servers < 2


@dataclass(frozen=True)
class EngineArgs:
    """The serving arguments an environment's manifest gives its vLLM container, as the bot uses them.

    ``kept``: arguments that change what the engine computes or answers to, passed to `vllm serve`;
    ``dropped``: ``(argument, why)`` for the rest, which make no sense on a runner (a port, the
    container's model path, a GPU count); ``source``: where they were read ("environments/prod/
    canopy.yaml: Rollout/canopy, container vllm")."""

    kept: tuple[str, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()
    served_model: str | None = None
    source: str = ""

    def describe_dropped(self) -> str:
        return "; ".join(f"`{arg}` ({why})" for arg, why in self.dropped)


def placeholders(template: str, loc: Loc) -> set[str]:
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
    placeholders(value, loc.child(key))
    if not value.startswith(("http://", "https://")):
        raise loc.child(key).error(f"must be an http(s) URL, got {value!r}",
                                   "write it like https://canopy-pr-{pr}.preview.example.com/v1")
    return value.rstrip("/")


def parse_serve(raw: Mapping[str, Any] | None, file: str = POLICY_FILE) -> ServeSpec:
    """The ``serve:`` mapping of the policy (``Policy.serve``) as a ServeSpec, or InputError."""
    loc = Loc(file, "serve")
    data = mapping(raw or {}, loc)
    reject_unknown(data, set().union(*_KEYS.values()), loc)
    mode = data.get("mode", "local")
    if mode not in MODES:
        raise loc.child("mode").error(f"must be one of {', '.join(MODES)}, got {mode!r}",
                                      "use `local` to run transformers serve on the weights folder, "
                                      "`vllm` to serve with vLLM as prod does")
    timeout = get_duration(data, "timeout", loc, VLLM_TIMEOUT if mode == "vllm" else DEFAULT_TIMEOUT)
    model = get_str(data, "model", loc, None)
    if model is not None:
        placeholders(model, loc.child("model"))

    allowed = _KEYS[mode]
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
    if mode == "vllm":
        return ServeSpec(mode=mode, timeout=timeout, executable=get_str(data, "executable", loc, None),
                         args=_vllm_args(data, loc),
                         max_servers=get_int(data, "max_servers", loc, DEFAULT_MAX_SERVERS, minimum=1))
    return ServeSpec(mode=mode, timeout=timeout)


def _vllm_args(data: Mapping[str, Any], loc: Loc) -> tuple[str, ...]:

    a_loc = loc.child("args")
    value = data.get("args") or []
    if isinstance(value, str):
        value = shlex.split(value)
    args = [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in sequence(value, a_loc)]
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            raise a_loc.child(i).error("must be a string", "write vLLM's arguments as text, e.g. `[--enforce-eager]`")
        name = arg.split("=", 1)[0].replace("_", "-")
        if name in RESERVED:
            raise a_loc.child(i).error(f"`{name}` is set by the bot ({RESERVED[name]})", "remove it")
    return tuple(args)


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
        names |= placeholders(item, c_loc)
    if "port" not in names:
        raise c_loc.error("does not pass {port} to the server", "add `--port {port}` so the bot can pick a free port")
    return tuple(argv)
