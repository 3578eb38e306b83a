"""One PR (or merge-queue entry) judged: plan, run the checks, assemble the report, record it, publish it
once, with a status for every environment; a queued tree a recorded gate judged is not judged twice."""
