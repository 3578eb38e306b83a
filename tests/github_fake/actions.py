"""A GitHub Actions runner for the fake GitHub: the workflows a README tells users to commit, run
on the events the fake raises, the way Actions would.

What it does as Actions does, because the bot's users live with it:
- a workflow runs only for the events and activity types its `on:` names; `branches:` and
  `paths:` filter as GitHub documents (`*` within a path segment, `**` across them); a workflow a
  filter skips sets no status at all, so a required one stays pending;
- an event caused by the workflow's own token (GITHUB_TOKEN) starts no workflow;
- each job gets a fresh token with exactly the `permissions:` it declares, a fresh checkout of
  the bare repository at the event's commit (`refs/pull/<n>/merge` for a PR), and a push that
  `contents: read` forbids fails with GitHub's 403;
- `actions/create-github-app-token` gives the App's token (a distinct actor: its events do start
  workflows);
- the promotion-bot action runs its own `action.yml` step script with bash, its `env:` expressions
  evaluated from the step's `with:` and the inputs' defaults. Its install steps are not run: the
  bot under test is first on PATH. Artifacts steps are skipped; any other `uses:` is an error,
  so a README that starts depending on more is noticed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .harness import read_outputs

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_TYPES = {"pull_request": ("opened", "synchronize", "reopened"), "merge_group": ("checks_requested",)}
BOT_ACTIONS = ("acme-ml/promotion-bot@", "./")
SKIPPED_ACTIONS = ("actions/upload-artifact@", "actions/download-artifact@", "actions/setup-python@")


@dataclass
class Run:
    workflow: str
    event: str
    action: str | None
    conclusion: str  # success | failure | skipped
    reason: str = ""
    outputs: dict = field(default_factory=dict)
    log: str = ""


def workflows_from_readme(path: Path) -> dict[str, str]:
    """The workflow files a README shows: a "`.github/workflows/<name>`:" line, then its YAML block."""
    text = Path(path).read_text()
    found = {}
    for m in re.finditer(r"`\.github/workflows/([\w.-]+\.ya?ml)`:\s*\n+```yaml\n(.*?)```", text, re.S):
        found[m.group(1)] = m.group(2)
    return found


def triggers(workflow: dict) -> dict:
    """`on:` as a mapping (YAML 1.1 reads the key `on` as true)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {name: {} for name in on}
    return {k: (v or {}) for k, v in (on or {}).items()}


def glob_regex(pattern: str) -> re.Pattern:
    """GitHub's filter patterns: `**` any characters, `*` any but `/`, `?` one character."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _matches(patterns, value: str) -> bool:
    included = False
    for p in patterns:
        negated = p.startswith("!")
        if glob_regex(p[1:] if negated else p).match(value):
            included = not negated
    return included


# --- expressions: the `${{ }}` subset the README's workflows and action.yml use -------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>\|\||&&|==|!=|!|\(|\))"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)*))")


def evaluate(expr: str, context: dict) -> Any:
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read expression {expr!r} at {pos}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    tokens.append(("end", None))
    at = [0]

    def peek():
        return tokens[at[0]]

    def take():
        at[0] += 1
        return tokens[at[0] - 1]

    def primary():
        kind, value = take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if value == "(":
            inner = disjunction()
            take()
            return inner
        if value == "!":
            return not truthy(primary())
        if kind == "name":
            if peek()[1] == "(":
                take()
                take()  # the functions used take no arguments
                return {"always": True, "success": context.get("_status") == "success",
                        "failure": context.get("_status") == "failure", "cancelled": False}[value]
            if value in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[value]
            node: Any = context
            for part in value.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return "" if node is None and value.split(".")[0] in ("steps", "inputs", "vars", "secrets") else node
        raise ValueError(f"unexpected {value!r} in {expr!r}")

    def comparison():
        left = primary()
        while peek()[1] in ("==", "!="):
            op = take()[1]
            right = primary()
            left = (str(left) == str(right)) if op == "==" else (str(left) != str(right))
        return left

    def conjunction():
        left = comparison()
        while peek()[1] == "&&":
            take()
            right = comparison()
            left = right if truthy(left) else left
        return left

    def disjunction():
        left = conjunction()
        while peek()[1] == "||":
            take()
            right = conjunction()
            left = left if truthy(left) else right
        return left

    return disjunction()


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0, 0.0)


def interpolate(text: Any, context: dict) -> Any:
    if not isinstance(text, str):
        return text
    full = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", text, re.S)
    if full:
        value = evaluate(full.group(1), context)
        return "" if value is None else (value if isinstance(value, str) else json.dumps(value))
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), context) or ""), text)


# --- the runner ---------------------------------------------------------------------------------------

class Runner:
    def __init__(self, fake, repo: str, workflows: dict[str, str], root: Path, *, app_token: str | None = None,
                 app_slug: str = "promotion-bot", variables: dict | None = None, secrets: dict | None = None,
                 env: dict | None = None, action_yml: Path = ROOT / "action.yml") -> None:
        self.fake, self.repo, self.root = fake, repo, Path(root)
        self.workflows = {name: yaml.safe_load(text) for name, text in workflows.items()}
        self.app_token, self.app_slug = app_token, app_slug
        self.variables, self.secrets, self.env = variables or {}, secrets or {}, env or {}
        self.action = yaml.safe_load(Path(action_yml).read_text())
        self.runs: list[Run] = []
        self._count = 0

    # -- events --

    def dispatch(self, name: str, payload: dict | None = None, *, actor: str = "octocat") -> None:
        """An event a person or a schedule raises (schedule, repository_dispatch, workflow_dispatch)."""
        with self.fake.state_lock:
            self.fake._emit(name, dict(payload or {}, repository=self.fake.repos[self.repo]), actor)

    def drain(self, limit: int = 40) -> list[Run]:
        """Run workflows for every pending event, and for the events those runs cause, until none is left."""
        done = []
        while True:
            with self.fake.state_lock:
                if not self.fake.events:
                    return done
                event = self.fake.events.pop(0)
            for name, workflow in self.workflows.items():
                run = self._run(name, workflow, event)
                if run is not None:
                    done.append(run)
                    self.runs.append(run)
            if len(done) > limit:
                raise RuntimeError(f"more than {limit} workflow runs: {[(r.workflow, r.event) for r in done]}")

    def _run(self, name: str, workflow: dict, event) -> Run | None:
        on = triggers(workflow)
        action = event.payload.get("action")
        if event.name not in on:
            return None
        if event.by_workflow_token:
            return Run(name, event.name, action, "skipped", "caused by the workflow's GITHUB_TOKEN: starts no workflow")
        spec = on[event.name] if isinstance(on[event.name], dict) else {}  # `schedule:` is a list of crons
        types = spec.get("types") or DEFAULT_TYPES.get(event.name)
        if types and action not in types:
            return None
        skipped = self._filtered(spec, event)
        if skipped:
            return Run(name, event.name, action, "skipped", skipped)
        outputs, conclusion, log = {}, "success", ""
        for job_id, job in workflow["jobs"].items():
            permissions = job.get("permissions", workflow.get("permissions"))
            conclusion, outputs, log = self._job(job, permissions, event)
        return Run(name, event.name, action, conclusion, outputs=outputs, log=log)

    def _filtered(self, spec: dict, event) -> str:
        payload = event.payload
        if event.name == "pull_request":
            pr = payload["pull_request"]
            base, changed = pr["base"]["ref"], None
            if spec.get("paths") or spec.get("paths-ignore"):
                changed = self.fake.hosts[self.repo].changed_files(pr["base"]["sha"], pr["head"]["sha"])
        elif event.name == "merge_group":
            base, changed = payload["merge_group"]["base_ref"].removeprefix("refs/heads/"), None
        else:
            return ""
        if spec.get("branches") and not _matches(spec["branches"], base):
            return f"branches filter: {base} is not listed"
        if changed is not None:
            if spec.get("paths") and not any(_matches(spec["paths"], p) for p in changed):
                return "paths filter: no changed file matches; the workflow does not run and sets no status"
            if spec.get("paths-ignore") and all(_matches(spec["paths-ignore"], p) for p in changed):
                return "paths-ignore filter: every changed file is ignored"
        return ""

    # -- a job --

    def _job(self, job: dict, permissions, event) -> tuple[str, dict, str]:
        self._count += 1
        run_dir = self.root / f"run-{self._count}"
        workspace, temp = run_dir / "work", run_dir / "temp"
        temp.mkdir(parents=True)
        token = f"ghs_run_{self._count}_token"
        self.fake.add_token(token, None, permissions=_permissions(permissions))
        event_file = run_dir / "event.json"
        event_file.write_text(json.dumps(event.payload))
        sha, ref = self._event_commit(event)
        github = {"token": token, "event_name": event.name, "event": event.payload, "sha": sha, "ref": ref,
                  "repository": self.repo, "workspace": str(workspace), "run_id": str(self._count)}
        context = {"github": github, "vars": self.variables, "secrets": self.secrets, "steps": {},
                   "runner": {"temp": str(temp)}, "_status": "success"}
        env = {**{k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "USER")},
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "GITHUB_EVENT_NAME": event.name, "GITHUB_EVENT_PATH": str(event_file), "GITHUB_REPOSITORY": self.repo,
               "GITHUB_API_URL": self.fake.url, "GITHUB_SERVER_URL": self.fake.web, "GITHUB_RUN_ID": str(self._count),
               "GITHUB_SHA": sha, "GITHUB_REF": ref, "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp),
               "GITHUB_ACTIONS": "true", **self.env}
        logs, outputs = [], {}
        for i, step in enumerate(job["steps"]):
            condition = step.get("if")
            if condition is not None:
                if not truthy(evaluate(str(condition).removeprefix("${{").removesuffix("}}"), context)):
                    continue
            elif context["_status"] != "success":
                continue
            uses = step.get("uses", "")
            inputs = {k: interpolate(v, context) for k, v in (step.get("with") or {}).items()}
            if uses.startswith("actions/checkout@"):
                # The token the checkout keeps is the one later pushes use: the job's, or the one given.
                given = inputs.get("token")
                self._checkout(workspace, sha, event, _permissions(permissions) if not given else
                               self.fake.permissions.get(given))
            elif uses.startswith("actions/create-github-app-token@"):
                if not self.app_token:
                    raise RuntimeError("a step asks for a GitHub App token; give the Runner app_token=")
                context["steps"][step.get("id", f"s{i}")] = {"outputs": {"token": self.app_token,
                                                                          "app-slug": self.app_slug}}
            elif uses.startswith(BOT_ACTIONS):
                code, out, log = self._bot(inputs, context, env, workspace, run_dir / f"step-{i}")
                logs.append(log)
                context["steps"][step.get("id", f"s{i}")] = {"outputs": out, "outcome": "success" if code == 0 else "failure"}
                outputs = out
                if code != 0:
                    context["_status"] = "failure"
            elif uses.startswith(SKIPPED_ACTIONS):
                continue
            else:
                raise NotImplementedError(f"the runner does not know the step {uses or step.get('run', '')[:40]!r}")
        return context["_status"], outputs, "\n".join(logs)

    def _event_commit(self, event) -> tuple[str, str]:
        host = self.fake.hosts[self.repo]
        payload = event.payload
        if event.name == "pull_request":
            n = payload["pull_request"]["number"]
            return host.sha(f"refs/pull/{n}/merge") or payload["pull_request"]["head"]["sha"], f"refs/pull/{n}/merge"
        if event.name == "merge_group":
            return payload["merge_group"]["head_sha"], payload["merge_group"]["head_ref"]
        default = self.fake.repos[self.repo]["default_branch"]
        return host.branch(default), f"refs/heads/{default}"

    def _checkout(self, workspace: Path, sha: str, event, grants: dict | None) -> None:
        bare = str(self.fake.hosts[self.repo].bare)
        subprocess.run(["git", "clone", "-q", "--no-checkout", bare, str(workspace)], check=True)
        git = ["git", "-C", str(workspace)]
        if event.name == "pull_request":
            n = event.payload["pull_request"]["number"]
            subprocess.run(git + ["fetch", "-q", "origin", f"+refs/pull/{n}/merge:refs/remotes/pull/{n}/merge",
                                  f"+refs/pull/{n}/head:refs/remotes/pull/{n}/head"], check=True)
        subprocess.run(git + ["checkout", "-q", "--detach", sha], check=True)
        if grants is not None and grants.get("contents") != "write":
            hook = workspace / ".git" / "hooks" / "pre-push"
            hook.write_text("#!/bin/sh\necho \"remote: Permission to $GITHUB_REPOSITORY.git denied to "
                            "github-actions[bot].\" >&2\necho \"fatal: unable to access "
                            "'https://github.example.com/$GITHUB_REPOSITORY/': The requested URL returned error: "
                            "403\" >&2\nexit 1\n")
            hook.chmod(0o755)

    def _bot(self, given: dict, context: dict, env: dict, workspace: Path, step_dir: Path) -> tuple[int, dict, str]:
        """The action's own `Run promotion-bot` step, with its inputs as action.yml defines them."""
        inputs = {}
        for name, spec in self.action["inputs"].items():
            inputs[name] = given[name] if name in given else interpolate(str(spec.get("default", "")), context)
        unknown = set(given) - set(inputs)
        if unknown:
            raise ValueError(f"the workflow passes inputs action.yml does not have: {sorted(unknown)}")
        step = next(s for s in self.action["runs"]["steps"] if s.get("id") == "run")
        local = {**context, "inputs": inputs}
        step_env = {k: interpolate(str(v), local) for k, v in step.get("env", {}).items()}
        step_dir.mkdir(parents=True)
        output, summary = step_dir / "output", step_dir / "summary.md"
        cwd = workspace / interpolate(step.get("working-directory", "."), local)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                              env={**env, **step_env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
                              capture_output=True, text=True, timeout=3600)  # a loaded machine is slow, not wrong
        return proc.returncode, read_outputs(output), proc.stdout + proc.stderr


def _permissions(spec) -> dict | None:
    """A workflow's `permissions:` as the token's grants; absent: the permissive default (all)."""
    if spec is None:
        return None
    if spec == "write-all":
        return None
    if spec == "read-all":
        return {}
    return {k: v for k, v in spec.items()}

