"""One PR judged: plan, run the checks, assemble the report, record it, publish it once."""
