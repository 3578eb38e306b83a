"""`servable`: the engine the policy serves with (`serve:`; vLLM for prod) loads the candidate and
answers one request.

A quantized variant can be perfect in transformers and refused by the engine prod runs: vLLM picks
kernels from `config.json`'s `quantization_config` and has none for some schemes on some hardware
(on a CPU: no 8-bit or 2-bit weight kernels, 4-bit only with AVX-512). The refusal is a **fail**
with the engine's own reason and the tail of its output, never a pass and never an error; a
server that is still not ready at `serve.timeout`, or an endpoint that cannot be reached, is an
error. It runs before the other model checks of its gate (`CheckDefinition.runs_first`), so a
variant that cannot be served costs no evaluation time, and with `serve: {mode: vllm}` the server
it started is the one the next checks use (bot/zoo/serving/pool.py).

    - check: servable
      request: chat          # chat (default: /v1/chat/completions with the tokenizer's template) | completion
      prompt: Hello          # what the one request says
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from bot.checks import CheckDefinition, register
from bot.core.errors import ExternalError
from bot.core.fields import Loc, get_str, reject_unknown
from bot.verdicts.results import FAIL, PASS, CheckResult

ENGINES = {"vllm": "vLLM", "local": "transformers serve", "command": "the policy's server command",
           "url": "the endpoint"}
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServableOptions:
    request: str = "chat"
    prompt: str = "Hello"


@register
class ServableCheck(CheckDefinition):
    name = "servable"
    summary = "the engine prod serves with loads the candidate and answers one request (runs first)"
    inline = False
    runs_first = True
    default_timeout_s = 900.0  # vLLM's start-up (serve.timeout, 600 s by default) and one request
    option_keys = frozenset({"request", "prompt"})

    def parse_options(self, raw: Mapping[str, Any], loc: Loc) -> ServableOptions:
        reject_unknown(raw, set(self.option_keys), loc)
        request = get_str(raw, "request", loc, "chat")
        if request not in ("chat", "completion"):
            raise loc.child("request").error(f"must be `chat` or `completion`, got {request!r}",
                                             "use `completion` for a model without a chat template")
        prompt = get_str(raw, "prompt", loc, "Hello")
        if not prompt:
            raise loc.child("prompt").error("is empty", "write the one request's text, e.g. `prompt: Hello`")
        return ServableOptions(request, prompt)

    def run(self, ctx, options: ServableOptions) -> CheckResult:
        from bot.zoo.serving import ServerRefused, served

        spec = ctx.serve_spec()
        engine = ENGINES[spec.mode]
        variant = ctx.candidate
        notes, findings = _engine_notes(spec)
        threshold = f"{engine} loads it and answers one {options.request} request"
        started = time.monotonic()
        try:
            weights = None if spec.mode == "url" else ctx.weights_dir(variant)
            with served(spec, weights, name=str(variant.ref)) as endpoint:
                ready_s = time.monotonic() - started
                code, text, answer_s = _one_request(endpoint, options)
        except ServerRefused as exc:
            reason = exc.reason or f"it exited with code {exc.code} (no error line in its output)"
            return CheckResult(self.name, FAIL, candidate=str(variant.ref), threshold=threshold,
                               detail=f"{engine} refused {variant.ref}: {reason}", notes=notes,
                               findings=(*findings, {"title": f"the last lines {engine} printed", "output": exc.tail,
                                                     "command": exc.what}),
                               wall_time_s=time.monotonic() - started)
        if code != 200:
            return CheckResult(self.name, FAIL, candidate=str(variant.ref), threshold=threshold,
                               detail=f"{engine} loaded {variant.ref} but answered its {options.request} request with "
                                      f"HTTP {code}: {text[:300]}", notes=notes, findings=findings,
                               wall_time_s=time.monotonic() - started)
        chose, dtype_note = _engine_choices(spec, endpoint, weights)
        return CheckResult(self.name, PASS, candidate=str(variant.ref), threshold=threshold,
                           detail=f"{engine} served {variant.ref}{chose} (ready after {ready_s:.0f} s) and answered a "
                                  f"{options.request} request in {answer_s:.1f} s", notes=(*notes, *dtype_note),
                           findings=findings, wall_time_s=time.monotonic() - started)


def _engine_notes(spec) -> tuple[tuple[str, ...], tuple[Mapping[str, Any], ...]]:
    """What the gate did not reproduce of prod's serving arguments, for reviewers."""
    engine = spec.engine
    if engine is None:
        return (), ()
    notes = []
    if engine.dropped:
        notes.append(f"serving arguments of {engine.source} not used on the runner: {engine.describe_dropped()}")
    finding = {"title": "serving arguments", "source": engine.source, "from_manifest": list(engine.kept),
               "from_policy": list(spec.args), "served_model_name": engine.served_model,
               "dropped": [{"argument": a, "why": why} for a, why in engine.dropped]}
    return tuple(notes), (finding,)


def _engine_choices(spec, endpoint, weights_dir) -> tuple[str, tuple[str, ...]]:
    """What vLLM chose for the variant, read from its start-up log (" in bfloat16, 512 tokens"), and a
    note when it served a float32 checkpoint in another dtype because nothing pinned `--dtype`."""
    if endpoint.engine != "vllm" or endpoint.log_file is None or not endpoint.log_file.exists():
        return "", ()
    import json

    from bot.zoo.serving.vllm import engine_config

    chose = engine_config(endpoint.log_file.read_text(errors="replace"))
    if not chose:
        return "", ()
    words = f" in {chose.get('dtype', '?')}, context {chose.get('max_seq_len', '?')} tokens"
    if chose.get("quantization") not in (None, "None"):
        words += f", {chose['quantization']} kernels"
    args = [*(spec.engine.kept if spec.engine else ()), *spec.args]
    pinned = any(a.split("=", 1)[0].replace("_", "-") == "--dtype" for a in args)
    try:
        saved = json.loads((weights_dir / "config.json").read_text()).get("dtype") if weights_dir else None
    except (OSError, ValueError):
        saved = None
    if not pinned and saved == "float32" and chose.get("dtype") not in (None, "float32"):
        return words, (f"the manifest does not pin `--dtype`: vLLM serves this float32 checkpoint in "
                       f"{chose['dtype']} here (prod's hardware may choose another); every model check judges "
                       f"{chose['dtype']}. Pin `--dtype` in the manifest to serve what was measured.",)
    return words, ()


def _one_request(endpoint, options: ServableOptions) -> tuple[int, str, float]:
    """POST one small request; (HTTP status, body, seconds). Unreachable: ExternalError (an error)."""
    if options.request == "chat":
        url, body = f"{endpoint.base_url}/chat/completions", {"messages": [{"role": "user", "content": options.prompt}]}
    else:
        url, body = f"{endpoint.base_url}/completions", {"prompt": options.prompt}
    body.update(model=endpoint.model, max_tokens=8, temperature=0)
    import httpx  # here: every step loads the check registry, and only this one sends a request

    started = time.monotonic()
    try:
        resp = httpx.post(url, json=body, timeout=REQUEST_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ExternalError("model server", f"{url} did not answer: {type(exc).__name__}: {exc}") from exc
    seconds = time.monotonic() - started
    if resp.status_code == 200:
        try:
            choice = resp.json()["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return 502, f"an answer without choices: {resp.text[:200]}", seconds
        if (choice.get("message") if options.request == "chat" else choice.get("text")) is None:
            return 502, f"an answer without {'a message' if options.request == 'chat' else 'text'}: {resp.text[:200]}", seconds
    return resp.status_code, resp.text, seconds
