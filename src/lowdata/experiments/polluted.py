"""Polluted splits (the second paper's protocol): for a category with ``n`` good training images, pollution rate
``r`` moves ``d = round(r n / (1 - r))`` defective images from the test set into the training set, so that
``d / (n + d)`` is ``r`` (as near as a whole number allows). They are drawn without replacement, seeded by
``(seed, rate in per mille, replicate)``; the moved images leave the test set, which keeps at least
``min_test_defects`` defects. A rate outside [0, 1) or one that needs more defects than that is an error, never a
smaller rate; :func:`feasible_rates` says which rates of a sweep a category allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.errors import LowdataError
from ..data.dataset import CategoryData

RATES = (0.0, 0.025, 0.05, 0.10, 0.15, 0.20)


@dataclass
class PollutedSplit:
    rate: float  # asked
    replicate: int
    moved: np.ndarray  # indices into data.test of the defective images moved to training
    test_rows: np.ndarray  # indices into data.test that stay in the test set

    @property
    def n_defects(self) -> int:
        return len(self.moved)


def parse_rate(text: str) -> float:
    """A pollution rate as typed: ``0.1`` or ``10%``."""
    try:
        v = float(text.strip().rstrip("%")) if text.strip().endswith("%") else float(text)
    except ValueError:
        raise LowdataError(f"pollution rate {text!r} is not a number") from None
    return v / 100 if text.strip().endswith("%") else v


def defects_needed(rate: float, n_good: int) -> int:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
        raise LowdataError(f"pollution rate must be in [0, 1), got {rate!r}")
    return int(round(rate * n_good / (1 - rate)))


def pollute(data: CategoryData, rate: float, seed: int = 0, replicate: int = 0,
            min_test_defects: int = 1) -> PollutedSplit:
    """The polluted split of ``data`` at ``rate`` (see the module docstring)."""
    d = defects_needed(rate, len(data.train))
    defects = np.flatnonzero(data.test_labels == 1)
    if d > len(defects) - min_test_defects:
        raise LowdataError(
            f"{data.category}: pollution rate {rate:.1%} needs {d} defective images in training, but the test "
            f"set has {len(defects)} and must keep {min_test_defects}; the largest rate it allows is "
            f"{max_rate(len(data.train), len(defects) - min_test_defects):.1%}")
    rng = np.random.default_rng([int(seed), int(round(rate * 1000)), int(replicate)])
    moved = np.sort(rng.choice(defects, size=d, replace=False)) if d else np.array([], int)
    return PollutedSplit(rate, replicate, moved, np.setdiff1d(np.arange(len(data.test)), moved))


def max_rate(n_good: int, n_movable: int) -> float:
    return max(n_movable, 0) / (n_good + max(n_movable, 0))


def feasible_rates(data: CategoryData, rates: Sequence[float] = RATES, min_test_defects: int = 1):
    """(rates the category allows, rates it does not), for a sweep."""
    n_def = int((data.test_labels == 1).sum())
    ok, no = [], []
    for r in rates:
        (ok if defects_needed(r, len(data.train)) <= n_def - min_test_defects else no).append(r)
    return ok, no
