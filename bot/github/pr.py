"""`promotion-bot github pr|plan|report`: judge one pull request inside GitHub Actions.

`pr` on one runner: pending statuses → check between the PR's merge base and head (policy and
checks from the base revision) → the JSON report and step summary → one sticky comment → final
statuses. The fan-out splits the same run over three jobs: `plan` sets the pending statuses and
writes the plan and its matrix, `run-check` runs each matrix entry on its own runner, and
`report` merges the result files and publishes exactly what `pr` would (the same code below).
Whatever goes wrong, the PR ends with a comment that says what and every status at `error`:
never `success`, never left `pending` while GitHub still answers.

Exit codes (`bot.verdicts.results.EXIT_CODES`, as `check`): 0 pass (or, for `plan`, the plan is
written), 1 a gate failed, 2 could not judge (bad input, a crash, GitHub failing), 3 inconclusive.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from bot.core.errors import ErrorRecord, ExternalError, InputError, PromotionBotError
from bot.core.output import write_atomic
from bot.core.paths import check_repo_path
from bot.forge.protocol import Forge, ForgeError
from bot.gate import pipeline, publish, statuses
from bot.gate.plan import Plan
from bot.gate.scope import environment_names
from bot.gate.statuses import Status
from bot.github import actions
from bot.github.event import RERUN, Activity
from bot.github.settings import Settings
from bot.policy.model import POLICY_FILE, Policy
from bot.render.markdown import COMMENT_MARKER, md_escape
from bot.vcs.reader import GitReader
from bot.vcs.writer import GitWriter
from bot.verdicts.results import PASS, Report

NOTHING_READ = "nothing to promote: this PR changes nothing promotion-bot reads"
NO_STATUSES = ("> [!WARNING]\n> Statuses not set: the workflow's token may not set commit statuses, so branch "
               "protection sees no verdict (fix: give the workflow `permissions: statuses: write`).")
NO_MATRIX = {"matrix": json.dumps({"include": []}), "entries": "0", "plan-path": ""}
# The permission a workflow needs for each write, named in the error when GitHub refuses it.
PERMISSION_FOR = (("status", "statuses: write"), ("comment", "pull-requests: write"))


def plan_contexts(plan: Plan) -> list[str]:
    """The umbrella status and one per environment of the policy (bot/gate/statuses.py): every
    context a team may require is set on every event."""
    return statuses.contexts_for([*plan.environments, *(p.environment for p in plan.promotions),
                                  *(r.environment for r in plan.removals)])


def untouched_environments(plan: Plan | None) -> frozenset[str]:
    """Environments whose `success` is decided before any check runs (none when the plan failed)."""
    if plan is None or plan.errors:
        return frozenset()
    return frozenset(plan.environments) - set(plan.touched)


@dataclass
class PullRequestRun:
    settings: Settings
    forge: Forge
    activity: Activity
    policy_path: str = POLICY_FILE  # read at the base revision, never from the PR
    json_path: Path | None = None
    workdir: Path | None = None
    cache_dir: Path | None = None
    contexts: list[str] = field(default_factory=list)
    read_only: bool = False  # a fork PR's token cannot write: report in the job only
    forge_error: ForgeError | None = None
    plan: Plan | None = None
    sent: dict[str, Status] = field(default_factory=dict)  # what this run already set, per context
    no_statuses: bool = False  # the token may not set statuses: the gate goes on, the comment says so

    # --- forge writes, degrading on fork PRs ---------------------------------------------------

    def _write(self, what: str, fn):
        if self.read_only or self.forge_error is not None:
            return None
        try:
            return fn()
        except ForgeError as exc:
            if exc.status == 403 and self.activity.from_fork:
                self.read_only = True
                actions.annotate("warning", f"The token of this fork PR cannot {what} ({exc.message}); "
                                            "the verdict is in this job's summary and exit code.")
                return None
            if exc.status == 403 and "status" in what:
                self.no_statuses = True
                actions.annotate("error", f"GitHub refused to {what} ({exc.message}) (fix: give the workflow "
                                          "`permissions: statuses: write`)")
                return None
            self.forge_error = exc
            needed = next((p for word, p in PERMISSION_FOR if word in what), "pull-requests: write, statuses: write")
            fix = f" (fix: give the workflow `permissions: {needed}`)" if exc.status == 403 else ""
            actions.annotate("error", f"GitHub failed while trying to {what}: {exc}{fix}")
            return None

    def _set_statuses(self, wanted: dict[str, Status]) -> None:
        for ctx, status in wanted.items():
            if self.no_statuses:
                return
            if self.sent.get(ctx) == status:
                continue  # set already in this run (an untouched environment): no second request

            def send(ctx=ctx, status=status) -> bool:
                self.forge.set_status(self.activity.head_sha, status.state, ctx, status.description,
                                      self.settings.run_url)
                return True

            if self._write(f"set the {ctx} status", send):
                self.sent[ctx] = status

    def _error_statuses_best_effort(self, description: str) -> None:
        """After the forge failed once: one more try to leave `error` rather than `pending`."""
        for ctx, status in statuses.could_not_publish(self.contexts or [statuses.context_for(None)], description).items():
            try:
                self.forge.set_status(self.activity.head_sha, status.state, ctx, status.description,
                                      self.settings.run_url)
            except ForgeError:
                pass

    # --- the three steps ------------------------------------------------------------------------

    def run(self) -> int:
        """`github pr`: plan, run every job on this runner, publish."""
        return self._in_checkout(self._check)

    def run_plan(self, plan_file: Path, matrix_file: Path | None = None) -> int:
        """`github plan`: the pending statuses, then the plan for the matrix jobs (nothing published yet).

        When it could not plan, the error is already on the PR and the matrix is empty.
        """
        code = self._in_checkout(lambda reader: self._fan_out(reader, Path(plan_file), matrix_file))
        if code != 0:
            actions.set_outputs(self.settings.output, NO_MATRIX)
        return code

    def run_report(self, plan_file: Path, results: Path) -> int:
        """`github report`: merge the matrix jobs' result files and publish as `github pr` does."""
        return self._in_checkout(lambda reader: self._report(reader, Path(plan_file), Path(results)))

    def _in_checkout(self, body: Callable[[GitReader], int]) -> int:
        actions.log(f"PR #{self.activity.pr_number}: {self.activity.reason}, head {self.activity.head_sha}")
        try:
            reader = GitReader(self.settings.workspace)
        except PromotionBotError as exc:
            return self._could_not_judge(exc, None)
        try:
            return body(reader)
        finally:
            reader.close()

    def _start(self, reader: GitReader, indexes: dict | None = None) -> tuple[Plan, Policy | None] | int:
        """Plan the PR and set its pending statuses; an exit code when that already ended the run.
        ``indexes``: filled with the manifests read, when this process goes on to judge."""
        try:
            planned = self._plan(reader, indexes)
        except Exception as exc:  # bad input or a crash: reported on the PR, never a pass
            return self._could_not_judge(exc, None)
        plan = self.plan = planned[0]
        self.contexts = plan_contexts(plan)
        if plan.relevant or plan.errors:  # a PR the bot reads nothing of gets its final statuses at once
            self._set_statuses(statuses.pending(self.contexts, len(plan.promotions),
                                                untouched_environments=untouched_environments(plan)))
        if self.forge_error is not None:
            self._error_statuses_best_effort("GitHub failed before the gate ran")
            return 2
        return planned

    def _check(self, reader: GitReader) -> int:
        indexes: dict = {}
        started = self._start(reader, indexes)
        if isinstance(started, int):
            return started
        plan, policy = started
        if not plan.relevant and not plan.errors:
            return self._nothing_read(plan)
        try:
            judged = pipeline.judge(reader, plan, policy, workdir=self.workdir, cache_dir=self.cache_dir,
                                    progress=actions.log, indexes=indexes)
            judged = self._record(reader, judged, policy)
        except Exception as exc:
            return self._could_not_judge(exc, plan)
        return self._publish(judged.report, judged.templates, plan)

    def _nothing_read(self, plan: Plan) -> int:
        """A PR that changes nothing the bot reads (docs, CI, application code): every status
        `success` in seconds and no comment; a comment an earlier push of the PR got is edited,
        so it does not show a verdict the PR no longer needs."""
        report = Report(plan.base, plan.merged, notes=(NOTHING_READ,))
        comment = self._comment(report, {}, plan)
        json_path = self._write_report(report)
        actions.append_summary(self.settings.step_summary, comment)
        url = self._write(f"comment on #{self.activity.pr_number}",
                          lambda: self.forge.update_comment(self.activity.pr_number, comment))
        wanted = statuses.final(report, self.contexts, environments=plan.environments,
                                untouched_environments=plan.environments)
        wanted[statuses.UMBRELLA] = Status("success", NOTHING_READ)
        if self.forge_error is None:
            self._set_statuses(wanted)
        if self.forge_error is not None:
            self._error_statuses_best_effort(f"GitHub failed: {self.forge_error.message}")
            return 2
        if self.no_statuses:
            return 2
        actions.set_outputs(self.settings.output, {"verdict": PASS, "comment-url": url or "",
                                                   "report-path": str(json_path)})
        actions.log(NOTHING_READ)
        return 0

    def _record(self, reader: GitReader, judged: pipeline.Judged, policy: Policy | None) -> pipeline.Judged:
        """The results into the repo's notes, pushed; a fork PR's token cannot push, so it skips with a note."""
        skip = ("results not recorded: the token of a fork PR cannot push `refs/notes/promotion-bot`"
                if self.activity.from_fork else None)
        return pipeline.recorded(reader, judged, policy, pr=self.activity.pr_number, push=True, skip=skip)

    def _fan_out(self, reader: GitReader, plan_file: Path, matrix_file: Path | None) -> int:
        started = self._start(reader)
        if isinstance(started, int):
            return started
        plan, policy = started
        if not plan.relevant and not plan.errors:
            code = self._nothing_read(plan)
            actions.set_outputs(self.settings.output, NO_MATRIX)
            return code
        if plan.errors and not plan.promotions:
            # Nothing for a matrix to run: say what is wrong now, rather than in the report job.
            self._publish(Report(plan.base, plan.merged, removals=plan.removals, errors=plan.errors, notes=plan.notes),
                          {}, plan)
            return 2
        try:
            plan.write(plan_file)
            matrix = json.dumps(plan.matrix())
            if matrix_file:
                write_atomic(Path(matrix_file), matrix + "\n")
        except Exception as exc:
            return self._could_not_judge(exc, plan)
        entries = len(plan.matrix()["include"])
        actions.set_outputs(self.settings.output, {
            "verdict": "pending", "comment-url": "", "report-path": "", "matrix": matrix,
            "entries": str(entries), "plan-path": str(plan_file)})
        actions.log(f"{len(plan.promotions)} promotion(s), {len(plan.jobs)} job(s) in {entries} matrix "
                    f"entr(ies) -> {plan_file}")
        return 0

    def _report(self, reader: GitReader, plan_file: Path, results: Path) -> int:
        started = time.monotonic()
        plan = None
        try:
            plan = self.plan = replace(Plan.read(plan_file), repo=str(Path(reader.path).resolve()))
            self._judged_head(plan, plan_file)
            self.contexts = plan_contexts(plan)
            # The plan job set the untouched environments' final `success`: not again.
            self.sent.update((c, s) for c, s in statuses.pending(
                self.contexts, 0, untouched_environments=untouched_environments(plan)).items() if s.state == "success")
            self._have_commit(reader, plan.pr_head, "pull_request.head.sha")
            plan.merged_commit(reader)
            policy = pipeline.policy_of(reader, plan)
            judged = pipeline.merge(reader, plan, policy, results, started=started)
            judged = self._record(reader, judged, policy)
        except Exception as exc:
            return self._could_not_judge(exc, plan)
        return self._publish(judged.report, judged.templates, plan)

    def _judged_head(self, plan: Plan, plan_file: Path) -> None:
        """The statuses go on the commit the plan judged, which must be this event's PR head.

        A rerun (workflow_dispatch) takes the plan's head: the PR may have moved on since, and
        that push runs its own gate.
        """
        if self.activity.kind == RERUN:
            self.activity = replace(self.activity, head_sha=plan.pr_head)
        elif (plan.pr_head) != self.activity.head_sha:
            raise InputError(str(plan_file), "head",
                             f"the plan judges {(plan.pr_head)[:12]}, not this PR's head {str(self.activity.head_sha)[:12]}",
                             "download the plan artifact of this workflow run, written by `github plan`")

    def _plan(self, reader: GitReader, indexes: dict | None = None) -> tuple[Plan, Policy | None]:
        head = self._have_commit(reader, self.activity.head_sha, "pull_request.head.sha")
        base = self._target_tip(reader)
        # Judged as it would merge into the target branch now (pipeline.plan_pr): the policy and the
        # state of the environments are the target's current ones, not those of the PR's fork point.
        actions.log(f"judging {head[:12]} as merged into {base[:12]}")
        path = check_repo_path(self.policy_path, file="action.yml", field="policy")
        return pipeline.plan_pr(reader, base, head, policy_path=path, indexes=indexes)

    def _target_tip(self, reader: GitReader) -> str:
        """The target branch as it is now (a full-history checkout has it as origin/<base>); else the
        base commit of the event."""
        if self.activity.base_ref:
            try:
                return reader.resolve(f"refs/remotes/origin/{self.activity.base_ref}")
            except InputError:
                pass
        return self._have_commit(reader, self.activity.base_sha, "pull_request.base.sha")

    def _have_commit(self, reader: GitReader, sha: str | None, field_name: str) -> str:
        if not sha:
            raise InputError("GITHUB_EVENT_PATH", field_name, "is missing", "run on a pull_request event")
        try:
            return reader.resolve(sha)
        except InputError:
            pass
        if self.activity.pr_number and field_name.endswith("head.sha"):
            # A rerun is checked out at the default branch: fetch the PR's head (a fork's commits too)
            # with the credentials actions/checkout left in the clone, never the token itself.
            actions.log(f"fetching refs/pull/{self.activity.pr_number}/head")
            writer = GitWriter(reader.path)
            try:
                writer.fetch_ref(f"+refs/pull/{self.activity.pr_number}/head")
                return reader.resolve(sha)
            except (InputError, ExternalError):
                pass
            finally:
                writer.close()
        raise InputError(str(self.settings.workspace), field_name,
                         f"commit {sha[:12]} is not in the checkout",
                         "check out the full history: `actions/checkout` with `fetch-depth: 0`")

    def _could_not_judge(self, exc: BaseException, plan: Plan | None) -> int:
        if isinstance(exc, InputError):
            record = exc.as_record()
        elif isinstance(exc, PromotionBotError):
            record = ErrorRecord("", "", str(exc))
        else:
            actions.log("crashed:\n" + traceback.format_exc())
            record = ErrorRecord("", "", f"promotion-bot crashed: {type(exc).__name__}: {exc}")
        actions.annotate("error", str(record) if record.file else record.message)
        base = plan.base if plan else (self.activity.base_sha or "")
        head = plan.merged if plan else (self.activity.head_sha or "")
        report = Report(base, head, errors=(record,))
        if not self.contexts:
            self.contexts = plan_contexts(plan) if plan else self._contexts_without_a_plan()
        self._publish(report, {}, None)
        return 2

    def _contexts_without_a_plan(self) -> list[str]:
        """Nothing was planned (no checkout, a missing commit): the environments named in the policy
        file of the checkout, read leniently, so each required context gets its `error` too."""
        try:
            text = (Path(self.settings.workspace) / check_repo_path(self.policy_path)).read_text()
        except (OSError, PromotionBotError, UnicodeDecodeError):
            text = None
        return statuses.contexts_for(environment_names(text))

    def _comment(self, report: Report, templates, plan: Plan | None) -> str:
        try:
            return publish.comment(report, templates=templates, report_url=self.settings.run_url,
                                   files_url=self._files_url(plan), pr_url=self._pr_url())
        except Exception:  # a template failed: still say what the verdict is and what went wrong
            errors = [e.message for e in report.errors] or [f"{p.environment}: {p.verdict}" for p in report.promotions]
            return (f"{COMMENT_MARKER}\n## ⚠️ promotion-bot: {report.verdict.upper()}\n\n"
                    + "\n".join(f"- {md_escape(e)}" for e in errors) + "\n\nThe comment template failed to render.\n")

    def _files_url(self, plan: Plan | None) -> str | None:
        return publish.files_url(self.settings.repo_url, plan.pr_head) if plan is not None else None

    def _pr_url(self) -> str | None:
        return f"{self.settings.repo_url}/pull/{self.activity.pr_number}" if self.activity.pr_number else None

    def _write_report(self, report: Report) -> Path:
        json_path = self.json_path or Path(pipeline.temp_root()) / "promotion-bot-report.json"
        write_atomic(json_path, json.dumps(report.to_json(), indent=2) + "\n")
        return json_path

    def _publish(self, report: Report, templates, plan: Plan | None) -> int:
        comment = self._comment(report, templates, plan)
        if self.no_statuses:
            comment = comment.rstrip("\n") + "\n\n" + NO_STATUSES + "\n"
        json_path = self._write_report(report)
        actions.append_summary(self.settings.step_summary, comment)
        try:  # the full cards the comment links to; a card that fails to render leaves the comment as it is
            actions.append_summary(self.settings.step_summary, publish.full_cards(report, files_url=self._files_url(plan)))
        except Exception as exc:
            actions.log(f"the model cards could not be rendered into the summary: {exc}")
        for p in report.promotions:
            if p.verdict != PASS:  # shown on the run page and in the PR's checks tab
                actions.annotate("error", f"{p.environment}: {p.manifest} → {p.to_variant}: {p.verdict}")
        url = self._write(f"comment on #{self.activity.pr_number}",
                          lambda: self.forge.upsert_comment(self.activity.pr_number, comment))
        if self.forge_error is not None:  # the comment did not land: the statuses must not say success
            self._error_statuses_best_effort(f"GitHub failed: {self.forge_error.message}")
        else:
            plan = self.plan
            self._set_statuses(statuses.final(report, self.contexts, environments=plan.environments if plan else (),
                                              untouched_environments=untouched_environments(plan)))
        verdict = report.verdict if self.forge_error is None else "error"
        actions.set_outputs(self.settings.output, {"verdict": verdict, "comment-url": url or "",
                                                   "report-path": str(json_path)})
        actions.log(f"verdict: {verdict}" + (f", comment: {url}" if url else ""))
        if self.forge_error is not None or self.no_statuses:
            return 2
        return report.exit_code


# The arguments only some steps take: `pr` workdir and cache_dir, `plan` plan_file and matrix_file,
# `report` plan_file and results.
STEP_OPTIONS = ("workdir", "cache_dir", "plan_file", "matrix_file", "results")


def run_pull_request(settings: Settings, forge: Forge, activity: Activity, *, step: str = "pr",
                     plan_file: Path | None = None, matrix_file: Path | None = None, results: Path | None = None,
                     **options) -> int:
    """``step``: `pr` (the whole gate here), `plan` or `report` (the two ends of a fan-out)."""
    if activity.kind == RERUN:
        info = forge.get_pull_request(activity.pr_number)
        if info.state != "open":
            actions.log(f"#{info.number} is {info.state}: nothing to rerun")
            actions.set_outputs(settings.output, skipped_outputs(step))
            return 0
        activity = replace(activity, base_sha=info.base_sha, head_sha=info.head_sha, base_ref=info.base_ref,
                           head_ref=info.head_ref, title=info.title, from_fork=info.from_fork)
    run = PullRequestRun(settings, forge, activity, **options)
    if step == "plan":
        return run.run_plan(plan_file, matrix_file)
    if step == "report":
        return run.run_report(plan_file, results)
    return run.run()


def skipped_outputs(step: str) -> dict[str, str]:
    """Step outputs for an event with nothing to judge; a plan's matrix is then empty."""
    outputs = {"verdict": "skipped", "comment-url": "", "report-path": ""}
    return {**outputs, **NO_MATRIX} if step == "plan" else outputs
