"""Record the demo's reports as golden files: `python tests/golden/record.py DEMO_OUT`.

Run after `make demo` when a change to the gate is meant to change what reviewers see; then
`PROMOTION_BOT_GOLDEN=update python -m pytest tests/test_report_contract.py` re-renders the
comments, and the diff of tests/golden/ shows reviewers exactly what changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(out: Path) -> None:
    for report in sorted(out.glob("step*/report.json")):
        text = report.read_text().replace(str(out.resolve()), "demo-output").replace(str(out), "demo-output")
        json.loads(text)
        (HERE / f"demo-{report.parent.name}.report.json").write_text(text)
        print(f"recorded {report.parent.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
