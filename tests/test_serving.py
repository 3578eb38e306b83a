"""bot.zoo.serving: real `transformers serve` on the committed zoo, real child processes, real loopback HTTP."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bot.core.errors import ExternalError, InputError
from bot.demo import corpus
from bot.zoo.serving import Endpoint, ServeSpec, parse_serve, served, served_all

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "models" / "canopy-tiny"
VARIANTS = ["v1.0-fp32", "v1.1-int8", "v1.2-int4-g128", "v1.3-int4-g64", "v1.4-int2-g64"]


def _chat(endpoint: Endpoint, messages, tools=None) -> httpx.Response:
    body = {"model": endpoint.model, "messages": list(messages), "max_tokens": 48, "temperature": 0}
    if tools:
        body["tools"] = list(tools)
    return httpx.post(f"{endpoint.base_url}/chat/completions", json=body, timeout=120)


@pytest.fixture(scope="module", params=VARIANTS)
def variant_server(request):
    variant = request.param
    with served({"mode": "local", "timeout": "180s"}, ZOO / variant / "weights", name=f"canopy-tiny/{variant}") as ep:
        yield variant, ep


@pytest.mark.slow
def test_served__each_variant_answers_chat_completions(variant_server):
    variant, ep = variant_server
    assert ep.base_url.startswith("http://127.0.0.1:") and ep.base_url.endswith("/v1")
    probe = next(p for p in corpus.probes(count=40) if p.kind == "json")
    response = _chat(ep, probe.messages)
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"].strip(), f"{variant} answered with nothing"


@pytest.mark.slow
def test_served__tools_reach_the_prompt(variant_server):
    variant, ep = variant_server
    # An off-topic request under the tool prompt: every variant, even int2, should answer in text.
    probe = next(p for p in corpus.probes(count=40) if p.kind == "refusal" and p.tools)
    response = _chat(ep, probe.messages, probe.tools)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["message"].get("content") or choice["message"].get("tool_calls")
    if variant == "v1.0-fp32":
        tool_probe = next(p for p in corpus.probes(count=40) if p.kind == "tool")
        called = _chat(ep, tool_probe.messages, tool_probe.tools).json()["choices"][0]
        assert called["finish_reason"] == "tool_calls"
        assert called["message"]["tool_calls"][0]["function"]["name"] == tool_probe.tool_name


def test_served__local_without_weights_is_an_error(tmp_path):
    with pytest.raises(ExternalError, match="no weights folder"):
        with served({}, tmp_path / "missing", name="canopy-tiny/v1.0-fp32"):
            pass


def _pid_recorder(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "server.py"
    script.write_text("import os, sys, time\n"
                      f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n" + body)
    return [sys.executable, str(script), "--port", "{port}"]


def _fake_weights(tmp_path: Path) -> Path:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    return weights


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_served__never_ready_is_an_error_naming_the_command(tmp_path):
    spec = parse_serve({"mode": "command", "timeout": "2s", "command": _pid_recorder(tmp_path, "time.sleep(120)\n")})
    with pytest.raises(ExternalError) as info:
        with served(spec, _fake_weights(tmp_path), name="canopy-tiny/v1.0-fp32"):
            pytest.fail("must not yield")
    assert "server.py --port" in str(info.value) and "within 2s" in str(info.value)
    assert _gone(int((tmp_path / "pid").read_text())), "the server was left running"


def test_served__server_exiting_early_is_an_error(tmp_path):
    spec = parse_serve({"mode": "command", "timeout": "60s",
                        "command": _pid_recorder(tmp_path, "print('no GPU found'); sys.exit(3)\n")})
    with pytest.raises(ExternalError, match=r"exited with code 3(.|\n)*no GPU found"):
        with served(spec, _fake_weights(tmp_path), name="canopy-tiny/v1.0-fp32"):
            pass


def test_served__command_gets_values_as_argv_and_is_stopped_on_exceptions(tmp_path):
    weights = tmp_path / "w; touch pwned $(id)"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    body = ("import http.server, json\n"
            f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv))\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[-1])), http.server.SimpleHTTPRequestHandler)"
            ".serve_forever()\n")
    argv = _pid_recorder(tmp_path, body)
    spec = parse_serve({"mode": "command", "command": [argv[0], argv[1], "{weights}", "{port}"],
                        "ready_url": "http://127.0.0.1:{port}/", "model": "{variant}", "timeout": "60s"})
    with pytest.raises(RuntimeError, match="boom"):
        with served(spec, weights, name="canopy-tiny/v1.3-int4-g64") as ep:
            assert ep.model == "v1.3-int4-g64"
            assert httpx.get(ep.base_url.removesuffix("/v1") + "/").status_code == 200
            raise RuntimeError("boom")
    import json
    recorded = json.loads((tmp_path / "argv.json").read_text())
    assert recorded[1] == str(weights.resolve())  # one argv item, no shell
    assert not (tmp_path / "pwned").exists()
    assert _gone(int((tmp_path / "pid").read_text()))


def test_served__server_environment_is_the_allow_list(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, "s3cret")
    body = ("import http.server, json\n"
            f"open({str(tmp_path / 'env.json')!r}, 'w').write(json.dumps(dict(os.environ)))\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[-1])), http.server.SimpleHTTPRequestHandler)"
            ".serve_forever()\n")
    argv = _pid_recorder(tmp_path, body)
    spec = parse_serve({"mode": "command", "command": [argv[0], argv[1], "{port}"],
                        "ready_url": "http://127.0.0.1:{port}/", "timeout": "60s"})
    with served(spec, _fake_weights(tmp_path), name="canopy-tiny/v1.3-int4-g64"):
        pass
    import json
    env = json.loads((tmp_path / "env.json").read_text())
    assert "s3cret" not in env.values()
    assert env["HF_HUB_OFFLINE"] == "1" and env["PATH"] == os.environ["PATH"]
    assert _gone(int((tmp_path / "pid").read_text()))


def test_served_all__servers_start_together_and_all_stop(tmp_path):
    # Each server only answers once every server has started: started one after the other, the
    # first would never be ready (and this would time out), so passing proves the start-ups overlap.
    body = ("import http.server, pathlib\n"
            "here = pathlib.Path(sys.argv[1])\n"
            "(here / f'started-{os.getpid()}').touch()\n"
            "while len(list(here.glob('started-*'))) < 2:\n"
            "    time.sleep(0.05)\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[-1])), http.server.SimpleHTTPRequestHandler)"
            ".serve_forever()\n")
    argv = _pid_recorder(tmp_path, body)
    spec = parse_serve({"mode": "command", "command": [argv[0], argv[1], str(tmp_path), "{port}"],
                        "ready_url": "http://127.0.0.1:{port}/", "model": "{variant}", "timeout": "20s"})
    weights = _fake_weights(tmp_path)
    with served_all(spec, [(weights, "canopy-tiny/v1.3-int4-g64"), (weights, "canopy-tiny/v1.0-fp32")]) as eps:
        assert [ep.model for ep in eps] == ["v1.3-int4-g64", "v1.0-fp32"]
        assert eps[0].base_url != eps[1].base_url
        pids = [int(p.name.removeprefix("started-")) for p in tmp_path.glob("started-*")]
        for ep in eps:
            assert httpx.get(ep.base_url.removesuffix("/v1") + "/").status_code == 200
    assert len(pids) == 2 and all(_gone(pid) for pid in pids), "a server was left running"


@pytest.mark.parametrize("mode", ["local", "command"])
def test_served__pickled_or_code_weights_are_refused_before_any_server_starts(tmp_path, mode):
    weights = _fake_weights(tmp_path)
    (weights / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (weights / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    raw = {"mode": "local"} if mode == "local" else {"mode": "command", "command": _pid_recorder(tmp_path, "")}
    with pytest.raises(InputError, match=r"models/canopy-tiny/v1.3-int4-g64/variant.yaml: weights.path: the weights "
                                         r"folder holds pickle files \(pytorch_model.bin\)"):
        with served(raw, weights, name="canopy-tiny/v1.3-int4-g64"):
            pytest.fail("must not yield")
    assert not (tmp_path / "pid").exists()  # nothing was started


class _Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        code = 200 if self.path.endswith("/v1/models") else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"object": "list", "data": []}')

    def log_message(self, *args):
        pass


@pytest.fixture
def preview_env():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_served__url_mode_fills_the_preview_environment(preview_env):
    spec = parse_serve({"mode": "url", "url": preview_env + "/canopy-pr-{pr}/{variant}/v1", "model": "{name}"})
    with served(spec, None, name="canopy-tiny/v1.3-int4-g64", pr=42) as ep:
        assert ep.base_url == preview_env + "/canopy-pr-42/v1.3-int4-g64/v1"
        assert ep.model == "canopy-tiny/v1.3-int4-g64"


def test_served__url_mode_not_answering_is_an_error(preview_env):
    spec = parse_serve({"mode": "url", "url": preview_env + "/nothing-here/{pr}", "timeout": "1s"})
    with pytest.raises(ExternalError, match="not ready"):
        with served(spec, None, name="canopy-tiny/v1.3-int4-g64", pr=7):
            pass


def test_served__url_with_pr_placeholder_needs_a_pr():
    spec = parse_serve({"mode": "url", "url": "https://canopy-pr-{pr}.preview.example.com/v1"})
    with pytest.raises(InputError) as info:
        with served(spec, None, name="canopy-tiny/v1.3-int4-g64"):
            pass
    assert info.value.field == "serve.url"


def test_parse_serve__defaults_to_local():
    assert parse_serve(None) == ServeSpec(mode="local")
    assert parse_serve({"timeout": "5m"}).timeout == 300


@pytest.mark.parametrize("raw, field, text", [
    ({"mode": "docker"}, "serve.mode", "must be one of local, vllm, url, command"),
    ({"mode": "url"}, "serve.url", "is required for mode url"),
    ({"mode": "url", "url": "ftp://x/{pr}"}, "serve.url", "http(s) URL"),
    ({"mode": "url", "url": "https://pr-{number}.example.com/v1"}, "serve.url", "unknown placeholder {number}"),
    ({"mode": "command", "command": "vllm serve {weights}"}, "serve.command", "does not pass {port}"),
    ({"mode": "command", "command": "vllm serve '{weights}"}, "serve.command", "cannot be split"),
    ({"mode": "command", "command": 7}, "serve.command", "string or a list"),
    ({"mode": "command"}, "serve.command", "is required"),
    ({"mode": "local", "url": "https://x/v1"}, "serve.url", "does not apply to mode local"),
    ({"mode": "local", "timeout": "-3"}, "serve.timeout", "duration"),
    ({"mdoe": "local"}, "serve.mdoe", "did you mean `mode`"),
    ({"mode": "url", "url": "https://x/{pr", "model": "m"}, "serve.url", "not a valid template"),
    ("local", "serve", "must be a mapping"),
])
def test_parse_serve__bad_settings_name_the_field(raw, field, text):
    with pytest.raises(InputError) as info:
        parse_serve(raw)
    assert info.value.file == "promotion.yaml"
    assert info.value.field == field
    assert text in str(info.value)
