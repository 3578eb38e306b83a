"""What a child process that runs PR-controlled things may see and say.

Checks, model servers, lm-eval and GuideLLM run weights, configs and data a PR (maybe from a
fork) controls. Their environment is built from an **allow-list**: a deny-list always misses the
next credential (`HF_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `OPENAI_API_KEY`...). Operators who need more
(a CUDA or vLLM setting on a GPU runner) name the variables in `PROMOTION_BOT_PASS_ENV`
(comma-separated), which the workflow sets, never the PR.

Their output reaches the Actions log, where a line starting with `::` is a workflow command
(`::add-mask::`, `::stop-commands::`, `::error::`...). `neutralise` defuses such lines before
they are written.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import IO, Mapping

# Exact names a child may inherit.
ALLOWED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "PWD",
    "TMPDIR", "TMP", "TEMP", "RUNNER_TEMP", "CI", "GITHUB_ACTIONS",
    "VIRTUAL_ENV", "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NO_PROXY", "no_proxy",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    # The offline switches and local caches of the model stack (never HF_TOKEN).
    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE",
    "HF_DATASETS_CACHE", "HF_HUB_DISABLE_TELEMETRY", "TOKENIZERS_PARALLELISM", "DISABLE_MULTIPROC",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PROMOTION_BOT_CACHE",
    # The `vllm` of `serve: {mode: vllm}` (bot/zoo/serving/vllm.py): the check child looks it up.
    "PROMOTION_BOT_VLLM",
})
# Prefixes a child may inherit: locale, the interpreter's own settings, GuideLLM's settings, and
# vLLM's (VLLM_CPU_KVCACHE_SPACE, VLLM_CPU_OMP_THREADS_BIND...: a runner's settings for its server).
ALLOWED_PREFIXES = ("LC_", "PYTHON", "GUIDELLM__", "PYTEST_", "COVERAGE_", "VLLM_")
# Never passed, even when allowed by name or prefix: whatever looks like a credential.
CREDENTIAL = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|AUTH", re.IGNORECASE)
PASS_ENV = "PROMOTION_BOT_PASS_ENV"


def child_env(environ: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for a child process that runs PR-controlled things, plus ``extra``."""
    environ = os.environ if environ is None else environ
    passed = {name.strip() for name in environ.get(PASS_ENV, "").split(",") if name.strip()}
    env = {k: v for k, v in environ.items()
           if (k in ALLOWED or k.startswith(ALLOWED_PREFIXES) or k in passed) and not CREDENTIAL.search(k)}
    env.update(extra)
    return env


_COMMAND = re.compile(r"^(\s*)::", re.MULTILINE)


def neutralise(text: str) -> str:
    """Lines that GitHub Actions would read as workflow commands, made inert (`::x::` → `: :x::`)."""
    return _COMMAND.sub(r"\1: :", text)


def relay(stream: IO[bytes], out: IO[str] | None = None) -> threading.Thread:
    """Copy a child's output to ``out`` (default stderr) line by line, neutralised, in a thread."""

    def pump() -> None:
        target = out or sys.stderr
        for raw in iter(stream.readline, b""):
            target.write(neutralise(raw.decode("utf-8", errors="replace")))
            target.flush()
        stream.close()

    thread = threading.Thread(target=pump, name="child-output", daemon=True)
    thread.start()
    return thread
