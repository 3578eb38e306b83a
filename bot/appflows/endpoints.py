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
    from bot.serving import served  # imported late: the serving module pulls in process management

    with served(ctx, variant) as ep:
        yield as_endpoint(ep)


def as_endpoint(ep) -> Endpoint:
    """Accept whatever `served` yields: our Endpoint, or an object with base_url/url and model."""
    if isinstance(ep, Endpoint):
        return ep
    base_url = getattr(ep, "base_url", None) or getattr(ep, "url", None)
    model = getattr(ep, "model", None) or getattr(ep, "served_model", None)
    if base_url is None or model is None:
        raise TypeError(f"cannot read an endpoint from {ep!r}")
    return Endpoint(base_url=str(base_url), model=str(model), api_key=getattr(ep, "api_key", None))


@contextlib.contextmanager
def candidate_and_baseline(ctx) -> Iterator[tuple[Endpoint, Endpoint]]:
    """Both variants served at once, so their suites can run side by side."""
    with contextlib.ExitStack() as stack:
        ctx.progress(f"serving {ctx.promotion.to_variant} and its baseline {ctx.baseline_ref()}")
        cand = stack.enter_context(served_endpoint(ctx, ctx.candidate))
        base = stack.enter_context(served_endpoint(ctx, ctx.baseline))
        yield cand, base
