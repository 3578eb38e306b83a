"""Prod monitoring: rollback rules on Prometheus metrics (and probes), one revert PR per trip, verified
and given its statuses (merged too, with `rollback.merge: auto`)."""
