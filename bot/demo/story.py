"""`make demo`: one variant's way through test, staging and prod, then a bad day in prod.

The story runs on a throwaway Git repository built from this project's own demo GitOps content
(`promotion.yaml`, `environments/`, `models/`, `evals/`, `templates/`), with a bare `origin`
beside it, so every step is what the bot does on a real repository: a PR branch, `check`
between the branch and `main`, a merge when the gate passed. Each step states the verdict the
story expects; a step that ends otherwise makes the demo exit non-zero.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bot.core.output import write_atomic
from bot.gate import publish
from bot.gate.pipeline import Judged, check, read_templates
from bot.render.card import recorded_card
from bot.render.zoo_table import compare, compare_markdown
from bot.vcs.notes import GitNotes
from bot.vcs.reader import GitReader
from bot.zoo.records import all_records
from bot.zoo.variants import VariantRef, parse_variant

CONTENT = ("promotion.yaml", "environments", "models", "evals", "templates")
MANIFESTS = {"test": "environments/test/canopy.yaml", "staging": "environments/staging/canopy.yaml",
             "prod": "environments/prod/canopy.yaml"}
ANNOTATION = "promotion-bot/variant: "
GOOD, BAD, INT8 = "canopy-tiny/v1.3-int4-g64", "canopy-tiny/v1.4-int2-g64", "canopy-tiny/v1.1-int8"
PROMISE = "output_tokens_per_second: +20%, peak_memory: -30%"  # what staging comes to expect (step 9)


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class StepRecord:
    number: int
    title: str
    expected: str
    verdict: str = "not run"
    summary: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # label -> path relative to the output folder
    seconds: float = 0.0
    missing: str | None = None  # a capability the step needs that is not there

    @property
    def as_expected(self) -> bool:
        return self.missing is None and self.verdict == self.expected


class DemoRepo:
    """The demo GitOps repository: `main` plus PR branches, pushed to a bare `origin`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    @classmethod
    def create(cls, source: Path, root: Path) -> "DemoRepo":
        work, origin = root / "canopy-gitops", root / "origin.git"
        work.mkdir(parents=True)
        for name in CONTENT:
            src = source / name
            if src.is_dir():
                shutil.copytree(src, work / name)
            elif src.is_file():
                shutil.copy2(src, work / name)
        repo = cls(work)
        repo.git("init", "-q", "-b", "main")
        for key, value in (("user.name", "Canopy Engineer"), ("user.email", "engineer@canopy.example"),
                           ("commit.gpgsign", "false")):
            repo.git("config", key, value)
        repo.git("add", "-A")
        repo.git("commit", "-q", "-m", "Canopy GitOps repo: v1.0-fp32 everywhere")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
        repo.git("remote", "add", "origin", str(origin))
        repo.git("push", "-q", "origin", "main")
        return repo

    def open_pr(self, branch: str, env: str, variant: str, title: str) -> None:
        """A PR branch off main that points `env`'s manifest at `variant`."""
        def point(work: Path) -> None:
            manifest = work / MANIFESTS[env]
            text = manifest.read_text()
            # Every reference moves together (annotation, container args, storageUri): the gate refuses
            # a manifest whose annotation names one variant while the server loads another.
            current = next(ln.split(ANNOTATION, 1)[1].strip() for ln in text.splitlines() if ANNOTATION in ln)
            manifest.write_text(text.replace(current, variant))
        self.open_change(branch, title, point)

    def open_change(self, branch: str, title: str, edit: Callable[[Path], None]) -> None:
        """A PR branch off main with one commit: ``edit`` applied to the work tree."""
        self.git("checkout", "-q", "-b", branch, "main")
        edit(self.path)
        self.git("commit", "-q", "-am", title)
        self.git("checkout", "-q", "main")

    def merge(self, branch: str, title: str) -> None:
        """Merge the PR the way GitHub's merge button does: a merge commit on main, pushed."""
        self.git("merge", "-q", "--no-ff", "-m", title, branch)
        self.git("push", "-q", "origin", "main")


class Story:
    def __init__(self, source: Path, out: Path, *, cache: Path | None = None,
                 progress: Callable[[str], None] = say) -> None:
        self.source, self.out, self.cache = source, out, cache
        self.say = progress
        self.steps: list[StepRecord] = []
        self.repo: DemoRepo | None = None

    # -- steps -------------------------------------------------------------------------------

    def promote(self, number: int, title: str, env: str, variant: str, expected: str, *, merge: bool) -> StepRecord:
        step = StepRecord(number, title, expected)
        self.steps.append(step)
        self.say(f"\n== Step {number}: {title}")
        if not (self.source / "models" / variant / "variant.yaml").is_file():
            step.missing = f"the demo model zoo has no {variant}; build it with `python -m bot.demo.build_zoo`"
            self.report(step)
            return step
        branch = f"promote/{env}-{variant.split('/')[1]}-{number}"
        self.repo.open_pr(branch, env, variant, f"Promote {variant} to {env}")
        return self.judge(step, branch, merge=merge, message=f"Merge PR: promote {variant} to {env}",
                          merged=f"{env} now serves {variant}")

    def promise(self, number: int) -> StepRecord:
        """A PR that writes down the win the compression was for: staging's performance check then
        requires it (`expect:`), from the next PR on (a PR is judged by the policy of its base)."""
        step = StepRecord(number, "staging's policy states the win compression must bring", "pass")
        self.steps.append(step)
        self.say(f"\n== Step {number}: {step.title}")
        policy = self.repo.path / "promotion.yaml"
        lines = policy.read_text().splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.strip() == "- check: performance"]
        if len(at) != 1:
            step.missing = "the demo policy has no (single) performance check to state the win on"
            self.report(step)
            return step
        indent = lines[at[0]].index("-") + 2
        promise = (" " * indent + "# Why we compressed: more tokens per second, less memory. A variant\n"
                   + " " * indent + "# that is no faster or no smaller fails, whatever else it keeps.\n"
                   + " " * indent + "expect: {" + PROMISE + "}\n")

        def state(work: Path) -> None:
            (work / "promotion.yaml").write_text("".join(lines[:at[0] + 1] + [promise] + lines[at[0] + 1:]))
        self.repo.open_change(f"policy/expect-the-win-{number}", f"staging: expect {PROMISE}", state)
        return self.judge(step, f"policy/expect-the-win-{number}", merge=True,
                          message="Merge PR: staging expects the win", merged=f"staging's performance check expects {{{PROMISE}}}")

    def judge(self, step: StepRecord, branch: str, *, merge: bool, message: str, merged: str) -> StepRecord:
        """`check` of the PR ``branch`` against main, its outputs written, merged when it passed and ``merge``."""
        number, folder = step.number, self.out / f"step{step.number}"
        started = time.monotonic()
        # The step number stands for the PR's: the gate records its results under it (bot/gate/recorder.py).
        outcome = check(self.repo.path, "main", branch, workdir=folder / "work", cache_dir=self.cache,
                        progress=lambda m: self.say(f"   {m}"), pr=number)
        step.seconds = time.monotonic() - started
        step.verdict = outcome.report.verdict
        self.write_step(step, folder, outcome)
        if merge and step.verdict == "pass":
            self.repo.merge(branch, message)
            step.summary.append(f"merged into main: {merged}")
        self.report(step)
        return step

    def write_step(self, step: StepRecord, folder: Path, outcome: Judged) -> None:
        comment = publish.comment(outcome.report, templates=outcome.templates)
        publish.write_outputs(outcome.report, comment, json_path=folder / "report.json", comment_path=folder / "comment.md")
        write_atomic(folder / "comment.html", page(f"Step {step.number}: {step.title}", markdown_html(comment)))
        step.files.update({"comment": f"step{step.number}/comment.html", "comment (Markdown)": f"step{step.number}/comment.md",
                           "JSON report": f"step{step.number}/report.json"})
        for p in outcome.report.promotions:
            if p.card is not None and p.to_variant:
                # README.md as the Hub would get it: every number the variant's gates recorded so far.
                write_atomic(folder / "model-card.md", self.card(p.to_variant))
                step.files["model card"] = f"step{step.number}/model-card.md"
            for c in p.checks:
                step.summary.append(f"{c.verdict:7} {c.name}: {c.detail}")
                for a in c.artifacts:
                    step.summary.append(f"        artifact: {a}")
            for e in p.errors:
                step.summary.append(f"error   {e}")
        for e in outcome.report.errors:
            step.summary.append(f"error   {e}")

    def monitor(self, number: int) -> StepRecord:
        step = StepRecord(number, "prod metrics degrade: the monitoring pass opens a revert PR", "tripped")
        self.steps.append(step)
        self.say(f"\n== Step {number}: {step.title}")
        from bot.demo.monitoring import demo_scenario

        started = time.monotonic()
        folder = self.out / f"step{number}"
        forge_dir = folder / "pull-requests"
        code = demo_scenario(self.repo.path, forge_dir, json_path=folder / "monitor.json")
        step.seconds = time.monotonic() - started
        step.verdict = {0: "healthy", 1: "tripped"}.get(code, "error")
        step.files["monitoring report"] = f"step{number}/monitor.json"
        for md in sorted(forge_dir.glob("*.md")):
            write_atomic(md.with_suffix(".html"), page(md.stem, markdown_html(md.read_text())))
            step.files[f"opened: {md.stem}"] = str(md.with_suffix(".html").relative_to(self.out))
        branches = self.repo.git("ls-remote", "--heads", "origin", "promotion-bot/*")
        step.summary += [f"pushed to origin: {line.split()[-1]}" for line in branches.splitlines()]
        self.report(step)
        return step

    # -- the zoo's memory ----------------------------------------------------------------------

    def records(self) -> list:
        return all_records(GitNotes(self.repo.path).all())

    def variant(self, name: str):
        model, variant = name.split("/", 1)
        path = self.repo.path / "models" / model / variant / "variant.yaml"
        return parse_variant(VariantRef(model, variant), path.read_text()) if path.is_file() else None

    def card(self, name: str) -> str:
        variant = self.variant(name)
        records = self.records()
        baselines = [r.baseline for r in records if r.variant == name and r.baseline]
        recipe = self.repo.path / variant.recipe if variant.recipe else None
        reader = GitReader(self.repo.path)
        try:
            overrides = read_templates(reader, reader.resolve("main"), "templates")
        finally:
            reader.close()
        return recorded_card(variant, records, baseline_variant=self.variant(baselines[-1]) if baselines else None,
                             recipe_text=recipe.read_text() if recipe and recipe.is_file() else None,
                             overrides=overrides)

    def write_zoo(self, model: str = "canopy-tiny") -> None:
        """The zoo comparison from the gates' records, as `zoo --compare` prints it."""
        records = self.records()
        baseline = self.variant(f"{model}/v1.0-fp32")
        names = sorted(p.name for p in (self.repo.path / "models" / model).iterdir()
                       if (p / "variant.yaml").is_file() and p.name != "v1.0-fp32")
        table = compare(model, baseline, [self.variant(f"{model}/{n}") for n in names], records)
        write_atomic(self.out / "zoo-compare.json", json.dumps(table, indent=2) + "\n")
        markdown = compare_markdown(table)
        write_atomic(self.out / "zoo-compare.md", markdown)
        write_atomic(self.out / "zoo-compare.html", page(f"{model}: the zoo compared", markdown_html(markdown)))
        self.say(f"\n== The zoo remembers: {len(records)} record(s) in refs/notes/promotion-bot, one per gate run")
        self.say(markdown)
        self.say(f"   zoo comparison: {self.out / 'zoo-compare.md'} (and .json, .html)")

    # -- output ------------------------------------------------------------------------------

    def report(self, step: StepRecord) -> None:
        for line in step.summary:
            self.say(f"   {line}")
        if step.missing:
            self.say(f"   NOT YET THERE: {step.missing}")
            return
        mark = "as expected" if step.as_expected else f"UNEXPECTED (the story expects {step.expected})"
        self.say(f"   verdict: {step.verdict.upper()} ({mark}, {step.seconds:.0f}s)")
        for label, rel in step.files.items():
            self.say(f"   {label}: {self.out / rel}")

    def write_index(self) -> Path:
        rows = []
        for s in self.steps:
            links = " · ".join(f'<a href="{html.escape(rel)}">{html.escape(label)}</a>' for label, rel in s.files.items())
            state = "not yet there" if s.missing else s.verdict
            ok = "✅" if s.as_expected else ("⏳" if s.missing else "❌")
            rows.append(f"<tr><td>{s.number}</td><td>{html.escape(s.title)}</td><td>{html.escape(s.expected)}</td>"
                        f"<td>{ok} {html.escape(state)}</td><td>{s.seconds:.0f}s</td><td>{links}</td></tr>"
                        + (f"<tr><td></td><td colspan=5><pre>{html.escape(chr(10).join(s.summary))}</pre></td></tr>" if s.summary else ""))
        body = ("<h1>promotion-bot demo: canopy through test, staging and prod</h1>"
                f"<p>GitOps repository: <code>{html.escape(str(self.repo.path if self.repo else ''))}</code></p>"
                + ('<p>The zoo compared, from the records every gate run left in <code>refs/notes/promotion-bot</code>: '
                   '<a href="zoo-compare.html">zoo-compare</a> (<a href="zoo-compare.md">Markdown</a>, '
                   '<a href="zoo-compare.json">JSON</a>)</p>' if (self.out / "zoo-compare.md").exists() else "")
                + "<table><tr><th>#</th><th>Step</th><th>Expected</th><th>Verdict</th><th>Time</th><th>Files</th></tr>"
                + "".join(rows) + "</table>")
        index = self.out / "index.html"
        write_atomic(index, page("promotion-bot demo", body))
        write_atomic(self.out / "summary.json", json.dumps([
            {"step": s.number, "title": s.title, "expected": s.expected, "verdict": s.verdict,
             "missing": s.missing, "seconds": round(s.seconds, 1), "files": s.files} for s in self.steps], indent=2) + "\n")
        return index

    # -- the whole story ---------------------------------------------------------------------

    def run(self) -> int:
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        self.repo = DemoRepo.create(self.source, self.out / "repo")
        self.say(f"demo GitOps repo: {self.repo.path} (origin: {self.out / 'repo' / 'origin.git'})")
        self.promote(1, "promote v1.3-int4-g64 into test", "test", GOOD, "pass", merge=True)
        self.promote(2, "promote v1.4-int2-g64 into test", "test", BAD, "fail", merge=False)
        self.promote(3, "promote v1.3-int4-g64 straight into prod", "prod", GOOD, "fail", merge=False)
        self.promote(4, "promote v1.3-int4-g64 into staging", "staging", GOOD, "pass", merge=True)
        self.promote(5, "promote v1.3-int4-g64 into prod", "prod", GOOD, "pass", merge=True)
        self.monitor(6)
        # The other compressed variants through test's gate too, so the zoo compares all four.
        self.promote(7, "promote v1.1-int8 into test", "test", INT8, "pass", merge=True)
        # 20 QA questions cannot tell a one-question drop from a 10-point one: the honest verdict.
        self.promote(8, "promote v1.2-int4-g128 into test", "test", "canopy-tiny/v1.2-int4-g128", "inconclusive",
                     merge=False)
        # The payoff: on this CPU the compressed tiny model is neither faster nor smaller to serve
        # (bench/bench_speedup.py), so the promised win is what stops int8 at staging.
        if self.promise(9).verdict == "pass":
            self.promote(10, "promote v1.1-int8 into staging, which expects the win", "staging", INT8, "fail",
                         merge=False)
        self.write_zoo()
        index = self.write_index()
        self.say("\n== Summary")
        for s in self.steps:
            state = "NOT YET THERE" if s.missing else s.verdict.upper()
            self.say(f"   {s.number}. {s.title}: {state}{'' if s.as_expected or s.missing else '  <-- unexpected'}")
        self.say(f"\nOpen {index} in a browser for every comment, model card and report.")
        return 0 if all(s.as_expected or s.missing for s in self.steps) else 1


def markdown_html(text: str) -> str:
    """GitHub-flavoured enough for a local preview: tables, code, raw <details> blocks."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}"
            "pre{background:#f6f8fa;padding:.6em;overflow:auto}code{background:#f6f8fa}"
            f"</style></head><body>{body}</body></html>\n")


def main(source: Path, out: Path, cache: Path | None = None) -> int:
    try:
        return Story(source, out, cache=cache).run()
    except Exception as exc:  # the demo says what broke instead of a bare traceback
        print(f"demo stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
