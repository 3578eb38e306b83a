"""The app-flows gate's vocabulary: what `promotion.yaml` (gate entries and probes) may say of it.

Kept apart from the runner and the comparison, so reading a policy imports neither httpx nor scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RULES = ("majority", "all", "any")
SERVER_ERRORS = ("error", "fail")  # what an HTTP 5xx or a dropped connection makes of a sample


@dataclass(frozen=True)
class GateOptions:
    max_regressions: int | None = 0  # None: not counted (the default once max_pass_rate_drop is set)
    min_pass_rate: float | None = None  # 0.9 for "90%": the candidate's share of passing cases
    max_errors: int = 0  # cases that could not be judged (HTTP errors, timeouts), per side
    max_pass_rate_drop: float | None = None  # points: the paired interval of the drop must stay within
