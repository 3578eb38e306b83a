"""Application-flow suites: does the app still work on this model?

The public API, shared by the `app-flows` gate and the prod probes:

    from bot.appflows import Endpoint, load_suites, all_cases, run_cases

    suites = load_suites(reader, base_rev, "evals/canopy")      # or load_suite_files([...])
    run = run_cases(Endpoint("http://127.0.0.1:8000/v1", "canopy"), all_cases(suites),
                    concurrency=4, timeout_s=60, sample_rule="majority")
    run.pass_rates()      # {"output-format": (passed, total), ...} for the four tags
    run.results           # CaseResult per case: .status pass|fail|error, .output, .failures

Candidate-against-baseline comparison lives in `bot.appflows.compare`.
"""

from bot.appflows.assertions import Reply, ToolCall
from bot.appflows.runner import ERROR, FAIL, PASS, CaseResult, Endpoint, Run, run_cases, run_cases_async, tag_tally
from bot.appflows.suite import TAGS, Case, Suite, all_cases, load_suite_files, load_suites, parse_suite, shard_cases

__all__ = [
    "ERROR", "FAIL", "PASS", "TAGS",
    "Case", "CaseResult", "Endpoint", "Reply", "Run", "Suite", "ToolCall",
    "all_cases", "load_suite_files", "load_suites", "parse_suite", "run_cases", "run_cases_async",
    "shard_cases", "tag_tally",
]
