"""Fitting a registered detector on rows of a feature pool, and scoring images out of fold.

Out-of-fold scores stand for a detector's scores of new images: the images are split into seeded
folds and each fold is scored by a detector fitted on the others (with their augmented copies, never
with the copies of the image being scored). They serve the threshold rules of the product
(:mod:`lowdata.inspection.threshold`) and the refinement of polluted sets
(:mod:`lowdata.experiments.refine`). A pool is anything with ``take(consumes, rows)`` and
``rows_with_copies(rows, factor)`` (:class:`lowdata.features.pool.FeaturePool`).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ..core.errors import LowdataError
from .registry import make_detector

#: fit_score(train_rows, score_rows) -> scores of score_rows from a detector fitted on train_rows
FitScore = Callable[[np.ndarray, np.ndarray], np.ndarray]
MAX_FOLDS = 10


def folds_of(n: int, k: int, seed: int) -> np.ndarray:
    """Fold number of each of ``n`` images: a seeded permutation cut into ``k`` near-equal parts."""
    if n < k:
        raise LowdataError(f"{n} images cannot be split into {k} folds")
    order = np.random.default_rng([int(seed), n, k]).permutation(n)
    f = np.empty(n, int)
    f[order] = np.arange(n) % k
    return f


def out_of_fold_scores(fit_score: FitScore, rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Score of each of ``rows`` from a detector fitted on the other folds."""
    rows = np.asarray(rows)
    f = folds_of(len(rows), k, seed)
    out = np.empty(len(rows))
    for j in range(k):
        out[f == j] = fit_score(rows[f != j], rows[f == j])
    return out


def default_folds(n: int) -> int:
    """Leave-one-out up to 10 images, then 10 folds."""
    return min(n, MAX_FOLDS)


def oof_scores(fit_score: FitScore, n: int, folds: int | None = None, seed: int = 0) -> tuple[int, np.ndarray]:
    """``(folds, scores)``: each of the ``n`` images scored by a detector fitted on the other folds."""
    k = default_folds(n) if folds is None else folds
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2 or k > n:
        raise LowdataError(f"out-of-fold scores of {n} images need between 2 and {n} folds, got {folds!r}")
    return int(k), out_of_fold_scores(fit_score, np.arange(n), int(k), seed)


def fit_rows(pool, rows: np.ndarray, method: str, factor: int, params: dict | None = None):
    """A ``method`` detector (with ``params``) fitted on the pool's ``rows`` and their ``factor`` copies."""
    det = make_detector(method, **(params or {}))
    return det.fit(pool.take(det.consumes, pool.rows_with_copies(rows, factor)))


def mean_over_views(det, take, rows: np.ndarray, views: int, n_orig: int) -> np.ndarray:
    """The mean score of each of ``rows`` and its first ``views`` copies (copy ``c`` of row ``i`` is row
    ``i + c n_orig``): the score with ``views`` test-time views; ``take(rows)`` gives them as ``det`` consumes them."""
    rows = np.asarray(rows, int)
    total = np.zeros(len(rows))
    for c in range(views + 1):
        total += det.anomaly_score(take(rows + c * n_orig))
    return total / (views + 1)


def fit_score_fn(method: str, pool, factor: int, params: dict | None = None, views: int = 0) -> FitScore:
    """``fit_score(train_rows, score_rows)``: a ``method`` detector fitted on ``train_rows`` (with their
    ``factor`` copies) scores the originals ``score_rows``; with ``views``, each score is the mean over the
    original and its first ``views`` copies (test-time views: the copies of a held-out image are never fitted)."""
    if views > factor:
        raise LowdataError(f"{views} test-time views need as many copies of each image, there are {factor}")

    def fit_score(train_rows, score_rows):
        det = fit_rows(pool, train_rows, method, factor, params)
        return mean_over_views(det, lambda r: pool.take(det.consumes, r), score_rows, views, pool.n_orig)
    return fit_score


def fit_on_pool(pool, rows: Sequence[int], method: str, factor: int, *, folds: int | None, seed: int,
                params: dict | None = None, views: int = 0):
    """Fit ``method`` on the pool's images ``rows`` (with ``factor`` copies each) and score each of those
    images out of fold (with ``views`` test-time views: :func:`fit_score_fn`). Returns ``(detector, (folds,
    out-of-fold scores), fit seconds, scoring seconds)``."""
    rows = np.asarray(rows, int)
    t0 = time.perf_counter()
    det = fit_rows(pool, rows, method, factor, params)
    t1 = time.perf_counter()
    base = fit_score_fn(method, pool, factor, params, views)

    def fit_score(train_idx, score_idx):  # indices into rows
        return base(rows[train_idx], rows[score_idx])

    oof = oof_scores(fit_score, len(rows), folds, seed)
    return det, oof, t1 - t0, time.perf_counter() - t1
