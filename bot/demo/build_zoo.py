"""Rebuild the canopy-tiny zoo from nothing: ``python -m bot.demo.build_zoo [--out DIR] [--check]``.

Writes, under ``--out`` (default: this repository):
- ``models/canopy-tiny/<variant>/`` with ``weights/`` (config, safetensors, tokenizer),
  ``variant.yaml``, and for compressed variants ``recipe.yaml`` and ``calibration.yaml``;
- ``models/canopy-tiny/SHA256SUMS``: the digest of every file above except variant.yaml;
- ``evals/data/*.jsonl`` (``corpus.write_eval_files``);
- the measurements table of ``README.md`` (between its ``zoo-measurements`` markers).

Everything is seeded, so a rebuild on the same kind of CPU gives the same bytes.
``--check`` rebuilds into a temporary folder and compares digests with the committed ones.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.demo import corpus

MODEL = "canopy-tiny"
BASELINE = "v1.0-fp32"
REPO_ROOT = Path(__file__).resolve().parents[2]
DIGESTS = "SHA256SUMS"
DOC = "README.md"
TABLE_START = "<!-- zoo-measurements:start -->"
TABLE_END = "<!-- zoo-measurements:end -->"
PROBES = 80
HELDOUT_TEXTS = 60


def _log(message: str) -> None:
    print(f"build_zoo: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Measured:
    perplexity: float
    json_valid_rate: float
    tool_call_valid_rate: float
    refusal_rate: float
    sentence_rate: float
    size_bytes: int

    def as_dict(self) -> dict:
        return {"perplexity": round(self.perplexity, 3), "json_valid_rate": round(self.json_valid_rate, 3),
                "tool_call_valid_rate": round(self.tool_call_valid_rate, 3),
                "refusal_rate": round(self.refusal_rate, 3), "sentence_rate": round(self.sentence_rate, 3)}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in sorted(path.rglob("*")) if f.is_file())


def measure_variant(weights: Path, seed: int) -> Measured:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bot.demo import measure

    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(weights)
    texts = [row["text"] for row in corpus.heldout_texts(seed, HELDOUT_TEXTS)]
    ppl = measure.word_perplexity(model, tokenizer, texts)
    scores = measure.format_scores(model, tokenizer, corpus.probes(seed, PROBES))
    return Measured(ppl, scores.json_valid_rate, scores.tool_call_valid_rate, scores.refusal_rate,
                    scores.sentence_rate, folder_size(weights))


def _known_issues(quant, measured: Measured, baseline: Measured | None) -> list[str]:
    if quant is None or quant.bits > 2 or baseline is None:
        return []
    increase = (measured.perplexity / baseline.perplexity - 1) * 100
    return [f"2-bit weights (lm_head included) calibrated on {quant.calibration_samples} samples: held-out "
            f"perplexity {increase:+.1f}% over the baseline, JSON valid {measured.json_valid_rate:.0%} and "
            f"tool calls valid {measured.tool_call_valid_rate:.0%} (baseline {baseline.json_valid_rate:.0%} "
            f"and {baseline.tool_call_valid_rate:.0%})"]


def variant_yaml(variant: str, measured: Measured, quant=None, seed: int = corpus.DEFAULT_SEED,
                 baseline: Measured | None = None) -> str:
    from bot.demo import quantize

    data: dict = {"model": MODEL, "variant": variant}
    if quant is None:
        data |= {
            "base_model": MODEL,
            "description": "canopy-tiny baseline: a small Llama trained on the seeded Canopy tutoring corpus",
            "quantization": {"algorithm": "none", "scheme": "FP32", "bits": 32, "group_size": None},
        }
    else:
        calib = quantize.calibration_description(seed, quant.calibration_samples)
        data |= {
            "base_model": f"{MODEL}/{BASELINE}",
            "description": quant.description,
            "quantization": {"algorithm": "GPTQ", "scheme": quant.scheme, "bits": quant.bits,
                             "group_size": quant.group_size, "format": "compressed-tensors",
                             "tool": "llmcompressor"},
            "calibration": {"dataset": calib["dataset"], "samples": calib["samples"],
                            "sequence_length": calib["sequence_length"], "file": "calibration.yaml"},
            "recipe": "recipe.yaml",
        }
    data |= {
        "weights": {"path": "weights"},
        "size_bytes": measured.size_bytes,
        "measured": measured.as_dict(),
        "known_issues": _known_issues(quant, measured, baseline),
    }
    header = "# Written by `python -m bot.demo.build_zoo`; rebuild rather than edit.\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def digests(root: Path) -> dict[str, str]:
    """sha256 of every built file under models/<MODEL> (but variant.yaml) and evals/data."""
    out = {}
    for base in (root / "models" / MODEL, root / "evals" / "data"):
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.name not in ("variant.yaml", DIGESTS):
                out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_digests(root: Path) -> Path:
    target = root / "models" / MODEL / DIGESTS
    target.write_text("".join(f"{d}  {p}\n" for p, d in digests(root).items()))
    return target


def read_digests(root: Path) -> dict[str, str]:
    target = root / "models" / MODEL / DIGESTS
    rows = (line.split("  ", 1) for line in target.read_text().splitlines() if line.strip())
    return {path: digest for digest, path in rows}


def measurements_table(results: dict[str, Measured]) -> str:
    base = results[BASELINE].perplexity
    lines = ["| variant | perplexity (held-out) | vs baseline | JSON valid | tool calls valid | refusals | one sentence | size on disk |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        delta = "—" if name == BASELINE else f"{(m.perplexity / base - 1) * 100:+.1f}%"
        lines.append(f"| {name} | {m.perplexity:.3f} | {delta} | {m.json_valid_rate:.0%} | "
                     f"{m.tool_call_valid_rate:.0%} | {m.refusal_rate:.0%} | {m.sentence_rate:.0%} | "
                     f"{m.size_bytes / 1e6:.2f} MB |")
    return "\n".join(lines)


def update_doc(root: Path, table: str) -> None:
    doc = root / DOC
    if not doc.exists():
        return
    text = doc.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        return
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    doc.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")


def build(out: Path, seed: int = corpus.DEFAULT_SEED, *, measure: bool = True,
          keep_baseline: bool = False) -> dict[str, Measured]:
    from bot.demo import quantize, train
    from bot.demo import tokenizer as tok

    started = time.monotonic()
    zoo = out / "models" / MODEL
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    _log(f"writing eval data to {out / 'evals' / 'data'}")
    corpus.write_eval_files(out / "evals" / "data", seed)

    base_weights = zoo / BASELINE / "weights"
    if keep_baseline and (base_weights / "model.safetensors").is_file():
        _log(f"keeping the trained baseline in {base_weights}")
    else:
        _log("training the tokenizer")
        tokenizer = tok.train_tokenizer(seed)
        _log("training the baseline model")
        model = train.train(tokenizer, train.TrainSpec(seed=seed), log=_log)
        shutil.rmtree(base_weights, ignore_errors=True)
        train.save(model, tokenizer, base_weights)
        del model

    for spec in quantize.VARIANTS:
        folder = zoo / spec.variant
        shutil.rmtree(folder / "weights", ignore_errors=True)
        quantize.quantize(base_weights, spec, folder / "weights", seed=seed)
        # llm-compressor writes recipe.yaml into the weights folder; the zoo keeps it beside them.
        (folder / "weights" / "recipe.yaml").replace(folder / "recipe.yaml")
        calib = quantize.calibration_description(seed, spec.calibration_samples)
        (folder / "calibration.yaml").write_text(yaml.safe_dump(calib, sort_keys=False))
    _log(f"built weights in {time.monotonic() - started:.0f}s")

    results: dict[str, Measured] = {}
    quant_by_name = {q.variant: q for q in quantize.VARIANTS}
    for variant in (BASELINE, *quant_by_name):
        weights = zoo / variant / "weights"
        if measure:
            _log(f"measuring {variant}")
            results[variant] = measure_variant(weights, seed)
        else:
            results[variant] = Measured(float("nan"), 0, 0, 0, 0, folder_size(weights))
        (zoo / variant / "variant.yaml").write_text(
            variant_yaml(variant, results[variant], quant_by_name.get(variant), seed, results.get(BASELINE)))
    write_digests(out)
    if measure:
        update_doc(out, measurements_table(results))
    _log(f"done in {time.monotonic() - started:.0f}s")
    return results


def check(seed: int = corpus.DEFAULT_SEED) -> int:
    """Rebuild in a temporary folder; 0 when every digest matches the committed SHA256SUMS."""
    expected = read_digests(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="canopy-zoo-") as tmp:
        build(Path(tmp), seed, measure=False)
        actual = digests(Path(tmp))
    differ = sorted(p for p in expected.keys() | actual.keys() if expected.get(p) != actual.get(p))
    for path in differ:
        print(f"differs: {path}", file=sys.stderr)
    print("zoo matches SHA256SUMS" if not differ else f"{len(differ)} file(s) differ from SHA256SUMS")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.demo.build_zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="root to write models/ and evals/data/ under")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare digests")
    parser.add_argument("--keep-baseline", action="store_true",
                        help="reuse the trained v1.0-fp32 weights already under --out (requantize and remeasure only)")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.seed)
    results = build(args.out, args.seed, keep_baseline=args.keep_baseline)
    print(measurements_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
