"""The gate's results recorded in Git notes: real repositories, a bare remote, concurrent writers."""

from __future__ import annotations

import json

import git
import pytest
from gitops import demo_like_repo

from bot.cli import main
from bot.vcs.notes import NOTES_REF, GitNotes
from bot.verdicts.results import CheckResult, MetricRow, PromotionResult, Report
from bot.zoo.records import all_records, gate_pass_rate, latest_checks, note_text, parse_note, records_for

PROMOTED = "canopy-tiny/v1.3-int4-g64"


def promote(repo, env="test", variant=PROMOTED, branch="promote"):
    repo.repo.git.checkout("-q", "-b", branch)
    repo.set_variant(env, variant)
    head = repo.commit(f"Promote {variant} to {env}")
    repo.repo.git.checkout("-q", "main")
    return head


def check(repo, tmp_path, head="promote", *extra):
    out = tmp_path / "report.json"
    code = main(["check", "--repo", str(repo.path), "--base", "main", "--head", head, "--json", str(out),
                 "--cache", str(tmp_path / "cache"), *extra])
    return code, json.loads(out.read_text())


def with_origin(repo, tmp_path):
    bare = tmp_path / "origin.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    repo.repo.create_remote("origin", str(bare))
    repo.repo.git.push("-q", "origin", "main")
    return git.Repo(bare)


def test_records__check_writes_one_note_on_the_pr_head_and_a_rerun_replaces_it(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    main_before = repo.repo.heads.main.commit.hexsha
    head = promote(repo)
    code, report = check(repo, tmp_path, "promote", "--pr", "7")
    assert code == 0
    notes = GitNotes(repo.path).all()
    assert list(notes) == [head]  # keyed by the PR head, not by the throwaway merge commit
    [record] = parse_note(notes[head], head)
    assert (record.environment, record.variant, record.verdict, record.pr) == ("test", PROMOTED, "pass", 7)
    assert record.judged == report["head"] and record.baseline == "canopy-tiny/v1.0-fp32"
    assert [c.name for c in record.checks] == ["zoo"] and record.bot_version and record.lm_eval_version

    check(repo, tmp_path, "promote", "--pr", "7")
    [again] = parse_note(GitNotes(repo.path).read(head), head)
    assert again.recorded_at > record.recorded_at  # replaced, not a second line
    assert repo.repo.heads.main.commit.hexsha == main_before  # nothing committed to the default branch
    assert repo.repo.git.status("--porcelain") == ""


def test_records__no_record_leaves_the_notes_alone(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    promote(repo)
    assert check(repo, tmp_path, "promote", "--no-record")[0] == 0
    assert GitNotes(repo.path).all() == {}


def test_records__push_merges_notes_another_run_pushed_meanwhile(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    bare = with_origin(repo, tmp_path)
    first = promote(repo, "test", PROMOTED, "a")
    second = promote(repo, "test", "canopy-tiny/v1.1-int8", "b")
    other = git.Repo.clone_from(bare.git_dir, tmp_path / "other")
    other.git.fetch("-q", str(repo.path), "b")

    # Another runner records on `second` and pushes first; ours recorded `first` and `second` locally.
    theirs = GitNotes(other.working_dir)
    theirs.write(second, "theirs\n")
    theirs.push()
    ours = GitNotes(repo.path)
    ours.write(first, "ours\n")
    ours.write(second, "ours\n")
    ours.push()  # rejected as non-fast-forward, merged, pushed again: no force

    pushed = GitNotes(other.working_dir)
    assert pushed.pull()
    merged = pushed.all()
    assert merged[first] == "ours\n"
    assert sorted(merged[second].split()) == ["ours", "theirs"]  # cat_sort_uniq keeps both runs' lines
    remote_log = bare.git.log("--format=%P", NOTES_REF).splitlines()
    assert any(len(parents.split()) == 2 for parents in remote_log)  # a merge on top of theirs, no rewrite
    assert sorted(h.name for h in bare.heads) == ["main"]


def test_records__push_without_remote_or_rights_is_an_external_error(tmp_path):
    from bot.core.errors import ExternalError

    repo = demo_like_repo(tmp_path / "gitops")
    repo.repo.create_remote("origin", str(tmp_path / "nowhere.git"))
    notes = GitNotes(repo.path)
    notes.write(repo.repo.head.commit.hexsha, "x\n")
    with pytest.raises(ExternalError, match="git push origin refs/notes/promotion-bot"):
        notes.push()


def _record(env, verdict, when, rows=(), findings=(), name="app-flows"):
    report = Report("b" * 40, "j" * 40, (PromotionResult(env, f"environments/{env}/canopy.yaml", None, "canopy", "modified",
                                                         "canopy-tiny/v1.0-fp32", PROMOTED,
                                                         (CheckResult(name, verdict, rows=rows, findings=findings),)),))
    return records_for(report, commit="c" * 40, recorded_at=when)


def test_records__merged_note_keeps_the_newest_per_key_and_the_writer_compacts_it():
    old, new = _record("test", "fail", "2026-01-01T00:00:00"), _record("test", "pass", "2026-01-02T00:00:00")
    merged = note_text(None, old, "c" * 40) + note_text(None, new, "c" * 40)  # what cat_sort_uniq leaves
    assert [r.verdict for r in all_records({"c" * 40: merged})] == ["pass"]
    assert len(note_text(merged, new, "c" * 40).splitlines()) == 1


def test_records__gate_pass_rate_prefers_the_environments_own_gate():
    row = lambda rate: (MetricRow("output-format (3/4 vs 4/4)", rate, 1.0, "", "pass"),)
    staging = _record("staging", "pass", "2026-01-01T00:00:00", row(0.75))
    prod = _record("prod", "pass", "2026-01-02T00:00:00", row(0.5))
    records = all_records({"c" * 40: note_text(None, staging + prod, "c" * 40)})
    assert gate_pass_rate(records, PROMOTED, "output-format")[0] == 0.5
    assert gate_pass_rate(records, PROMOTED, "output-format", environment="canary")[0] == 0.5  # newest gate
    assert gate_pass_rate(staging, PROMOTED, "output-format")[0] == 0.75  # prod ran no app-flows: staging's
    assert gate_pass_rate(records, PROMOTED, "system-prompt") is None


def test_records__latest_checks_ignore_a_later_run_that_measured_nothing():
    good = _record("test", "pass", "2026-01-01T00:00:00", (MetricRow("x", 1.0, 1.0, "", "pass"),), name="perplexity")
    broke = _record("test", "error", "2026-01-02T00:00:00", name="perplexity")
    [kept] = latest_checks(good + broke, PROMOTED)
    assert kept.check.verdict == "pass"


def test_records__a_corrupt_note_line_is_skipped_with_a_warning_naming_it():
    good = json.dumps({"record": 1, "commit": "c" * 40, "judged": "d" * 40, "base": "b" * 40, "environment": "test",
                       "manifest": "environments/test/canopy.yaml", "variant": PROMOTED, "verdict": "pass",
                       "recorded_at": "2026-12-03T08:00:00.000+00:00", "checks": []})
    warnings = []
    records = parse_note(f'{{"record": 1}}\nnot json\n{{"record": 99, "future": true}}\n{good}\n', "c" * 40,
                         warn=warnings.append)
    assert [r.variant for r in records] == [PROMOTED]
    assert len(warnings) == 3 and warnings[0].startswith(f"{NOTES_REF} of cccccccccccc, line 1: skipped")
    assert "record version 99" in warnings[2] and "git notes --ref=promotion-bot show" in warnings[0]


def test_records__a_hand_edited_note_keeps_its_line_and_gains_the_record(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    head = promote(repo)
    GitNotes(repo.path).write(head, "not a record\n")  # someone edited the note by hand
    code, report = check(repo, tmp_path, "promote")
    assert code == 0 and report["verdict"] == "pass" and report["notes"] == []
    text = GitNotes(repo.path).read(head)
    assert "not a record\n" in text  # left for a person to look at
    [record] = parse_note(text, head, warn=lambda message: None)
    assert record.variant == PROMOTED and record.branch == "main"




def test_records__the_same_head_against_another_branch_is_another_record(tmp_path):
    repo = demo_like_repo(tmp_path / "gitops")
    repo.repo.git.branch("old-release")  # a branch without the later gate
    head = promote(repo)
    assert check(repo, tmp_path, "promote")[0] == 0
    repo.write("environments/test/unrelated.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    repo.commit("main moves on")
    out = tmp_path / "old.json"
    assert main(["check", "--repo", str(repo.path), "--base", "old-release", "--head", "promote", "--json", str(out),
                 "--cache", str(tmp_path / "cache")]) == 0
    records = parse_note(GitNotes(repo.path).read(head), head)
    assert sorted(r.branch for r in records) == ["main", "old-release"]  # neither overwrote the other
    assert all(r.tree for r in records)


def test_records__only_a_tree_that_reached_its_branch_counts_as_the_variants(tmp_path, capsys):
    repo = demo_like_repo(tmp_path / "gitops")
    promote(repo)
    assert check(repo, tmp_path, "promote")[0] == 0
    capsys.readouterr()
    assert main(["zoo", "--repo", str(repo.path), "--json"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[PROMOTED]["results"] == {}  # the PR has not merged: its pass is not the variant's
    assert rows[PROMOTED]["pr_results"]["test"]["verdict"] == "pass"
    repo.repo.git.merge("-q", "--no-ff", "promote", "-m", "Merge the promotion")
    assert main(["zoo", "--repo", str(repo.path), "--json"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[PROMOTED]["results"]["test"]["verdict"] == "pass" and rows[PROMOTED]["pr_results"] == {}
