"""Tiny real models and a GitOps repo with lm-eval tasks, for the lm-eval gate tests.

`good` is a 1-layer Llama trained for a few steps on the Canopy documents; `random` is the same
architecture untouched, so its perplexity is clearly worse. Both save in seconds on CPU.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from gitops import POLICY, GitOpsRepo

ROOT = Path(__file__).resolve().parent.parent
TRAIN_STEPS = 60


def build_models(out: Path) -> dict[str, Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bot.demo import corpus
    from bot.demo.tokenizer import train_tokenizer

    tok = train_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    paths = {"random": out / "random", "good": out / "good"}
    model.save_pretrained(paths["random"])
    tok.save_pretrained(paths["random"])

    docs = corpus.documents(count=256)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(TRAIN_STEPS):
        batch = tok(docs[(step * 8) % len(docs):(step * 8) % len(docs) + 8], return_tensors="pt", padding=True,
                    truncation=True, max_length=128)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(paths["good"])
    tok.save_pretrained(paths["good"])
    for bits in (8, 2):  # round-to-nearest copies of the trained model, stored back as fp32
        paths[f"int{bits}"] = out / f"int{bits}"
        fake_quantize(model, bits, group=16).save_pretrained(paths[f"int{bits}"])
        tok.save_pretrained(paths[f"int{bits}"])
    return paths


def fake_quantize(model, bits: int, group: int):
    """Symmetric per-group round-to-nearest of every Linear weight: int2 hurts, int8 barely shows."""
    import copy

    import torch

    out = copy.deepcopy(model)
    qmax = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for module in out.modules():
            if isinstance(module, torch.nn.Linear):
                rows, cols = module.weight.shape
                w = module.weight.reshape(rows, cols // group, group)
                scale = w.abs().amax(-1, keepdim=True).clamp(min=1e-8) / qmax
                module.weight.copy_(((w / scale).round().clamp(-qmax - 1, qmax) * scale).reshape(rows, cols))
    return out


@pytest.fixture(scope="session")
def lm_models(tmp_path_factory) -> dict[str, Path]:
    """Built once per test session; import it into a test module to use it."""
    return build_models(tmp_path_factory.mktemp("lm-eval-models"))


def gate_policy(gate: str, *, baseline: str = "v1.0-fp32") -> str:
    """The standard test policy with ``gate`` (YAML list items) as the test environment's gate."""
    policy = POLICY.replace("baseline: v1.0-fp32", f"baseline: {baseline}")
    head, _, rest = policy.partition("  - name: test\n    gate:\n      - check: zoo\n")
    return head + "  - name: test\n    gate:\n" + textwrap.indent(textwrap.dedent(gate), "      ") + rest


def put_weights(repo: GitOpsRepo, variant: str, source: Path) -> None:
    folder = repo.path / "models" / "canopy-tiny" / variant / "weights"
    shutil.rmtree(folder, ignore_errors=True)
    # Fresh mtimes: copy2's preserved ones, with equal sizes and a reused inode, let `git add` take a
    # replaced weights file for unchanged (racy git) and the commit would silently lack it.
    shutil.copytree(source, folder, copy_function=shutil.copy)


def lm_eval_repo(path: Path, models: dict[str, Path], gate: str, *, baseline: str = "v1.0-fp32") -> GitOpsRepo:
    """v1.0-fp32, v1.1-int8 and v1.3-int4-g64 carry the trained weights, v1.4-int2-g64 the random
    ones; v1.5-int8-rtn and v1.6-int2-g16 are the trained weights rounded to 8 and 2 bits."""
    from bot.demo import corpus

    repo = GitOpsRepo(path)
    repo.write("promotion.yaml", gate_policy(gate, baseline=baseline))
    for variant in ("v1.0-fp32", "v1.1-int8", "v1.3-int4-g64", "v1.4-int2-g64", "v1.5-int8-rtn", "v1.6-int2-g16"):
        repo.add_variant(variant)
    put_weights(repo, "v1.0-fp32", models["good"])
    put_weights(repo, "v1.1-int8", models["good"])
    put_weights(repo, "v1.3-int4-g64", models["good"])
    put_weights(repo, "v1.4-int2-g64", models["random"])
    put_weights(repo, "v1.5-int8-rtn", models["int8"])
    put_weights(repo, "v1.6-int2-g16", models["int2"])
    for task in (ROOT / "evals" / "tasks").glob("*.yaml"):
        repo.write(f"evals/tasks/{task.name}", task.read_text())
    corpus.write_eval_files(repo.path / "evals" / "data")
    for env in ("test", "staging", "prod"):
        repo.set_variant(env, "canopy-tiny/v1.0-fp32")
    repo.commit("GitOps repo with lm-eval tasks")
    return repo
