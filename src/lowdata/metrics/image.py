"""The image-level metrics: AUROC, average precision, F1-max (the anomalous class as positive), and the area
under the AUC-percent curve (the package's docstring, :mod:`lowdata.metrics`, defines each)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import LowdataError


def _scores_checked(labels, scores) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels and float64 scores, checked; ``None`` when one class is missing (the metric is NaN)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) != len(scores):
        raise LowdataError(f"{len(labels)} labels for {len(scores)} scores")
    if not np.all(np.isfinite(scores)):
        raise LowdataError(f"{int((~np.isfinite(scores)).sum())} scores are not finite")
    if len(np.unique(labels)) < 2:
        return None
    return (labels == 1).astype(np.int8), scores


def _sklearn(metric: str, labels, scores) -> float:
    """scikit-learn's ``metric`` of the checked labels and scores; NaN if one class is missing."""
    checked = _scores_checked(labels, scores)
    if checked is None:
        return float("nan")
    import sklearn.metrics  # lazy: 0.9 s to import, and `lowdata --help` need not pay it

    return float(getattr(sklearn.metrics, metric)(*checked))


def image_auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC of scores against labels (1 = anomalous); NaN (with no error) if one class is missing.

    Parameters
    ----------
    labels : sequence of int
        The test images' labels: 1 anomalous, anything else normal.
    scores : sequence of float
        Their anomaly scores (higher is more anomalous), finite.

    Returns
    -------
    float
        The image AUROC, or NaN if one class is missing.

    Raises
    ------
    lowdata.LowdataError
        If ``labels`` and ``scores`` differ in length, or a score is not finite.
    """
    return _sklearn("roc_auc_score", labels, scores)


def auroc_by_type(labels: Sequence[int], scores: Sequence[float], types: Sequence[str]) -> dict[str, float]:
    """The image AUROC of each defect type: the normal images against that type's anomalous ones only (MVTec
    LOCO's logical and structural anomalies, MVTec AD's defect types). Empty when there are fewer than two
    types or no normal image: the image AUROC says it all, or nothing can be said.

    Parameters
    ----------
    labels : sequence of int
        The test images' labels: 1 anomalous, anything else normal.
    scores : sequence of float
        Their anomaly scores.
    types : sequence of str
        Their defect types (any value for a normal image).

    Returns
    -------
    dict of str to float
        Defect type -> image AUROC, sorted by type.
    """
    labels, scores, types = np.asarray(labels), np.asarray(scores, dtype=float), np.asarray(types, dtype=object)
    bad = labels == 1
    kinds = sorted(set(types[bad]))
    if len(kinds) < 2 or bad.all():
        return {}
    return {str(k): image_auroc(labels[~bad | (types == k)], scores[~bad | (types == k)]) for k in kinds}


def auc_percent_area(n_train: Sequence[float], auc: Sequence[float], n_max: float | None = None) -> float:
    """Area under the AUC-percent curve (see the module docstring for the formula).

    ``n_train`` and ``auc`` are the grid (any order; repeated sizes are averaged, e.g. replicates);
    ``n_max`` defaults to the largest size given, and must be on the grid.

    Parameters
    ----------
    n_train : sequence of float
        The training-set sizes of the grid (repeated for replicates).
    auc : sequence of float
        The AUC at each size, no NaN.
    n_max : float or None, default=None
        The category's full training-set size (``None``: the largest of ``n_train``).

    Returns
    -------
    float
        The area, on the AUC scale.

    Raises
    ------
    lowdata.LowdataError
        If ``n_train`` and ``auc`` are not matching non-empty 1-D sequences, an AUC is NaN, or the grid does not
        reach ``n_max``.
    """
    n = np.asarray(n_train, dtype=np.float64)
    a = np.asarray(auc, dtype=np.float64)
    if n.shape != a.shape or n.ndim != 1 or len(n) == 0:
        raise LowdataError(f"need matching 1-D sample sizes and AUCs, got {n.shape} and {a.shape}")
    if np.isnan(a).any():
        raise LowdataError("an AUC of the curve is NaN")
    sizes = np.unique(n)
    mean = np.array([a[n == s].mean() for s in sizes])
    n_max = float(sizes[-1] if n_max is None else n_max)
    if sizes[-1] != n_max:
        raise LowdataError(f"the curve must reach the full training set (N = {n_max:g}); largest N is {sizes[-1]:g}")
    x = sizes / n_max
    if len(x) == 1:
        return float(mean[0])
    area = float(np.sum(np.diff(x) * (mean[1:] + mean[:-1]) / 2.0))
    return area / (1.0 - x[0])


def image_average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Average precision of the anomalous class (1 = anomalous): ``sum_k (R_k - R_{k-1}) P_k`` over the
    thresholds (scikit-learn's ``average_precision_score``, no interpolation); NaN if one class is missing.

    Parameters
    ----------
    labels : sequence of int
        The test images' labels: 1 anomalous, anything else normal.
    scores : sequence of float
        Their anomaly scores (higher is more anomalous), finite.

    Returns
    -------
    float
        The image average precision, or NaN if one class is missing.

    Raises
    ------
    lowdata.LowdataError
        If ``labels`` and ``scores`` differ in length, or a score is not finite.
    """
    return _sklearn("average_precision_score", labels, scores)


def image_f1_max(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The best F1 score of the anomalous class over every threshold of the scores (F1-max, as the few-shot
    papers report it): ``max 2PR / (P + R)``; NaN if one class is missing.

    Parameters
    ----------
    labels : sequence of int
        The test images' labels: 1 anomalous, anything else normal.
    scores : sequence of float
        Their anomaly scores (higher is more anomalous), finite.

    Returns
    -------
    float
        The image F1-max, or NaN if one class is missing.

    Raises
    ------
    lowdata.LowdataError
        If ``labels`` and ``scores`` differ in length, or a score is not finite.
    """
    checked = _scores_checked(labels, scores)
    if checked is None:
        return float("nan")
    from sklearn.metrics import precision_recall_curve  # lazy: 0.9 s to import

    p, r, _ = precision_recall_curve(*checked)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f1.max())


#: AUPRO's integration limit: the false-positive rate on normal pixels up to which the PRO curve is integrated
