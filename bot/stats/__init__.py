"""Statistics of the gate: pure functions from paired observations to intervals and verdicts.

Every comparison of a candidate with its baseline becomes an `Interval` of "how much worse the
candidate is", in the unit of the policy's limit (a fraction for `3%`, points for `10`), oriented so
that a positive value is worse whatever the metric's direction. `decide` turns an interval and a
limit into one of three outcomes: pass (the whole interval within the limit), fail (the whole
interval beyond it) or inconclusive.

Modules:
- `interval`: the `Interval` type, `decide`, and the sample-size estimate shown with an inconclusive.

No I/O, no randomness without an explicit seed: the same inputs give the same interval.
"""
