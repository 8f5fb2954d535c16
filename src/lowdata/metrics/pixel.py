"""The pixel-level metrics of detectors that give maps: pixel AUROC and AUPRO (the package's docstring,
:mod:`lowdata.metrics`, defines each)."""

from __future__ import annotations

import numpy as np

from ..core.errors import LowdataError


def pixel_auroc(masks: np.ndarray, heatmaps: np.ndarray) -> float:
    """ROC AUC over all pixels: ``masks`` and ``heatmaps`` both ``(n, h, w)`` at the same resolution.

    Parameters
    ----------
    masks : ndarray of shape (n, h, w)
        Ground-truth masks (positive: anomalous); all zero for good images.
    heatmaps : ndarray of shape (n, h, w)
        Anomaly heatmaps at the masks' resolution.

    Returns
    -------
    float
        The pixel AUROC, or NaN if every pixel, or none, is anomalous.

    Raises
    ------
    lowdata.LowdataError
        If ``masks`` and ``heatmaps`` differ in shape.
    """
    masks = np.asarray(masks)
    heatmaps = np.asarray(heatmaps)
    if masks.shape != heatmaps.shape:
        raise LowdataError(f"masks {masks.shape} and heatmaps {heatmaps.shape} differ in shape")
    y = (masks > 0).ravel()
    if y.all() or not y.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # lazy: 0.9 s to import

    return float(roc_auc_score(y, heatmaps.ravel()))


PRO_LIMIT = 0.3


def pro_curve(masks: np.ndarray, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve (MVTec AD's definition, Bergmann et al. 2021): for every threshold of the
    heatmaps, the false-positive rate on normal pixels (those outside every ground-truth region) and the
    mean, over every connected ground-truth region of every image (8-connectivity), of the fraction of the
    region's pixels at or above the threshold. Points of equal scores are one point; the curve runs from
    (0, 0) to (1, 1). ``masks`` and ``heatmaps`` are ``(n, h, w)`` at the same resolution.

    Parameters
    ----------
    masks : ndarray of shape (n, h, w)
        Ground-truth masks (positive: anomalous).
    heatmaps : ndarray of shape (n, h, w)
        Anomaly heatmaps at the masks' resolution, finite.

    Returns
    -------
    fpr : ndarray
        The false-positive rates, ascending from 0 to 1.
    pro : ndarray
        The mean per-region overlap at each point (all NaN if the masks hold no region or no normal pixel).

    Raises
    ------
    lowdata.LowdataError
        If ``masks`` and ``heatmaps`` are not two ``(n, h, w)`` arrays of one shape, or a heatmap value is not
        finite.
    """
    from scipy.ndimage import label  # lazy: 0.2 s to import

    masks = np.asarray(masks)
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if masks.shape != heatmaps.shape or masks.ndim != 3:
        raise LowdataError(f"masks {masks.shape} and heatmaps {heatmaps.shape}: need two (n, h, w) arrays of one shape")
    if not np.all(np.isfinite(heatmaps)):
        raise LowdataError(f"{int((~np.isfinite(heatmaps)).sum())} heatmap values are not finite")
    fp = np.zeros(masks.shape, np.float64)  # what each pixel adds to the FPR's numerator, or to the summed overlap
    overlap = np.zeros(masks.shape, np.float64)
    regions, normal = 0, 0
    for i, m in enumerate(masks > 0):
        labelled, k = label(m, structure=np.ones((3, 3), int))
        fp[i][~m] = 1.0
        normal += int((~m).sum())
        if k:
            sizes = np.bincount(labelled.ravel(), minlength=k + 1)
            overlap[i][m] = 1.0 / sizes[labelled[m]]
            regions += k
    if regions == 0 or normal == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]) * np.nan
    order = np.argsort(-heatmaps.ravel(), kind="stable")
    ranked = heatmaps.ravel()[order]
    fpr = np.cumsum(fp.ravel()[order]) / normal
    pro = np.cumsum(overlap.ravel()[order]) / regions
    last = np.append(ranked[1:] != ranked[:-1], True)  # the last pixel of each run of equal scores
    fpr = np.concatenate([[0.0], np.minimum(fpr[last], 1.0), [1.0]])
    pro = np.concatenate([[0.0], np.minimum(pro[last], 1.0), [1.0]])
    return fpr, pro


def area_to(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoidal area under the curve ``(x, y)`` (``x`` ascending) from ``x[0]`` to ``limit``, the curve's
    value at ``limit`` interpolated linearly between its neighbours.

    Parameters
    ----------
    x : ndarray
        The curve's abscissae, ascending, from at most ``limit``.
    y : ndarray
        Its ordinates.
    limit : float
        Where the area stops.

    Returns
    -------
    float
        The area.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    inside = x <= limit
    xs, ys = x[inside], y[inside]
    if xs[-1] < limit:  # the point at the limit, between the last point inside and the first beyond it
        j = int(np.argmax(x > limit))
        t = (limit - x[j - 1]) / (x[j] - x[j - 1])
        xs, ys = np.append(xs, limit), np.append(ys, y[j - 1] + t * (y[j] - y[j - 1]))
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


def aupro(masks: np.ndarray, heatmaps: np.ndarray, limit: float = PRO_LIMIT) -> float:
    """Area under the PRO curve (:func:`pro_curve`) up to a false-positive rate of ``limit`` (0.3, MVTec AD's
    choice), divided by ``limit``: 1 for a perfect map, about ``limit / 2`` for a random one. NaN when the
    masks hold no anomalous region (a category without defects' masks).

    Parameters
    ----------
    masks : ndarray of shape (n, h, w)
        Ground-truth masks (positive: anomalous).
    heatmaps : ndarray of shape (n, h, w)
        Anomaly heatmaps at the masks' resolution, finite.
    limit : float, default=0.3
        The false-positive rate up to which the PRO curve is integrated, in (0, 1] (:data:`PRO_LIMIT`).

    Returns
    -------
    float
        The AUPRO, or NaN if the masks hold no anomalous region.

    Raises
    ------
    lowdata.LowdataError
        If ``limit`` is not in (0, 1], or :func:`pro_curve` refuses the arrays.
    """
    if not 0 < limit <= 1:
        raise LowdataError(f"AUPRO's integration limit must be in (0, 1], got {limit}")
    fpr, pro = pro_curve(masks, heatmaps)
    if np.isnan(pro).any():
        return float("nan")
    return area_to(fpr, pro, limit) / limit
