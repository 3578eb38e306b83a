"""Test-only: Python imports `sitecustomize` at start-up from PYTHONPATH, so a `run-check` child
started with this folder on PYTHONPATH registers the checks of `fanout_checks` before it reads
the plan. Production code has no hook for this; tests/test_fanout.py sets the variable.
"""

import fanout_checks  # noqa: F401
