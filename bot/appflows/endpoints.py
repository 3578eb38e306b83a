"""Endpoints for the candidate and the baseline, from the policy's `serve:` settings.

`bot.zoo.serving.served` starts (and always stops) a local `transformers serve` or `vllm serve`,
or resolves the policy's URL or command template. Until a variant is served, nothing here talks
to a model. ``ctx.serve_spec()`` is the policy's `serve:` with, for vLLM, the serving arguments
of the environment's manifest.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from bot.appflows.runner import Endpoint
from bot.core.errors import InputError


@contextlib.contextmanager
def served_variants(ctx, variants) -> Iterator[list[Endpoint]]:
    """Serve zoo variants as the policy says, all started at once; url mode needs no local weights."""
    from bot.zoo.serving import served_all  # late: process management is only needed here

    spec = ctx.serve_spec()
    wanted = [(None if spec.mode == "url" else ctx.weights_dir(v), str(v.ref)) for v in variants]
    with served_all(spec, wanted) as endpoints:
        yield [Endpoint(base_url=ep.base_url, model=ep.model, memory=ep.memory) for ep in endpoints]


@contextlib.contextmanager
def served_endpoint(ctx, variant) -> Iterator[Endpoint]:
    """Serve one zoo variant as the policy says."""
    with served_variants(ctx, [variant]) as (endpoint,):
        yield endpoint


def one_at_a_time(ctx) -> bool:
    """The policy serves one variant at a time (`serve: {max_servers: 1}`: a runner too small for two)."""
    return ctx.serve_spec().one_at_a_time


@contextlib.contextmanager
def candidate_and_baseline(ctx) -> Iterator[tuple[Endpoint, Endpoint]]:
    """Both variants served at once (their servers start together), so their suites can run side by side."""
    if one_at_a_time(ctx):
        raise InputError(ctx.policy.file, "serve.max_servers",
                         "is 1, but this check serves the candidate and the baseline at once",
                         "raise `max_servers` to 2, or use `order: sequential` on the performance check")
    ctx.progress(f"serving {ctx.promotion.to_variant} and its baseline {ctx.baseline_ref()}")
    with served_variants(ctx, [ctx.candidate, ctx.baseline]) as (candidate, baseline):
        yield candidate, baseline
