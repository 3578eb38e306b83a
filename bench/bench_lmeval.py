"""The lm-eval gate's wall time against lm-eval's own CLI evaluating the candidate alone.

Same task (the perplexity check's `canopy_heldout`), same limit, same candidate weights. The
gate runs `promotion-bot check` end to end (plan, child process, baseline + candidate, report);
the CLI runs `python -m lm_eval run --model hf ...`.

Targets: gate / CLI ≤ 1.10 with a warm baseline cache, ≤ 2.2 cold.
Uses the demo zoo (models/canopy-tiny) when it is committed, else two tiny models made here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK = "canopy_heldout"
LIMIT = 20
WARM_TARGET = 1.10
COLD_TARGET = 2.2
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}

POLICY = f"""\
version: 1
models:
  canopy-tiny:
    baseline: v1.0-fp32
zoo:
  require: [weights]
environments:
  - name: test
    gate:
      - check: perplexity
        task: {TASK}
        max_increase: 3%
        limit: {LIMIT}
"""


def log(message: str) -> None:
    print(f"[bench_lmeval] {message}", file=sys.stderr, flush=True)


def weights(work: Path) -> tuple[Path, Path, str]:
    zoo = ROOT / "models" / "canopy-tiny"
    if (zoo / "v1.0-fp32" / "weights" / "config.json").exists() and (zoo / "v1.1-int8" / "weights" / "config.json").exists():
        return zoo / "v1.0-fp32" / "weights", zoo / "v1.1-int8" / "weights", "demo zoo: v1.1-int8 against v1.0-fp32"
    sys.path.insert(0, str(ROOT / "tests"))
    from lm_eval_models import build_models

    log("no demo zoo committed: making two tiny models")
    models = build_models(work / "models")
    return models["good"], models["random"], "tiny test models (the demo zoo is not committed)"


def make_repo(path: Path, baseline: Path, candidate: Path) -> None:
    import git

    from bot.demo import corpus

    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Bench").release()
        cw.set_value("user", "email", "bench@example.com")
    (path / "promotion.yaml").write_text(POLICY)
    for variant, source in (("v1.0-fp32", baseline), ("v1.1-int8", candidate)):
        folder = path / "models" / "canopy-tiny" / variant
        shutil.copytree(source, folder / "weights", ignore=shutil.ignore_patterns(".*"))
        quantized = "quantization: {algorithm: GPTQ, scheme: W8A16, bits: 8}\n" if "int8" in variant else ""
        (folder / "variant.yaml").write_text(f"model: canopy-tiny\nvariant: {variant}\nbase_model: canopy-tiny\n"
                                             f"{quantized}weights: {{path: weights}}\n")
    shutil.copytree(ROOT / "evals" / "tasks", path / "evals" / "tasks")
    if (ROOT / "evals" / "data").is_dir():
        shutil.copytree(ROOT / "evals" / "data", path / "evals" / "data")
    else:
        corpus.write_eval_files(path / "evals" / "data")
    manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: canopy\n  annotations:\n    promotion-bot/variant: canopy-tiny/{}\n"
    (path / "environments" / "test").mkdir(parents=True)
    (path / "environments" / "test" / "canopy.yaml").write_text(manifest.format("v1.0-fp32"))
    repo.git.add(A=True)
    repo.index.commit("base")
    (path / "environments" / "test" / "canopy.yaml").write_text(manifest.format("v1.1-int8"))
    repo.git.add(A=True)
    repo.index.commit("promote v1.1-int8")


def timed(cmd: list[str], cwd: Path, what: str) -> float:
    log(f"{what}: {' '.join(cmd)}")
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1):
        print(proc.stdout[-3000:], file=sys.stderr)
        raise SystemExit(f"{what} exited with {proc.returncode}")
    log(f"{what}: {seconds:.1f}s")
    return seconds


def evaluations(report: Path) -> str:
    """What the perplexity check evaluated, from its findings: e.g. `baseline cache, candidate 3.1s`."""
    import json

    data = json.loads(report.read_text())
    [check] = data["promotions"][0]["checks"]
    if check["verdict"] == "error":
        raise SystemExit(f"the gate errored: {check['detail']}")
    return ", ".join(f"{f['role']} {'cache' if f['source'] == 'cache' else format(f['seconds'], '.1f') + 's'}"
                     for f in check["findings"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-lmeval-") as tmp:
        work = Path(tmp)
        baseline, candidate, source = weights(work)
        repo = work / "repo"
        make_repo(repo, baseline, candidate)
        cli = timed([sys.executable, "-m", "lm_eval", "run", "--model", "hf",
                     "--model_args", f"pretrained={repo / 'models/canopy-tiny/v1.1-int8/weights'},dtype=auto,device=cpu",
                     "--tasks", TASK, "--include_path", "evals/tasks", "--limit", str(LIMIT), "--batch_size", "8"],
                    repo, "lm-eval CLI, candidate alone")
        check = [sys.executable, "-m", "bot", "check", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD",
                 "--cache", str(work / "cache"), "--json", str(work / "report.json")]
        cold = timed(check, ROOT, "gate, cold cache (baseline + candidate)")
        cold_evals = evaluations(work / "report.json")
        warm = timed(check, ROOT, "gate, warm baseline cache")
        warm_evals = evaluations(work / "report.json")
    print(f"models: {source}; task {TASK}, limit {LIMIT}")
    print(f"lm-eval CLI (candidate only): {cli:7.1f} s")
    print(f"gate, cold cache:             {cold:7.1f} s   ratio {cold / cli:.2f} (target ≤ {COLD_TARGET})   {cold_evals}")
    print(f"gate, warm baseline cache:    {warm:7.1f} s   ratio {warm / cli:.2f} (target ≤ {WARM_TARGET})   {warm_evals}")
    print("(the CLI indexes lm-eval's ~14,000 built-in task YAMLs on every start; the gate indexes only the repo's tasks"
          " unless a policy names a built-in one)")
    ok = warm / cli <= WARM_TARGET and cold / cli <= COLD_TARGET
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
