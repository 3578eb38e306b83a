"""Prod monitoring: rollback rules on Prometheus metrics (and probes), one revert PR per trip."""
