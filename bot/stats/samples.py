"""Checks shared by the statistics: paired per-observation values and confidence levels.

Fail closed: a comparison on mismatched, empty or non-finite data raises a ValueError that says
which argument is wrong and how, instead of returning an interval that means nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def check_level(level: float) -> float:
    """The confidence level as a float in (0, 1); 0.95 for a 95% interval."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level} must be a confidence level strictly between 0 and 1, e.g. 0.95")
    return level


def values(xs: Sequence[float], name: str, *, minimum: int = 2) -> np.ndarray:
    """``xs`` as a 1-d float array of at least ``minimum`` finite values."""
    a = np.asarray(xs, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers, got shape {a.shape}")
    if a.size < minimum:
        raise ValueError(f"{name} has {a.size} values; at least {minimum} are needed for an interval")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {a[bad[0]]}; every value must be a finite number")
    return a


def paired(candidate: Sequence[float], baseline: Sequence[float], *, minimum: int = 2,
           names: tuple[str, str] = ("candidate", "baseline")) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long arrays of per-observation values, element i of both on the same observation."""
    c = values(candidate, names[0], minimum=minimum)
    b = values(baseline, names[1], minimum=minimum)
    if c.size != b.size:
        raise ValueError(f"{names[0]} has {c.size} values and {names[1]} {b.size}; a paired comparison "
                         "needs one value of each per observation, in the same order")
    return c, b
