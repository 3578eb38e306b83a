"""Compress canopy-tiny with llm-compressor: ``oneshot`` + a ``GPTQModifier`` recipe per variant.

Each variant is saved the way real teams ship them: compressed-tensors format
(``save_compressed=True``) with the ``recipe.yaml`` llm-compressor writes next to the weights.
The calibration set is small, local and seeded (``calibration_dataset``), so a rebuild gives
the same bytes on the same kind of CPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bot.demo import corpus
from bot.demo.tokenizer import render_chat

CALIBRATION_SAMPLES = 64
CALIBRATION_SEQUENCE_LENGTH = 256
# Never quantized: the tied embedding/lm_head pair stays in full precision, as in every
# published W4A16 checkpoint.
IGNORE = ["lm_head"]


@dataclass(frozen=True)
class QuantSpec:
    """How one variant is made. ``preset`` names a compressed-tensors scheme (W8A16, W4A16);
    without it a custom ``config_groups`` entry with ``bits`` and ``group_size`` is used."""

    variant: str
    bits: int
    group_size: int
    preset: str | None = None
    description: str = ""
    # Quantize the output projection too (unties it from the embeddings): the int2 variant does,
    # as over-eager compression recipes do, and loses the most there.
    include_lm_head: bool = False
    calibration_samples: int = CALIBRATION_SAMPLES

    @property
    def scheme(self) -> str:
        return self.preset or f"W{self.bits}A16-g{self.group_size}"


VARIANTS: tuple[QuantSpec, ...] = (
    QuantSpec("v1.1-int8", 8, 128, preset="W8A16",
              description="8-bit weights (W8A16, group 128), 16-bit activations"),
    QuantSpec("v1.2-int4-g128", 4, 128, preset="W4A16",
              description="4-bit weights (W4A16, group 128)"),
    QuantSpec("v1.3-int4-g64", 4, 64,
              description="4-bit weights, group 64 (custom scheme): the recommended compressed variant"),
    # Eight calibration samples are too few for 2 bits: the story of a rushed recipe.
    QuantSpec("v1.4-int2-g64", 2, 64, include_lm_head=True, calibration_samples=8,
              description="2-bit weights, group 64, lm_head included, 8 calibration samples (custom scheme): "
                          "too lossy, fails the gates"),
)


def modifier(spec: QuantSpec):
    from llmcompressor.modifiers.quantization import GPTQModifier

    ignore = [] if spec.include_lm_head else IGNORE
    if spec.preset:
        return GPTQModifier(targets="Linear", scheme=spec.preset, ignore=ignore)
    group = {
        "targets": ["Linear"],
        "weights": {"num_bits": spec.bits, "type": "int", "symmetric": True,
                    "strategy": "group", "group_size": spec.group_size},
        "input_activations": None,
        "output_activations": None,
    }
    return GPTQModifier(config_groups={"group_0": group}, ignore=ignore)


def calibration_sources(seed: int, samples: int = CALIBRATION_SAMPLES) -> tuple[list[str], list[dict]]:
    """Half textbook pages/quizzes, half chat transcripts (rendered as the server renders them).

    The chats come from their own seed stream, so they are not the training draws."""
    return corpus.calibration_texts(seed, samples - samples // 2), corpus.transcripts(seed + 1, samples // 2)


def calibration_dataset(tokenizer, seed: int, samples: int = CALIBRATION_SAMPLES,
                        sequence_length: int = CALIBRATION_SEQUENCE_LENGTH):
    from datasets import Dataset

    pages, chats = calibration_sources(seed, samples)
    texts = [tokenizer.bos_token + p for p in pages] + [render_chat(tokenizer, c) for c in chats]
    rows = [tokenizer(t, add_special_tokens=False, truncation=True, max_length=sequence_length)
            for t in texts]
    return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows],
                              "attention_mask": [r["attention_mask"] for r in rows]})


def calibration_description(seed: int, samples: int = CALIBRATION_SAMPLES,
                            sequence_length: int = CALIBRATION_SEQUENCE_LENGTH) -> dict:
    return {
        "dataset": "canopy-calibration",
        "source": "bot/demo/corpus.py (calibration_texts and transcripts), built by bot/demo/quantize.py",
        "seed": seed,
        "samples": samples,
        "sequence_length": sequence_length,
        "composition": {
            "textbook pages and quizzes": samples - samples // 2,
            "chat transcripts (chat template applied)": samples // 2,
        },
        "shuffled": False,
    }


def quantize(base_dir: Path, spec: QuantSpec, out_dir: Path, *, seed: int) -> Path:
    """Load the baseline from ``base_dir``, run GPTQ, save compressed weights and recipe.yaml in ``out_dir``."""
    import torch
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bot.demo.train import set_determinism

    print(f"quantize: {spec.variant} ({spec.scheme})", file=sys.stderr, flush=True)
    set_determinism(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    dataset = calibration_dataset(tokenizer, seed, spec.calibration_samples)
    oneshot(
        model=model,
        tokenizer=tokenizer,
        dataset=dataset,
        recipe=modifier(spec),
        num_calibration_samples=len(dataset),
        max_seq_length=CALIBRATION_SEQUENCE_LENGTH,
        shuffle_calibration_samples=False,
        pipeline="basic",
        output_dir=str(out_dir),
        save_compressed=True,
        tie_word_embeddings=not spec.include_lm_head,
    )
    return out_dir
