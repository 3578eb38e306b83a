"""Train canopy-tiny, a small LlamaForCausalLM, on the Canopy corpus on CPU, deterministically.

Determinism comes from: a seeded corpus, a seeded batch order, ``torch.manual_seed`` for
the initial weights, ``torch.use_deterministic_algorithms(True)`` and a fixed thread
count (float sums are ordered by the thread split, so a different count gives different
bits). The same seed on the same kind of CPU gives byte-identical weights.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from bot.demo import corpus
from bot.demo.tokenizer import BOS, IM_END, render_chat

THREADS = 2
IGNORE = -100


@dataclass(frozen=True)
class TrainSpec:
    # hidden and intermediate are multiples of 128, so GPTQ groups of 128 and 64 both divide
    # every Linear's input width.
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    chats: int = 2400
    documents: int = 600
    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 40
    seed: int = corpus.DEFAULT_SEED
    max_steps: int | None = None  # cut training short (tests)


def set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(THREADS)


def model_config(spec: TrainSpec, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.pad_token_id,
    )


def generation_config(tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    """Greedy by default, stopping at the end of the assistant turn (or of a document)."""
    return GenerationConfig(
        do_sample=False,
        max_new_tokens=96,
        eos_token_id=[tokenizer.convert_tokens_to_ids(IM_END), tokenizer.bos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


def _assistant_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of assistant turns, including their closing <|im_end|>."""
    spans, start_tag = [], "<|im_start|>assistant\n"
    pos = text.find(start_tag)
    while pos != -1:
        begin = pos + len(start_tag)
        end = text.index(IM_END, begin) + len(IM_END)
        spans.append((begin, end))
        pos = text.find(start_tag, end)
    return spans


def encode_chat(tokenizer: PreTrainedTokenizerFast, chat: dict) -> tuple[list[int], list[int]]:
    """Token ids and labels; only assistant turns are learned, prompts are context."""
    text = render_chat(tokenizer, chat)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans = _assistant_spans(text)
    labels = [
        tok if any(b <= start < e for b, e in spans) else IGNORE
        for tok, (start, _end) in zip(enc["input_ids"], enc["offset_mapping"])
    ]
    return enc["input_ids"], labels


def encode_document(tokenizer: PreTrainedTokenizerFast, text: str) -> tuple[list[int], list[int]]:
    """A document between separators, the way lm-eval scores it (BOS as the first context)."""
    ids = tokenizer(BOS + text + BOS, add_special_tokens=False)["input_ids"]
    return ids, [IGNORE] + ids[1:]


def build_examples(tokenizer: PreTrainedTokenizerFast, spec: TrainSpec) -> list[tuple[list[int], list[int]]]:
    chats = [encode_chat(tokenizer, c) for c in corpus.transcripts(spec.seed, spec.chats)]
    docs = [encode_document(tokenizer, d) for d in corpus.documents(spec.seed, spec.documents)]
    return chats + docs


def batches(examples: list, spec: TrainSpec, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in a seeded order."""
    rng = random.Random(f"batches-{spec.seed}-{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = spec.batch_size * 16
    grouped = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i:i + window], key=lambda j: (len(examples[j][0]), j))
        grouped += [chunk[k:k + spec.batch_size] for k in range(0, len(chunk), spec.batch_size)]
    rng.shuffle(grouped)
    return grouped


def collate(examples: list, idx: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        x, y = examples[i]
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _lr_at(step: int, total: int, spec: TrainSpec) -> float:
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, total - spec.warmup_steps)
    return spec.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(tokenizer: PreTrainedTokenizerFast, spec: TrainSpec = TrainSpec(), log=print) -> LlamaForCausalLM:
    set_determinism(spec.seed)
    model = LlamaForCausalLM(model_config(spec, tokenizer))
    model.generation_config = generation_config(tokenizer)
    examples = build_examples(tokenizer, spec)
    plan = [b for epoch in range(spec.epochs) for b in batches(examples, spec, epoch)]
    if spec.max_steps is not None:
        plan = plan[: spec.max_steps]
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=0.01)
    model.train()
    started = time.monotonic()
    for step, idx in enumerate(plan):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, len(plan), spec)
        loss = model(**collate(examples, idx, tokenizer.pad_token_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == len(plan) - 1:
            log(f"step {step + 1}/{len(plan)} loss {loss.item():.3f} ({time.monotonic() - started:.0f}s)")
    model.eval()
    return model


def save(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

