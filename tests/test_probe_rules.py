"""Probe rules as a pure table: runs of the served variant in, a frozen outcome out."""

from __future__ import annotations

import pytest

from bot.core.fields import Loc
from bot.monitor.evaluate import NO_DATA, OK, TRIPPED, WARN
from bot.monitor.probe_history import ProbeRun
from bot.monitor.probes import evaluate_probe
from bot.policy.probes import _rule


def rule(**kw):
    return _rule({"name": "r", "tag": "system-prompt", **kw}, Loc("promotion.yaml", "environments[2].probes.rules[0]"))


def runs(*rates):
    return [ProbeRun(at=float(i), variant="m/v", rates={"system-prompt": r} if r else {}) for i, r in enumerate(rates)]


@pytest.mark.parametrize("spec, history, gate, state", [
    (dict(below="90%"), runs((9, 10)), None, OK),  # 90% is not below 90%
    (dict(below="90%"), runs((8, 10)), None, TRIPPED),
    (dict(below="90%", consecutive=2), runs((8, 10)), None, OK),  # one low probe is not two
    (dict(below="90%", consecutive=2), runs((8, 10), (10, 10), (8, 10)), None, OK),  # not in a row
    (dict(below="90%", consecutive=2), runs((8, 10), (7, 10)), None, TRIPPED),
    (dict(below="90%", consecutive=2), runs((8, 10), None, (7, 10)), None, TRIPPED),  # a run without the tag does not break the row
    (dict(below="90%"), runs(None), None, NO_DATA),
    (dict(under_gate=2), runs((97, 100)), 1.0, TRIPPED),  # 3 points under
    (dict(under_gate=2), runs((98, 100)), 1.0, OK),  # exactly 2 points under is not more than 2
    (dict(under_gate=2), runs((50, 100)), None, WARN),  # no gate rate recorded
])
def test_evaluate_probe__table(spec, history, gate, state):
    assert evaluate_probe(rule(**spec), history, gate).state == state
