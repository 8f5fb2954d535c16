"""Decision thresholds from normal images only: no defect example is needed.

A model flags an image as anomalous when its score is above a threshold. The threshold is set for a
target false-positive rate ``fpr`` (the share of *normal* images flagged), from normal images alone:

1. **Out-of-fold scores.** The ``n`` training images are split into ``folds`` seeded groups (at most
   10; one image per group, leave-one-out, up to 10 images). Each group is scored by a detector
   fitted on the other groups, with their augmented copies but never with the copies of the image
   being scored. These ``n`` scores stand for the final model's scores of new normal images. They
   are not quite the same: each fold model saw ``(folds - 1) / folds`` of the images, and new
   images may differ from the training ones (another day, another batch). The book measures the
   rate each rule gives on held-out normal images; Mahalanobis with the empirical covariance,
   whose score scale changes with the number of images, is the method where they differ most.
2. **A rule** turns them into a threshold:

   * ``"lognormal"`` (default): a Gaussian fitted to the logarithms of the scores, threshold at the
     upper ``1 - fpr`` *prediction* bound for one new score: ``exp(m + t * s * sqrt(1 + 1/n))`` with
     ``m``, ``s`` the mean and standard deviation of the log scores and ``t`` Student's
     ``1 - fpr`` quantile with ``n - 1`` degrees of freedom. It extrapolates, so it can aim at
     1 % with 10 images; it is as right as the log-normal shape of the scores.
   * ``"conformal"``: the ``k``-th smallest score with ``k = ceil((n + 1)(1 - fpr))``: the rate of
     false positives is at most ``fpr`` for any distribution of exchangeable scores. When ``k > n``
     (``fpr < 1 / (n + 1)``: 10 images cannot promise less than 9.1 %) the largest score is used
     and a warning says which rate the rule can promise.
   * ``"chi2"`` (Mahalanobis only): a Gaussian-tail rule with no fold at all: the score a point
     would have if its squared distance were at the ``1 - fpr`` chi-square quantile (degrees of
     freedom: the level's dimension) at every level. It assumes the fitted Gaussian is the true
     one, which a covariance from a few images in hundreds of dimensions is not: the book measures
     how far off it is.

:func:`lowdata.inspection.model.fit_model` uses these rules; the book's workflow page measures the
false-positive rate each one gives on held-out normal images (:func:`lowdata.experiments.thresholds.evaluate_thresholds`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..core.errors import LowdataError
from ..detectors.crossfit import FitScore, oof_scores
from ..detectors.mahalanobis import chi2_score
from ..detectors.registry import method_spec

RULES = ("lognormal", "conformal", "chi2")
DEFAULT_RULE = "lognormal"
DEFAULT_FPR = 0.05
#: the thresholds a model may hold: scores are distances of order 1 to 1000, a score divided by a threshold
#: in this range stays a finite ratio, and the heatmaps' colour scale (0.5 to 1.5 times it) stays finite;
#: a model file with another (5e-324, 1e300) is refused
MIN_THRESHOLD, MAX_THRESHOLD = 1e-12, 1e12


@dataclass
class Threshold:
    """A decision threshold and how it was set (recorded in the model file)."""

    value: float
    rule: str
    fpr: float
    folds: int = 0
    seed: int = 0
    oof_scores: list[float] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict:
        return {"value": self.value, "rule": self.rule, "fpr": self.fpr, "folds": self.folds, "seed": self.seed,
                "oof_scores": list(self.oof_scores), "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "Threshold":
        return cls(float(d["value"]), d["rule"], float(d["fpr"]), int(d.get("folds", 0)), int(d.get("seed", 0)),
                   [float(x) for x in d.get("oof_scores", [])], d.get("note", ""))

    def describe(self) -> str:
        how = {"lognormal": f"log-normal prediction bound on {len(self.oof_scores)} out-of-fold scores",
               "conformal": f"conformal rank on {len(self.oof_scores)} out-of-fold scores",
               "chi2": "chi-square tail of the fitted Gaussians"}[self.rule]
        return f"{self.value:.4g} ({how}, {self.folds} folds; target false-positive rate {self.fpr:.1%})"


def check_rule(rule: str, fpr: float, method: str | None = None) -> None:
    if rule not in RULES:
        raise LowdataError(f"unknown threshold rule {rule!r}; choose from {', '.join(RULES)}")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0 < fpr < 1:
        raise LowdataError(f"the target false-positive rate must be between 0 and 1 (e.g. 0.05), got {fpr!r}")
    if rule == "chi2" and method is not None and not method_spec(method).gaussian:
        raise LowdataError(f"the chi2 threshold rule needs a Mahalanobis method (maha-emp, maha-lw), not {method!r}")


def lognormal_bound(scores: Sequence[float], fpr: float) -> float:
    """``exp(m + t_{n-1}(1 - fpr) * s * sqrt(1 + 1/n))`` of the log scores (a one-sided prediction bound)."""
    from scipy.stats import t as student  # lazy: 0.7 s to import, and only this rule needs it

    s = np.asarray(scores, float)
    if len(s) < 3:
        raise LowdataError(f"the lognormal rule needs at least 3 out-of-fold scores, got {len(s)}")
    if (s <= 0).any() or not np.isfinite(s).all():
        raise LowdataError("the lognormal rule needs positive, finite scores (are there duplicate images?); "
                           "use --threshold-rule conformal")
    logs = np.log(s)
    n = len(logs)
    return float(np.exp(logs.mean() + student.ppf(1 - fpr, n - 1) * logs.std(ddof=1) * math.sqrt(1 + 1 / n)))


def conformal_rank(scores: Sequence[float], fpr: float) -> tuple[float, str]:
    """The ``ceil((n + 1)(1 - fpr))``-th smallest score (the largest when that rank is beyond ``n``), and a
    note when the target rate cannot be promised with ``n`` scores."""
    s = np.sort(np.asarray(scores, float))
    n = len(s)
    if n == 0:
        raise LowdataError("the conformal rule needs out-of-fold scores, got none")
    k = math.ceil((n + 1) * (1 - fpr) - 1e-12)
    if k > n:
        note = (f"with {n} images the conformal rule cannot promise a false-positive rate below "
                f"1/{n + 1} = {1 / (n + 1):.1%} (target {fpr:.1%}); the largest out-of-fold score is used")
        return float(s[-1]), note
    return float(s[k - 1]), ""


def threshold_from_scores(scores: Sequence[float] | None, rule: str = DEFAULT_RULE, fpr: float = DEFAULT_FPR, *,
                          folds: int = 0, seed: int = 0, dims: Sequence[int] | None = None) -> Threshold:
    """The threshold a ``rule`` sets from out-of-fold ``scores`` (``chi2``: from ``dims`` alone)."""
    check_rule(rule, fpr)
    if rule == "chi2":
        if not dims:
            raise LowdataError("the chi2 rule needs the feature dimension of every level")
        return Threshold(chi2_score(dims, fpr), rule, fpr, 0, seed, [], "")
    scores = [float(x) for x in scores]
    if not np.isfinite(scores).all():
        raise LowdataError(f"{int((~np.isfinite(scores)).sum())} of the {len(scores)} out-of-fold scores are NaN "
                           "or infinite: no threshold can be set from them")
    if rule == "lognormal":
        value, note = lognormal_bound(scores, fpr), ""
    else:
        value, note = conformal_rank(scores, fpr)
    if not (math.isfinite(value) and MIN_THRESHOLD <= value <= MAX_THRESHOLD):
        raise LowdataError(f"the {rule} rule gave the threshold {value!r}, not a number from {MIN_THRESHOLD:g} "
                           f"to {MAX_THRESHOLD:g}: the good "
                           "images' scores cannot set a threshold (are they all the same image?)")
    return Threshold(value, rule, fpr, folds, seed, scores, note)


def set_threshold(fit_score: FitScore, n: int, rule: str = DEFAULT_RULE, fpr: float = DEFAULT_FPR,
                  folds: int | None = None, seed: int = 0, dims: Sequence[int] | None = None) -> Threshold:
    """The threshold of a model fitted on ``n`` training images.

    ``fit_score(train_rows, score_rows)`` fits a detector on the images ``train_rows`` (with their
    copies) and scores the images ``score_rows``; ``dims`` are the level dimensions (``chi2`` only).
    A note (e.g. a rate the conformal rule cannot promise) is also raised as a warning.
    """
    check_rule(rule, fpr)
    if rule == "chi2":
        return threshold_from_scores(None, rule, fpr, seed=seed, dims=dims)
    k, scores = oof_scores(fit_score, n, folds, seed)
    thr = threshold_from_scores(scores, rule, fpr, folds=k, seed=seed)
    if thr.note:
        warnings.warn(thr.note, stacklevel=2)
    return thr
