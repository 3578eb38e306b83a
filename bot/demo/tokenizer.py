"""A small byte-level BPE tokenizer for canopy-tiny, with a ChatML-style chat template.

Tool calls are emitted as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
inside the assistant turn. ``RESPONSE_TEMPLATE`` (saved in tokenizer_config.json) tells
``transformers serve`` how to parse that back into OpenAI ``tool_calls``; without it the
server would pass the markup through as plain ``content``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from bot.demo import corpus

VOCAB_SIZE = 1024
BOS = "<|endoftext|>"  # also the document separator and pad token
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # end of every turn; generation stops here
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
SPECIAL_TOKENS = [BOS, IM_START, IM_END]

# Written with explicit '\n' strings so Jinja whitespace control cannot shift the layout.
# Tools are listed one per line as `- name(arg: type, ...): description`, shorter than their
# JSON schema, which keeps the tiny model's prompts (and its training) short.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(system=none) -%}"
    "{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}"
    "{%- if ns.system is not none or tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if ns.system is not none -%}{{- ns.system -}}{%- endif -%}"
    "{%- if tools -%}"
    "{{- '\\nTools:' -}}"
    "{%- for tool in tools -%}"
    "{%- set fn = tool.function if tool.function is defined else tool -%}"
    "{%- set props = (fn.parameters or {}).properties or {} -%}"
    "{{- '\\n- ' + fn.name + '(' -}}"
    "{%- for name, spec in props.items() -%}{{- name + ': ' + (spec.type or 'any') -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}{%- endfor -%}"
    "{{- '): ' + (fn.description or '') -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' and loop.first -%}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if message.content -%}{{- message.content -}}{%- endif -%}"
    "{%- for tc in (message.tool_calls or []) -%}"
    "{%- set fn = tc.function if tc.function is defined else tc -%}"
    "{{- '<tool_call>{\"name\": ' + (fn.name | tojson) + ', \"arguments\": ' -}}"
    "{%- if fn.arguments is string -%}{{- fn.arguments -}}{%- else -%}{{- fn.arguments | tojson -}}{%- endif -%}"
    "{{- '}</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# transformers' declarative response parser (see transformers.utils.chat_parsing): content is
# the text up to <|im_end|>, each <tool_call>...</tool_call> region becomes one OpenAI tool call.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    # Parsing starts after the last assistant header of the prompt + reply (required by serve).
    "start_anchor": IM_START + "assistant\n",
    "fields": {
        "tool_calls": {
            "open_pattern": r"\s*<tool_call>",
            "close": TOOL_CLOSE,
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


def _training_text(seed: int) -> Iterator[str]:
    """Every string the model will see: message bodies, tool JSON, documents, template pieces."""
    for chat in corpus.transcripts(seed):
        for message in chat["messages"]:
            if message.get("content"):
                yield message["content"]
            for tc in message.get("tool_calls") or []:
                yield json.dumps(tc["function"])
        for tool in chat["tools"] or []:
            yield json.dumps(tool["function"])
    yield from corpus.documents(seed)
    yield "system\nuser\nassistant\ntool\nTools:\n"


def train_tokenizer(seed: int = corpus.DEFAULT_SEED) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_training_text(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=IM_END,
        pad_token=BOS,
        model_max_length=512,
        chat_template=CHAT_TEMPLATE,
        response_template=RESPONSE_TEMPLATE,
    )
    # Single tokens for the tool markup: cheaper to learn, and never split by BPE.
    tokenizer.add_tokens([TOOL_OPEN, TOOL_CLOSE])
    return tokenizer


def render_chat(tokenizer: PreTrainedTokenizerFast, chat: dict, *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        chat["messages"], tools=chat.get("tools"), tokenize=False, add_generation_prompt=generation_prompt
    )


def save(tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    tokenizer.save_pretrained(out_dir)
