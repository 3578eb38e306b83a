"""The stage-1 gate: lm-eval on candidate and baseline, compared metric by metric.

    options.py   strict parsing of the `perplexity`, `benchmarks` and `domain` gate entries
    tasks.py     task YAMLs and their data, exported from the BASE revision and screened
                 (`!function`, includes and data paths that leave the export are refused)
    harness.py   one lm-eval run (`simple_evaluate`) on one model, offline
    scores.py    lm-eval's result dict → frozen scores, with lm-eval's own `higher_is_better`
    cache.py     baseline results keyed by weights digest, task digest, lm-eval version, options
    gate.py      pure comparison: (thresholds, candidate scores, baseline scores) → rows, verdict
"""
