"""bot.verdicts.looks: the one loop for checks in looks says why it stopped where it did."""

from __future__ import annotations

import pytest

from bot.stats.sequential import Sequential
from bot.verdicts.looks import EXHAUSTED, run_in_looks


def _run(outcomes: list[str]):
    """Looks at 2, 4 and 8 of 8, each returning the next of ``outcomes``; what the loop saw."""
    seen: list[tuple[int, int, bool]] = []
    plan = Sequential.plan(2, 8)

    def look(at):
        seen.append((at.start, at.stop, at.last))
        return f"result {len(seen)}", outcomes[len(seen) - 1]

    result, taken = run_in_looks(plan, look, name="check", unit="round pairs", progress=lambda _: None)
    return result, taken, seen


@pytest.mark.parametrize("outcomes, stop, why", [
    (["fail"], 2, "settled early"),
    (["inconclusive", "pass"], 4, "settled early"),
    (["inconclusive", "inconclusive", "inconclusive"], 8, "the planned maximum"),
    (["inconclusive", EXHAUSTED], 4, "the check's budget ran out"),
    (["error"], 2, "stopped by an error"),
])
def test_run_in_looks__the_note_says_why_it_stopped(outcomes, stop, why):
    result, taken, seen = _run(outcomes)
    assert seen == [(0, 2, False), (2, 4, False), (4, 8, True)][:len(outcomes)]
    assert result == f"result {len(outcomes)}" and taken.observations == stop and taken.look == len(outcomes)
    assert taken.note(0.95, "obrien-fleming").startswith(f"stopped at {stop} of 8 round pairs (look {len(outcomes)} "
                                                         f"of 3): {why}; looks at 2, 4, 8 round pairs")
