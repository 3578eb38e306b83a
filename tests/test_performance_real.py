"""`performance` against two real `transformers serve` servers (the zoo's baseline and int8):
GuideLLM's requests succeed (its `ignore_eos` is dropped) and every metric is compared."""

from __future__ import annotations

import json
import textwrap

import pytest
from real_zoo import zoo_repo

from bot.cli import main

pytestmark = pytest.mark.slow

POLICY = textwrap.dedent("""\
    version: 1
    models:
      canopy-tiny: {baseline: v1.0-fp32}
    zoo:
      require: [weights]
    serve: {mode: local, timeout: 180s}
    environments:
      - name: test
        gate: [{check: zoo}]
      - name: staging
        gate:
          - check: performance
            requests: 6
            rate: 2
            prompt_tokens: 16
            output_tokens: 16
            # Only the plumbing is under test here: CPU timings on a shared runner are noise.
            limits: {ttft_p95: 10000%, itl_p95: 10000%, request_latency_p95: 10000%, output_tokens_per_second: 100%}
            timeout: 15m
    """)


def test_performance_real__two_transformers_serve_endpoints(tmp_path):
    repo = zoo_repo(tmp_path / "gitops", POLICY, ("v1.0-fp32", "v1.1-int8"))
    repo.set_variant("staging", "canopy-tiny/v1.1-int8")
    repo.commit("Promote v1.1-int8 to staging")
    out_json = tmp_path / "report.json"
    main(["check", "--repo", str(repo.path), "--base", "HEAD~1", "--head", "HEAD", "--json", str(out_json),
          "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")])
    [check] = json.loads(out_json.read_text())["promotions"][0]["checks"]
    assert check["verdict"] in ("pass", "fail"), check  # judged, not an error
    error_row = next(r for r in check["rows"] if r["label"].startswith("error rate"))
    assert error_row["label"] == "error rate (0/6 vs 0/6)", error_row
    values = {r["label"]: (r["candidate"], r["baseline"]) for r in check["rows"]}
    assert all(c and b for c, b in (values["TTFT p95 (ms)"], values["output tokens per second"]))
    for side in ("candidate", "baseline"):
        report = json.loads((tmp_path / "work" / "results" / check["artifacts"][0]).parent.joinpath(f"{side}.json").read_text())
        assert report["benchmarks"][0]["metrics"]["request_totals"]["successful"] == 6
