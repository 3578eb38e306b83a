"""What the zoo records about each variant: held-out word perplexity and format-following.

Perplexity follows lm-eval's ``word_perplexity`` (exp of total negative log-likelihood over
the total number of whitespace-separated words, BOS as the first context), so these numbers
are comparable with an lm-eval run over ``evals/data/canopy_heldout.jsonl``.
Format checks decode greedily, one prompt at a time, exactly as the server renders it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from bot.demo import formats
from bot.demo.corpus import Probe


@dataclass(frozen=True)
class FormatScores:
    json_valid_rate: float
    tool_call_valid_rate: float
    refusal_rate: float
    sentence_rate: float
    answer_accuracy: float  # JSON/sentence replies identical to the ideal reply
    tool_call_accuracy: float  # tool calls with the expected name and arguments

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@torch.no_grad()
def word_perplexity(model, tokenizer, texts: list[str]) -> float:
    nll, words = 0.0, 0
    for text in texts:
        ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        nll -= logprobs.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).sum().item()
        words += len(re.split(r"\s+", text))
    return math.exp(nll / words)


@torch.no_grad()
def generate_reply(model, tokenizer, messages, tools=None, max_new_tokens: int = 64) -> str:
    prompt = tokenizer.apply_chat_template(
        list(messages), tools=list(tools) if tools else None, add_generation_prompt=True,
        return_tensors="pt", return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=False)


def _rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def score_replies(probes: list[Probe], replies: list[formats.Reply]) -> FormatScores:
    json_ok, tool_ok, refused, sentence_ok, answer_ok, tool_exact = [], [], [], [], [], []
    for probe, reply in zip(probes, replies):
        if probe.kind == "json":
            obj = formats.json_object(reply.content, probe.keys) if not reply.tool_calls else None
            json_ok.append(obj is not None)
            answer_ok.append(obj is not None and reply.content.strip() == probe.expected)
        elif probe.kind == "sentence":
            sentence_ok.append(not reply.tool_calls and formats.is_one_sentence(reply.content))
            answer_ok.append(reply.content.strip() == probe.expected)
        elif probe.kind == "refusal":
            refused.append(not reply.tool_calls and formats.is_refusal(reply.content))
        else:
            call = reply.tool_calls[0] if len(reply.tool_calls) == 1 else None
            tool_ok.append(call is not None and formats.tool_call_valid(call, probe.tools or ()))
            tool_exact.append(call is not None and call.name == probe.tool_name and call.arguments == probe.arguments)
    return FormatScores(
        json_valid_rate=_rate(json_ok),
        tool_call_valid_rate=_rate(tool_ok),
        refusal_rate=_rate(refused),
        sentence_rate=_rate(sentence_ok),
        answer_accuracy=_rate(answer_ok),
        tool_call_accuracy=_rate(tool_exact),
    )


def format_scores(model, tokenizer, probes: list[Probe]) -> FormatScores:
    replies = [formats.parse_text(generate_reply(model, tokenizer, p.messages, p.tools)) for p in probes]
    return score_replies(probes, replies)
