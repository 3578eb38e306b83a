"""Which activity each workflow event leads to: one table over the checked-in payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.errors import InputError
from bot.github.event import CHECK, IGNORE, MERGE_GROUP, MONITOR, RERUN, find_activity

EVENTS = Path(__file__).parent / "events"


TABLE = [
    ("pull_request", "pull_request.opened.json", CHECK, 12, False),
    ("pull_request", "pull_request.synchronize.json", CHECK, 12, False),
    ("pull_request", "pull_request.reopened.json", CHECK, 12, False),
    ("pull_request", "pull_request.opened.fork.json", CHECK, 13, True),
    ("pull_request", "pull_request.opened.untrusted-strings.json", CHECK, 14, False),
    ("pull_request", "pull_request.closed.json", IGNORE, None, False),
    ("pull_request", "pull_request.labeled.json", IGNORE, None, False),
    ("pull_request", "pull_request.edited.json", IGNORE, None, False),
    ("workflow_dispatch", "workflow_dispatch.json", RERUN, 12, False),
    ("workflow_dispatch", "workflow_dispatch.no-input.json", IGNORE, None, False),
    ("schedule", "schedule.json", MONITOR, None, False),
    ("repository_dispatch", "repository_dispatch.json", MONITOR, None, False),
    ("push", "push.json", IGNORE, None, False),
    ("merge_group", "merge_group.checks_requested.json", MERGE_GROUP, 12, False),
    ("merge_group", "merge_group.destroyed.json", IGNORE, None, False),
]


@pytest.mark.parametrize(("event_name", "sample", "kind", "pr_number", "from_fork"), TABLE)
def test_find_activity__event_table(event_name, sample, kind, pr_number, from_fork):
    activity = find_activity(event_name, json.loads((EVENTS / sample).read_text()))
    assert (activity.kind, activity.pr_number, activity.from_fork) == (kind, pr_number, from_fork)
    assert activity.reason
    if kind in (CHECK, MERGE_GROUP):
        assert len(activity.base_sha) == 40 and len(activity.head_sha) == 40


def test_find_activity__every_sample_is_in_the_table_or_refused_with_its_field():
    """Every recorded payload goes through find_activity: a sample nobody judges tests nothing."""
    from bot.core.errors import InputError

    tabled = {sample for _, sample, *_ in TABLE}
    samples = sorted(EVENTS.glob("*.json"))
    assert len(samples) >= 10
    for path in samples:
        payload = json.loads(path.read_text())
        event_name = path.name.split(".")[0]
        if path.name in tabled:
            assert find_activity(event_name, payload).reason
        else:  # the samples of bad input
            with pytest.raises(InputError) as err:
                find_activity(event_name, payload)
            assert err.value.field, path.name


def test_find_activity__pull_request_target_is_refused():
    payload = json.loads((EVENTS / "pull_request.opened.json").read_text())
    with pytest.raises(InputError) as err:
        find_activity("pull_request_target", payload)
    assert err.value.field == "on.pull_request_target"
    assert "on: pull_request" in err.value.fix


def test_find_activity__dispatch_input_that_is_not_a_number_names_the_field():
    payload = json.loads((EVENTS / "workflow_dispatch.bad-input.json").read_text())
    with pytest.raises(InputError) as err:
        find_activity("workflow_dispatch", payload)
    assert err.value.field == "inputs.pr"


def test_find_activity__cli_pr_overrides_dispatch_input():
    payload = json.loads((EVENTS / "workflow_dispatch.no-input.json").read_text())
    assert find_activity("workflow_dispatch", payload, pr_input="#7").pr_number == 7


def test_find_activity__payload_missing_a_field_names_it():
    payload = json.loads((EVENTS / "pull_request.opened.json").read_text())
    del payload["pull_request"]["head"]["sha"]
    with pytest.raises(InputError) as err:
        find_activity("pull_request", payload)
    assert err.value.field == "pull_request.head.sha"


def test_find_activity__merge_group_is_judged_against_its_parent_commit_not_the_branch():
    payload = json.loads((EVENTS / "merge_group.checks_requested.json").read_text())
    activity = find_activity("merge_group", payload)
    assert activity.base_sha == payload["merge_group"]["base_sha"] and activity.base_ref is None
    assert activity.head_ref.startswith("gh-readonly-queue/main/pr-12-")
    assert activity.title == "Merge pull request #12 from acme-ml/promote/canopy-v1.3-test"


def test_find_activity__merge_group_without_its_parent_names_the_field():
    payload = json.loads((EVENTS / "merge_group.checks_requested.json").read_text())
    del payload["merge_group"]["base_sha"]
    with pytest.raises(InputError) as err:
        find_activity("merge_group", payload)
    assert err.value.field == "merge_group.base_sha"
