"""Metrics of the study: image AUROC, average precision and F1-max, pixel AUROC and AUPRO, and the area under
the AUC-percent curve.

**Area under the AUC-percent curve** (paper section 4.3). For one category and one method, let
``N_max`` be the category's full training-set size and ``N_1 < ... < N_m = N_max`` the grid of
sample sizes, with ``A_i`` the AUC at ``N_i`` averaged over replicates. With ``x_i = N_i / N_max``
(the fraction of the full training set, 0 to 1), the area is the trapezoidal integral of ``A`` over
``[x_1, 1]`` divided by the width of that interval::

    area = sum_{i=1}^{m-1} (x_{i+1} - x_i) (A_i + A_{i+1}) / 2  /  (1 - x_1)

* The curve starts at the first grid point: nothing is extrapolated between 0 % and ``x_1``
  (the AUC of a model trained on no image is undefined), and dividing by ``1 - x_1`` keeps the
  result on the AUC scale: a method whose AUC is ``a`` at every size scores exactly ``a``, whatever
  the category's grid. This is what lets the paper average areas across categories of different sizes.
* With a single grid point (``N_1 = N_max``) the area is that point's AUC.
* Example (tests/test_metrics.py): ``N = 5, 10, 20`` with ``A = 0.6, 0.8, 1.0`` gives
  ``x = 0.25, 0.5, 1``; trapezoids ``0.25 * 0.7 + 0.5 * 0.9 = 0.625``; divided by ``0.75``: ``0.8333``.

**Pixel AUROC** (detectors that give maps, where ground-truth masks exist): every pixel of every test
image at the heatmap's resolution, masks resized to it with nearest-neighbour sampling; good images
count with all-zero masks.

**Image average precision** and **F1-max** (the anomalous class as positive): scikit-learn's
``average_precision_score``, and the best ``2PR / (P + R)`` over every threshold.

**AUPRO** (:func:`aupro`, MVTec AD's localization metric, Bergmann et al. 2021): the per-region-overlap
curve gives, for every threshold of the heatmaps, the mean over every connected ground-truth region
(8-connectivity, over every test image) of the fraction of the region flagged, against the false-positive
rate on normal pixels; AUPRO is its area up to a false-positive rate of 0.3, divided by 0.3. Unlike the
pixel AUROC, each defect counts once whatever its size. Tests: ``tests/test_metrics.py`` (hand-computed
one- and two-region cases, perfect and inverted maps).

**The per-fit metrics** (:data:`METRICS`): every fit of a study gets one column per registered metric,
computed from what the fit gives: the test labels and the anomaly scores (``needs="scores"``), or the
ground-truth masks and the heatmaps (``needs="maps"``: only for detectors that give maps, on data with
masks; NaN elsewhere). A new metric is one function and one :func:`register_metric` line; a resumed study
computes it for the rows it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .core.errors import LowdataError


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


def image_auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC of scores against labels (1 = anomalous); NaN (with no error) if one class is missing."""
    checked = _scores_checked(labels, scores)
    if checked is None:
        return float("nan")
    from sklearn.metrics import roc_auc_score  # lazy: 0.9 s to import, and `lowdata --help` need not pay it

    return float(roc_auc_score(*checked))


def auc_percent_area(n_train: Sequence[float], auc: Sequence[float], n_max: float | None = None) -> float:
    """Area under the AUC-percent curve (see the module docstring for the formula).

    ``n_train`` and ``auc`` are the grid (any order; repeated sizes are averaged, e.g. replicates);
    ``n_max`` defaults to the largest size given, and must be on the grid.
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


def pixel_auroc(masks: np.ndarray, heatmaps: np.ndarray) -> float:
    """ROC AUC over all pixels: ``masks`` and ``heatmaps`` both ``(n, h, w)`` at the same resolution."""
    masks = np.asarray(masks)
    heatmaps = np.asarray(heatmaps)
    if masks.shape != heatmaps.shape:
        raise LowdataError(f"masks {masks.shape} and heatmaps {heatmaps.shape} differ in shape")
    y = (masks > 0).ravel()
    if y.all() or not y.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # lazy: 0.9 s to import

    return float(roc_auc_score(y, heatmaps.ravel()))


def image_average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Average precision of the anomalous class (1 = anomalous): ``sum_k (R_k - R_{k-1}) P_k`` over the
    thresholds (scikit-learn's ``average_precision_score``, no interpolation); NaN if one class is missing."""
    checked = _scores_checked(labels, scores)
    if checked is None:
        return float("nan")
    from sklearn.metrics import average_precision_score  # lazy: 0.9 s to import

    return float(average_precision_score(*checked))


def image_f1_max(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The best F1 score of the anomalous class over every threshold of the scores (F1-max, as the few-shot
    papers report it): ``max 2PR / (P + R)``; NaN if one class is missing."""
    checked = _scores_checked(labels, scores)
    if checked is None:
        return float("nan")
    from sklearn.metrics import precision_recall_curve  # lazy: 0.9 s to import

    p, r, _ = precision_recall_curve(*checked)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f1.max())


#: AUPRO's integration limit: the false-positive rate on normal pixels up to which the PRO curve is integrated
PRO_LIMIT = 0.3


def pro_curve(masks: np.ndarray, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve (MVTec AD's definition, Bergmann et al. 2021): for every threshold of the
    heatmaps, the false-positive rate on normal pixels (those outside every ground-truth region) and the
    mean, over every connected ground-truth region of every image (8-connectivity), of the fraction of the
    region's pixels at or above the threshold. Points of equal scores are one point; the curve runs from
    (0, 0) to (1, 1). ``masks`` and ``heatmaps`` are ``(n, h, w)`` at the same resolution."""
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
    value at ``limit`` interpolated linearly between its neighbours."""
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
    masks hold no anomalous region (a category without defects' masks)."""
    if not 0 < limit <= 1:
        raise LowdataError(f"AUPRO's integration limit must be in (0, 1], got {limit}")
    fpr, pro = pro_curve(masks, heatmaps)
    if np.isnan(pro).any():
        return float("nan")
    return area_to(fpr, pro, limit) / limit


@dataclass(frozen=True)
class Metric:
    name: str  # the results table's column
    fn: Callable  # fn(labels, scores) for needs "scores"; fn(masks, heatmaps) for needs "maps"
    needs: str  # "scores" or "maps"
    label: str


#: column -> metric, in the order of the results table
METRICS: dict[str, Metric] = {}


def register_metric(name: str, fn: Callable, *, needs: str = "scores", label: str | None = None) -> None:
    """Compute ``fn`` for every fit of a study, into the column ``name`` (see the module docstring)."""
    if needs not in ("scores", "maps"):
        raise LowdataError(f"register_metric({name!r}): needs must be 'scores' or 'maps', not {needs!r}")
    METRICS[name] = Metric(name, fn, needs, label or name)


register_metric("auroc", image_auroc, needs="scores", label="image AUROC")
register_metric("ap", image_average_precision, needs="scores", label="image average precision")
register_metric("f1_max", image_f1_max, needs="scores", label="image F1-max")
register_metric("pixel_auroc", pixel_auroc, needs="maps", label="pixel AUROC")
register_metric("aupro", aupro, needs="maps", label="AUPRO (FPR <= 0.3)")


def metric_names() -> list[str]:
    return list(METRICS)


def applies(metric: Metric, gives_maps: bool, has_masks: bool) -> bool:
    """Whether a fit of a detector can have this metric (a maps metric needs maps and masks)."""
    return metric.needs == "scores" or (gives_maps and has_masks)


def fit_metrics(labels, scores, *, masks=None, heatmaps: Callable[[], np.ndarray] | None = None) -> dict[str, float]:
    """Every registered metric of one fit: ``scores`` against ``labels``; the maps metrics from ``masks``
    and ``heatmaps()`` (made once, only when a maps metric applies), else NaN."""
    out, heat = {}, None
    for m in METRICS.values():
        if m.needs == "scores":
            out[m.name] = m.fn(labels, scores)
        elif masks is not None and heatmaps is not None:
            heat = heatmaps() if heat is None else heat
            out[m.name] = m.fn(masks, heat)
        else:
            out[m.name] = float("nan")
    return out
