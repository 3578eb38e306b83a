"""Endpoints for the candidate and the baseline, from the policy's `serve:` settings.

`bot.serving.served` starts (and always stops) a local `transformers serve`, or resolves the
policy's URL or command template. Until a variant is served, nothing here talks to a model.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from bot.appflows.runner import Endpoint


@contextlib.contextmanager
def served_endpoint(ctx, variant) -> Iterator[Endpoint]:
    """Serve one zoo variant as the policy says; url mode needs no local weights."""
    from bot.serving import parse_serve, served  # late: process management is only needed here

    spec = parse_serve(ctx.policy.serve, ctx.policy.file)
    weights = None if spec.mode == "url" else ctx.weights_dir(variant)
    with served(spec, weights, name=str(variant.ref)) as ep:
        yield Endpoint(base_url=ep.base_url, model=ep.model, memory=ep.memory)


@contextlib.contextmanager
def candidate_and_baseline(ctx) -> Iterator[tuple[Endpoint, Endpoint]]:
    """Both variants served at once, so their suites can run side by side."""
    with contextlib.ExitStack() as stack:
        ctx.progress(f"serving {ctx.promotion.to_variant} and its baseline {ctx.baseline_ref()}")
        cand = stack.enter_context(served_endpoint(ctx, ctx.candidate))
        base = stack.enter_context(served_endpoint(ctx, ctx.baseline))
        yield cand, base
