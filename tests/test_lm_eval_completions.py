"""`backend: local-completions`: lm-eval against an OpenAI-compatible completions endpoint on
loopback. The server answers `echo` + `logprobs` requests (what vLLM does and `transformers serve`
does not) with the real tiny model, so its perplexity must match the `hf` backend's."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lm_eval_models import lm_eval_repo, lm_models  # noqa: F401  (session fixture)

from bot.gate.pipeline import plan_pr
from bot.gate.runner import run_job
from bot.vcs.reader import GitReader

pytestmark = pytest.mark.slow


class CompletionsServer:
    """`POST /v1/completions` with token-id prompts, `echo: true`: per-token logprobs from the model."""

    def __init__(self, weights) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                data = json.dumps(server.complete(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/completions"

    def complete(self, body: dict) -> dict:
        assert body["echo"] is True and body["logprobs"] == 1
        prompts = body["prompt"]
        prompts = [prompts] if isinstance(prompts[0], int) else prompts
        choices = []
        for index, ids in enumerate(prompts):
            with self.torch.no_grad():
                logp = self.torch.log_softmax(self.model(self.torch.tensor([ids])).logits[0], dim=-1)
            token_lps, tops = [None], [None]
            for i in range(1, len(ids) + 1):
                nxt = ids[i] if i < len(ids) else int(logp[i - 1].argmax())
                best = int(logp[i - 1].argmax())
                token_lps.append(float(logp[i - 1, nxt]))
                tops.append({str(best): float(logp[i - 1, best])})
            choices.append({"index": index, "text": "", "finish_reason": "length",
                            "logprobs": {"token_logprobs": token_lps, "top_logprobs": tops}})
        return {"id": "cmpl-test", "object": "text_completion", "model": body["model"], "choices": choices}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def perplexity_gate(backend_lines: str) -> str:
    return "- check: perplexity\n  task: canopy_heldout\n  limit: 3\n" + backend_lines


def promoted(folder, lm_models, gate: str):
    """A repo whose PR promotes v1.1-int8 into test under ``gate``."""
    repo = lm_eval_repo(folder, lm_models, gate)
    repo.set_variant("test", "canopy-tiny/v1.1-int8")
    repo.commit("Promote")
    return repo


def run_gate(repo, tmp_path):
    reader = GitReader(repo.path)
    plan, _ = plan_pr(reader, "HEAD~1", "HEAD")
    reader.close()
    [job] = plan.jobs
    return run_job(plan, job, tmp_path / f"out-{time.monotonic_ns()}", tmp_path / "cache")


def test_lm_eval_completions__endpoint_matches_local_weights(lm_models, tmp_path):
    with CompletionsServer(lm_models["good"]) as server:
        gate = perplexity_gate(f"  backend: local-completions\n  base_url: {server.url}\n"
                               "  model_name: canopy-{variant}\n  tokenizer: models/canopy-tiny/v1.0-fp32/weights\n")
        repo = promoted(tmp_path / "served", lm_models, gate)
        served = run_gate(repo, tmp_path)
        assert served.verdict == "pass", served.detail
        assert {r["model"] for r in server.requests} == {"canopy-v1.0-fp32", "canopy-v1.1-int8"}

    local_repo = promoted(tmp_path / "local", lm_models, perplexity_gate(""))
    local = run_gate(local_repo, tmp_path)
    assert served.rows[0].candidate == pytest.approx(local.rows[0].candidate, rel=1e-3)


def test_lm_eval_completions__unreachable_endpoint_is_an_error(lm_models, tmp_path):
    gate = perplexity_gate("  backend: local-completions\n  base_url: http://127.0.0.1:9/v1/completions\n"
                           "  tokenizer: models/canopy-tiny/v1.0-fp32/weights\n")
    repo = promoted(tmp_path / "repo", lm_models, gate)
    result = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "lm-eval: baseline canopy-tiny/v1.0-fp32" in result.detail and "did not answer" in result.detail


class EchoIgnoringServer(CompletionsServer):
    """Answers like llama.cpp's server: `echo` ignored, only the generated token's log-probability."""

    def complete(self, body: dict) -> dict:
        out = super().complete(body)
        for choice in out["choices"]:
            choice["logprobs"] = {k: v[-1:] for k, v in choice["logprobs"].items()}
        return out


def test_lm_eval_completions__endpoint_without_echo_logprobs_is_refused(lm_models, tmp_path):
    """lm-eval would score every document at chance against it: an error naming the fix, not a verdict."""
    with EchoIgnoringServer(lm_models["good"]) as server:
        gate = perplexity_gate(f"  backend: local-completions\n  base_url: {server.url}\n"
                               "  tokenizer: models/canopy-tiny/v1.0-fp32/weights\n")
        repo = promoted(tmp_path / "repo", lm_models, gate)
        result = run_gate(repo, tmp_path)
    assert result.verdict == "error"
    assert "does not return the log-probabilities of the prompt's tokens" in result.detail
    assert "serve: {mode: vllm}" in result.detail
    assert len(server.requests) == 1  # the probe only: nothing was evaluated
