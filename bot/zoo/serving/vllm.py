"""`serve: {mode: vllm}`: `vllm serve` on the variant's weights, with prod's serving arguments.

The arguments come from the vLLM container of the environment's own manifest (what prod's engine
is told), read by `engine_args`: those that change what the engine computes or answers to are
kept; the rest make no sense on a runner (the container's model path, its port, a GPU count) and
are dropped and listed, so a reviewer sees what the gate did not reproduce. The policy's
`serve.args` come after them, so a runner can add what it needs (`--enforce-eager`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

from bot.core.errors import ExternalError
from bot.zoo.serving.spec import RESERVED, EngineArgs, ServeSpec

EXECUTABLE_ENV = "PROMOTION_BOT_VLLM"
# Kept from a manifest: what the engine computes (precision, kernels, context, KV cache, sampling
# defaults) and how it answers clients (tool calls parsed into `tool_calls`, reasoning split off).
KEPT = frozenset({"--dtype", "--max-model-len", "--quantization", "--kv-cache-dtype", "--seed", "--tokenizer-mode",
                  "--generation-config", "--override-generation-config", "--hf-overrides", "--max-logprobs",
                  "--tool-call-parser", "--reasoning-parser", "--chat-template-content-format"})
KEPT_FLAGS = frozenset({"--enable-auto-tool-choice"})
_HARDWARE = frozenset({"--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size",
                       "--gpu-memory-utilization", "--device", "--distributed-executor-backend", "--cpu-offload-gb",
                       "--swap-space", "--enforce-eager", "--max-num-seqs", "--max-num-batched-tokens",
                       "--enable-expert-parallel", "--block-size"})
_ALIASES = {"-q": "--quantization", "-tp": "--tensor-parallel-size", "-pp": "--pipeline-parallel-size",
            "-dp": "--data-parallel-size", "--model-name": "--served-model-name",  # KServe's --model_name
            "--model-id": "--model", "--model-dir": "--model"}
# Boolean flags: the token after one is not its value.
_FLAGS = frozenset({"--trust-remote-code", "--enforce-eager", "--enable-prefix-caching", "--no-enable-prefix-caching",
                    "--enable-chunked-prefill", "--disable-log-requests", "--disable-log-stats", "--enable-auto-tool-choice",
                    "--disable-frontend-multiprocessing", "--enable-expert-parallel", "--enable-log-requests",
                    "--disable-fastapi-docs", "--enable-lora", "--skip-tokenizer-init"})
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
# A model server never reaches a hub or a telemetry endpoint while it judges a PR.
SERVER_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def executable(spec: ServeSpec) -> str:
    """The `vllm` to run: the policy's `executable`, else $PROMOTION_BOT_VLLM, else `vllm` on PATH.
    vLLM pins its own torch, so it usually lives in an environment of its own (scripts/install-vllm.sh)."""
    name = spec.executable or os.environ.get(EXECUTABLE_ENV) or "vllm"
    found = name if os.sep in name and os.access(name, os.X_OK) and Path(name).is_file() else shutil.which(name)
    if not found:
        where = "serve.executable" if spec.executable else EXECUTABLE_ENV if os.environ.get(EXECUTABLE_ENV) else "PATH"
        raise ExternalError("vLLM", f"`{name}` (from {where}) is not an executable on this runner: `serve: {{mode: vllm}}` "
                                    f"needs vLLM installed where the gate runs (scripts/install-vllm.sh installs the CPU "
                                    f"build and prints its path for {EXECUTABLE_ENV}; a GPU runner: `pip install vllm`)")
    return str(Path(found).absolute())


def command(spec: ServeSpec, weights_dir: Path, port: int) -> tuple[list[str], str]:
    """The argv of `vllm serve` for ``weights_dir`` on ``port``, and the model name requests send."""
    engine = spec.engine or EngineArgs()
    served = engine.served_model or str(weights_dir)
    argv = [executable(spec), "serve", str(weights_dir), "--host", "127.0.0.1", "--port", str(port),
            "--served-model-name", served, *engine.kept, *spec.args]
    return argv, served


def _split(tokens: list[str]) -> list[tuple[str | None, str, str | None]]:
    """``(option, as written, value)`` per argument; a positional has option None."""
    out: list[tuple[str | None, str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-":
            out.append((None, token, token))
            continue
        name, eq, value = token.partition("=")
        name = "--" + name.lstrip("-").replace("_", "-") if name.startswith("--") else name
        name = _ALIASES.get(name, name)
        if not eq:
            value = None
            if name not in _FLAGS and i < len(tokens) and not tokens[i].startswith("-"):
                value = tokens[i]
                i += 1
            if name == "--served-model-name":  # nargs='+': every name up to the next option
                while i < len(tokens) and not tokens[i].startswith("-"):
                    value = f"{value} {tokens[i]}"
                    i += 1
        written = token if eq or value is None else f"{token} {value}"
        out.append((name, written, value))
    return out


def parse_container_args(tokens: list[str], source: str = "") -> EngineArgs:
    """A vLLM container's command + args as `EngineArgs`: kept, and dropped with the reason."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    served = None
    args = list(tokens)
    # `vllm serve MODEL ...`, `python -m vllm.entrypoints.openai.api_server ...`: the launcher is the image's.
    if "serve" in args[:3]:
        args = args[args.index("serve") + 1:]
    elif any("vllm.entrypoints" in a for a in args[:3]):
        args = args[next(i for i, a in enumerate(args) if "vllm.entrypoints" in a) + 1:]
    for name, written, value in _split(args):
        if (value and _K8S_VAR.search(value)) or _K8S_VAR.search(written):
            dropped.append((written, "a Kubernetes variable of the container, which the runner cannot resolve"))
        elif name is None or name == "--model":
            dropped.append((written, RESERVED["--model"]))
        elif name == "--served-model-name":
            served = (value or "").split()[0] if value else None
            if value and len(value.split()) > 1:
                dropped.append((written, f"the bot sends requests to the first name, {served}"))
        elif name in RESERVED:
            dropped.append((written, RESERVED[name]))
        elif name in KEPT_FLAGS and value is None:
            kept.append(name)
        elif name in KEPT and value is not None:
            if name == "--generation-config" and value not in ("auto", "vllm"):
                dropped.append((written, "a folder of the container"))
            else:
                kept += [name, value]
        elif name in _HARDWARE:
            dropped.append((written, "a setting of prod's hardware, not of what the model computes"))
        else:
            dropped.append((written, "not an argument the gate reproduces; add it to `serve.args` if it should be"))
    return EngineArgs(tuple(kept), tuple(dropped), served, source)


def find_container(doc: Any) -> tuple[str, list[str]] | None:
    """The vLLM container of a Kubernetes object (Deployment, Rollout, StatefulSet, a KServe
    InferenceService's predictor...): its name and command + args; None when it has none.

    A container is vLLM's when its image or command names vLLM; a KServe predictor's `model` when
    its runtime or model format does (KServe's Hugging Face runtime serves with vLLM)."""
    found: list[tuple[int, str, list[str]]] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 12:
            return
        if isinstance(node, Mapping):
            tokens = [str(t) for t in (node.get("command") or []) + (node.get("args") or [])
                      if isinstance(t, (str, int, float))] if _lists(node) else []
            image = str(node.get("image") or "")
            runtime = str(node.get("runtime") or "") + " " + str((node.get("modelFormat") or {}).get("name", "")
                                                                   if isinstance(node.get("modelFormat"), Mapping) else "")
            if "vllm" in image.lower() or any("vllm" in t.lower() for t in tokens[:3]):
                found.append((0, str(node.get("name") or image), tokens))
            elif "args" in node and ("vllm" in runtime.lower() or "huggingface" in runtime.lower()):
                found.append((1, f"{runtime.split()[0] if runtime.strip() else 'predictor'} model", tokens))
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(doc, 0)
    if not found:
        return None
    _, name, tokens = min(found, key=lambda f: f[0])
    return name, tokens


def _lists(node: Mapping[str, Any]) -> bool:
    return all(isinstance(node.get(k) or [], list) for k in ("command", "args"))


def server_env(base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the allow-listed one (VLLM_* settings included) and the bot's switches."""
    return {**base, **SERVER_ENV}


_CONFIG = re.compile(r"\bdtype=torch\.(?P<dtype>\w+), max_seq_len=(?P<max_seq_len>\d+)|\bquantization=(?P<quantization>[\w-]+)")


def engine_config(output: str) -> dict[str, str]:
    """What vLLM chose, from the engine config it logs at start-up: `dtype` (a float32 checkpoint is
    served in 16 bits unless `--dtype` says otherwise), `max_seq_len`, `quantization`."""
    found: dict[str, str] = {}
    for m in _CONFIG.finditer(output):
        found.update({k: v for k, v in m.groupdict().items() if v is not None and k not in found})
    return found
