"""Results that are possible but suspicious: warnings for reviewers, never a verdict.

- A baseline whose perplexity says it knows nothing of the eval text: bits per byte above 8 (worse
  than guessing bytes uniformly) or a word perplexity of at least its vocabulary size (a trained
  model on its own domain sits orders of magnitude below). Then every comparison on that task is
  between two models that do not know the text: the eval data is likely not this model's domain,
  or the weights and tokenizer do not belong together.
- A quantized candidate much *better* than its baseline: the whole interval lies beyond the
  check's limit on the better side. Compression loses information; a large gain usually means the
  eval data is out of domain (noise decides), or the baseline is not the model the variant was made from.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from bot.lmeval.scores import as_number
from bot.verdicts.results import MetricRow

BITS_PER_BYTE_OF_GUESSING = 8.0  # log2(256): a uniform guess over bytes


def absurd_baseline(results: Mapping[str, Mapping], vocab_size: int | None) -> list[str]:
    """``results``: lm-eval's `results` for the baseline, by task."""
    out = []
    for task, metrics in sorted(results.items()):
        bpb = as_number(metrics.get("bits_per_byte,none"))
        ppl = as_number(metrics.get("word_perplexity,none"))
        if bpb is not None and bpb > BITS_PER_BYTE_OF_GUESSING:
            out.append(f"{task}: the baseline's bits per byte is {bpb:.2f}, worse than guessing bytes at random "
                       f"({BITS_PER_BYTE_OF_GUESSING:g}): the eval data may not be text this model knows, or its "
                       "weights and tokenizer do not belong together")
        elif ppl is not None and vocab_size and ppl >= vocab_size:
            out.append(f"{task}: the baseline's word perplexity is {ppl:,.0f}, at least its vocabulary size "
                       f"({vocab_size:,}): the eval data may not be text this model knows, or its weights and "
                       "tokenizer do not belong together")
    return out


def better_than_baseline(rows: Sequence[MetricRow]) -> list[str]:
    """Rows of a quantized candidate whose whole interval is better than the baseline by more than the limit."""
    out = []
    for row in rows:
        ev = row.evidence
        if ev is None or ev.limit <= 0 or not ev.interval.high < -ev.limit:
            continue
        unit = "%" if ev.unit == "relative" else (" pt" if ev.unit == "points" else "")
        scale = 100 if ev.unit == "relative" else 1
        out.append(f"{row.label}: the quantized candidate is better than its baseline by {-ev.interval.high * scale:.3g}"
                   f"{unit} or more (the whole interval, beyond the {ev.limit * scale:g}{unit} limit): compression "
                   "rarely gains this much; the eval data may be out of domain for this model, or the baseline may "
                   "not be the model this variant was made from")
    return out


