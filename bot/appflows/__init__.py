"""Application-flow suites: does the app still work on this model?

Shared by the `app-flows` gate and the prod probes:

    from bot.appflows.runner import Endpoint, run_cases
    from bot.appflows.suite import all_cases, load_suites

    suites = load_suites(reader, base_rev, "evals/canopy")      # or load_suite_files([...])
    run = run_cases(Endpoint("http://127.0.0.1:8000/v1", "canopy"), all_cases(suites),
                    concurrency=4, timeout_s=60, sample_rule="majority")
    run.pass_rates()      # {"output-format": (passed, total), ...} for the four tags
    run.results           # CaseResult per case: .status pass|fail|error, .output, .failures

`suite` reads suites, `assertions` judges one reply, `runner` runs cases over the OpenAI chat API,
`options` is the gate's vocabulary, `compare` the candidate-against-baseline comparison and `looks`
runs a large suite in batches until its verdict is settled.
"""
