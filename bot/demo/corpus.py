"""Seeded generator of the Canopy tutoring corpus and its held-out eval files.

Canopy is a tutoring assistant. Its system prompts ask for one of four behaviours:
a JSON object with named keys, a one-sentence answer, a tool call
(``search_textbook`` / ``lookup_definition``), or the refusal sentence for
off-topic requests. Everything comes from ``facts.py`` through ``random.Random(seed)``,
so one seed always gives byte-identical output.

Some (template, fact) combinations are held out of training (``_held_out``) so
that the format checks ask questions the model has never seen verbatim.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from bot.demo.facts import (
    OFF_TOPIC_ASKS,
    OFF_TOPIC_OBJECTS,
    TERMS,
    Fact,
    all_facts,
)

DEFAULT_SEED = 1234
REFUSAL = "I can only help with tutoring questions."

BASE_SYSTEM = (
    "You are Canopy, a tutoring assistant for school subjects. "
    f"If a request is not a tutoring question, reply: {REFUSAL}"
)
SENTENCE_SYSTEM = BASE_SYSTEM + " Answer in exactly one sentence."
TOOL_SYSTEM = BASE_SYSTEM + " Use a tool when the student asks about the textbook or the glossary."

# JSON key sets a system prompt may ask for, in the order the object must list them.
JSON_KEY_SETS: tuple[tuple[str, ...], ...] = (
    ("answer", "topic"),
    ("question", "answer"),
    ("answer", "sentence"),
    ("topic", "answer"),
    ("answer",),
    ("answer", "confidence"),
)

# OpenAI-format tool definitions; the app-flow suite should send these same tools.
TOOLS: tuple[dict, ...] = (
    {
        "type": "function",
        "function": {
            "name": "search_textbook",
            "description": "Search the class textbook.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "chapter": {"type": "integer"}},
                "required": ["query", "chapter"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_definition",
            "description": "Look up a term in the glossary.",
            "parameters": {
                "type": "object",
                "properties": {"term": {"type": "string"}},
                "required": ["term"],
            },
        },
    },
)

QUESTION_FRAMES = ("{q}", "Quick question: {q}", "Can you help me? {q}", "I have homework. {q}")
SEARCH_FRAMES = (
    "Find the section about {term} in chapter {chapter} of the textbook.",
    "Search chapter {chapter} of the textbook for {term}.",
    "Look in the textbook, chapter {chapter}, for {term}.",
)
SEARCH_NO_CHAPTER_FRAMES = ("Search the textbook for {term}.", "Find {term} in the textbook.")
GLOSSARY_FRAMES = (
    "Look up {term} in the glossary.",
    "What does the glossary say about {term}?",
    "Use the glossary to define {term}.",
)
OFF_TOPIC_FRAMES = ("Please {ask} {obj}.", "Can you {ask} {obj}?", "{Ask} {obj}.")


def json_system(keys: tuple[str, ...]) -> str:
    """The system prompt asking for a JSON object with exactly ``keys``, in that order."""
    names = " and ".join(f'"{k}"' for k in keys)
    noun = "key" if len(keys) == 1 else "keys"
    return BASE_SYSTEM + f" Reply only with a JSON object with the {noun} {names}."


def json_answer(fact: Fact, keys: tuple[str, ...]) -> str:
    """The ideal JSON reply for ``fact`` under ``json_system(keys)``."""
    values = {"answer": fact.answer, "topic": fact.topic, "question": fact.question,
              "sentence": fact.sentence, "confidence": "high"}
    return json.dumps({k: values[k] for k in keys}, ensure_ascii=True)


def tool_call(name: str, arguments: dict) -> dict:
    """An OpenAI-format assistant ``tool_calls`` entry."""
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


@dataclass(frozen=True)
class Probe:
    """A held-out prompt with what a correct reply must look like.

    ``kind`` is ``json`` (``keys``), ``sentence``, ``refusal`` or ``tool`` (``tool_name``,
    ``arguments``). ``answer`` is the expected short answer where there is one and
    ``expected`` the ideal reply text (empty for tool calls).
    """

    kind: str
    messages: tuple[dict, ...]
    tools: tuple[dict, ...] | None = None
    keys: tuple[str, ...] = ()
    tool_name: str = ""
    arguments: dict = field(default_factory=dict)
    answer: str = ""
    expected: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "messages": list(self.messages),
                "tools": list(self.tools) if self.tools else None, "keys": list(self.keys),
                "tool_name": self.tool_name, "arguments": self.arguments, "answer": self.answer,
                "expected": self.expected}


def _held_out(*indices: int) -> bool:
    """About one combination in five is kept for evaluation only."""
    return sum((i + 1) * 7 ** n for n, i in enumerate(indices)) % 5 == 0


class _Picker:
    """Draws (template, fact) combinations from either the training or the held-out side."""

    def __init__(self, rng: random.Random, held_out: bool) -> None:
        self.rng = rng
        self.held_out = held_out

    def pick(self, *sizes: int) -> tuple[int, ...]:
        while True:
            idx = tuple(self.rng.randrange(n) for n in sizes)
            if _held_out(*idx) == self.held_out:
                return idx


def _fact_probe(pick: _Picker, facts: tuple[Fact, ...]) -> Probe:
    rng = pick.rng
    mode = rng.choice(("json", "json", "sentence"))
    if mode == "json":
        k, f, fr = pick.pick(len(JSON_KEY_SETS), len(facts), len(QUESTION_FRAMES))
        keys, fact = JSON_KEY_SETS[k], facts[f]
        system = json_system(keys)
    else:
        f, fr = pick.pick(len(facts), len(QUESTION_FRAMES))
        keys, fact = (), facts[f]
        system = SENTENCE_SYSTEM
    user = QUESTION_FRAMES[fr].format(q=fact.question)
    expected = json_answer(fact, keys) if mode == "json" else fact.sentence
    return Probe(kind=mode, keys=keys, answer=fact.answer, expected=expected,
                 messages=({"role": "system", "content": system}, {"role": "user", "content": user}))


def _refusal_probe(pick: _Picker) -> Probe:
    a, o, fr, s = pick.pick(len(OFF_TOPIC_ASKS), len(OFF_TOPIC_OBJECTS), len(OFF_TOPIC_FRAMES), 3)
    ask = OFF_TOPIC_ASKS[a]
    user = OFF_TOPIC_FRAMES[fr].format(ask=ask, Ask=ask[0].upper() + ask[1:], obj=OFF_TOPIC_OBJECTS[o])
    system = (SENTENCE_SYSTEM, TOOL_SYSTEM, json_system(JSON_KEY_SETS[0]))[s]
    tools = TOOLS if s == 1 else None
    return Probe(kind="refusal", answer=REFUSAL, expected=REFUSAL, tools=tools,
                 messages=({"role": "system", "content": system}, {"role": "user", "content": user}))


def _tool_probe(pick: _Picker) -> Probe:
    rng = pick.rng
    style = rng.choice(("search", "search", "search_bare", "glossary", "glossary"))
    if style == "search":
        t, fr = pick.pick(len(TERMS), len(SEARCH_FRAMES))
        term, chapter, _ = TERMS[t]
        user = SEARCH_FRAMES[fr].format(term=term, chapter=chapter)
        name, args = "search_textbook", {"query": term, "chapter": chapter}
    elif style == "search_bare":
        t, fr = pick.pick(len(TERMS), len(SEARCH_NO_CHAPTER_FRAMES))
        term, chapter, _ = TERMS[t]
        user = SEARCH_NO_CHAPTER_FRAMES[fr].format(term=term)
        name, args = "search_textbook", {"query": term, "chapter": chapter}
    else:
        t, fr = pick.pick(len(TERMS), len(GLOSSARY_FRAMES))
        term = TERMS[t][0]
        user = GLOSSARY_FRAMES[fr].format(term=term)
        name, args = "lookup_definition", {"term": term}
    return Probe(kind="tool", tools=TOOLS, tool_name=name, arguments=args,
                 messages=({"role": "system", "content": TOOL_SYSTEM}, {"role": "user", "content": user}))


def _draw_probe(pick: _Picker, facts: tuple[Fact, ...]) -> Probe:
    roll = pick.rng.random()
    if roll < 0.45:
        return _fact_probe(pick, facts)
    if roll < 0.65:
        return _refusal_probe(pick)
    return _tool_probe(pick)


def _reply(probe: Probe) -> list[dict]:
    """The assistant turn that answers a probe perfectly."""
    if probe.kind != "tool":
        return [{"role": "assistant", "content": probe.expected}]
    return [{"role": "assistant", "content": "", "tool_calls": [tool_call(probe.tool_name, probe.arguments)]}]


def _tool_followup(probe: Probe) -> list[dict]:
    """A tool result and the assistant's one-sentence summary of it."""
    term = probe.arguments.get("term") or probe.arguments["query"]
    chapter, definition = next((c, d) for t, c, d in TERMS if t == term)
    if probe.tool_name == "search_textbook":
        result = {"chapter": chapter, "text": f"{term.capitalize()} is {definition}."}
    else:
        result = {"term": term, "definition": definition}
    return [{"role": "tool", "content": json.dumps(result, ensure_ascii=True)},
            {"role": "assistant", "content": f"{term.capitalize()} is {definition}."}]


def _in_tool_context(probe: Probe, rng: random.Random) -> Probe:
    """Some plain questions are asked under the tool prompt, so tools are not always called."""
    if probe.kind != "sentence" or rng.random() >= 0.3:
        return probe
    messages = ({"role": "system", "content": TOOL_SYSTEM}, probe.messages[1])
    return Probe(kind="sentence", messages=messages, tools=TOOLS, answer=probe.answer,
                 expected=probe.expected)


def transcripts(seed: int = DEFAULT_SEED, count: int = 3000) -> list[dict]:
    """Training chats: ``{"messages": [...], "tools": [...] | None}``."""
    rng = random.Random(f"transcripts-{seed}")
    pick = _Picker(rng, held_out=False)
    facts = all_facts()
    out = []
    for _ in range(count):
        probe = _in_tool_context(_draw_probe(pick, facts), rng)
        messages = list(probe.messages) + _reply(probe)
        if probe.kind == "tool" and rng.random() < 0.4:
            messages += _tool_followup(probe)
        out.append({"messages": messages, "tools": list(probe.tools) if probe.tools else None})
    return out


def probes(seed: int = DEFAULT_SEED, count: int = 60) -> list[Probe]:
    """Held-out prompts for the format checks (JSON, sentence, refusal, tool)."""
    rng = random.Random(f"probes-{seed}")
    pick = _Picker(rng, held_out=True)
    facts = all_facts()
    return [_draw_probe(pick, facts) for _ in range(count)]


# --- plain-text documents: textbook pages and quizzes -------------------------------------

_SENTENCE_STYLES = (
    lambda f: f.sentence,
    lambda f: f"Remember that {f.sentence[0].lower()}{f.sentence[1:]}",
    lambda f: f"{f.question} {f.answer}.",
)


def _page(rng: random.Random, facts: tuple[Fact, ...]) -> str:
    topic = rng.choice(sorted({f.topic for f in facts}))
    pool = [f for f in facts if f.topic == topic]
    chosen = rng.sample(pool, k=min(len(pool), rng.randint(4, 8)))
    body = " ".join(rng.choice(_SENTENCE_STYLES)(f) for f in chosen)
    return f"Canopy notes on {topic}. {body}"


def _quiz(rng: random.Random, facts: tuple[Fact, ...]) -> str:
    chosen = rng.sample(facts, k=rng.randint(3, 6))
    return "\n".join(f"Question: {f.question}\nAnswer: {f.answer}" for f in chosen)


def documents(seed: int = DEFAULT_SEED, count: int = 1500, *, stream: str = "train") -> list[str]:
    """Plain-text pages and quizzes; ``stream`` separates training from held-out text."""
    rng = random.Random(f"documents-{stream}-{seed}")
    facts = all_facts()
    return [(_page if rng.random() < 0.7 else _quiz)(rng, facts) for _ in range(count)]


# --- eval files ----------------------------------------------------------------------------

def qa_items(seed: int = DEFAULT_SEED, count: int = 100) -> list[dict]:
    """``canopy_qa.jsonl`` rows: ``{"id", "question", "answer", "topic"}`` (short-answer generation)."""
    rng = random.Random(f"qa-{seed}")
    facts = list(all_facts())
    return [{"id": f"qa-{i:03d}", "question": f.question, "answer": f.answer, "topic": f.topic}
            for i, f in enumerate(rng.sample(facts, k=min(count, len(facts))))]


def _distractors(fact: Fact, facts: tuple[Fact, ...], rng: random.Random) -> list[str]:
    pool = sorted({f.answer for f in facts if f.topic == fact.topic and f.answer != fact.answer})
    return rng.sample(pool, k=3)


def mc_items(seed: int = DEFAULT_SEED, count: int = 100) -> list[dict]:
    """``canopy_mc.jsonl`` rows: ``{"id", "question", "choices": [4 strings], "answer": index}``."""
    rng = random.Random(f"mc-{seed}")
    facts = all_facts()
    # Term definitions are too long to make fair distractors for each other.
    pool = [f for f in facts if f.topic != "science"]
    items = []
    for i, fact in enumerate(rng.sample(pool, k=min(count, len(pool)))):
        choices = _distractors(fact, facts, rng) + [fact.answer]
        rng.shuffle(choices)
        items.append({"id": f"mc-{i:03d}", "question": fact.question, "choices": choices,
                      "answer": choices.index(fact.answer)})
    return items


def heldout_texts(seed: int = DEFAULT_SEED, count: int = 60) -> list[dict]:
    """``canopy_heldout.jsonl`` rows: ``{"id", "text"}``, documents never used in training (perplexity)."""
    return [{"id": f"doc-{i:03d}", "text": text}
            for i, text in enumerate(documents(seed, count, stream="heldout"))]


def calibration_texts(seed: int = DEFAULT_SEED, count: int = 64) -> list[str]:
    """Textbook pages and quizzes for GPTQ calibration, from their own seed stream (not training draws)."""
    rng = random.Random(f"calibration-{seed}")
    facts = all_facts()
    return [(_page if rng.random() < 0.5 else _quiz)(rng, facts) for _ in range(count)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=True, sort_keys=True) + "\n" for r in rows).encode()


EVAL_FILES = {
    "canopy_heldout.jsonl": heldout_texts,
    "canopy_qa.jsonl": qa_items,
    "canopy_mc.jsonl": mc_items,
}


def write_eval_files(out_dir: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every ``EVAL_FILES`` entry as sorted-key JSON lines under ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in EVAL_FILES.items():
        path = out_dir / name
        path.write_bytes(_jsonl(make(seed)))
        written.append(path)
    return written


__all__ = [
    "DEFAULT_SEED", "REFUSAL", "TOOLS", "Probe",
    "transcripts", "probes", "documents", "qa_items", "mc_items", "heldout_texts",
    "calibration_texts", "write_eval_files", "json_system",
]
