"""Metrics of the study: image AUROC, pixel AUROC, and the area under the AUC-percent curve.

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


def image_auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC of scores against labels (1 = anomalous); NaN (with no error) if one class is missing."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) != len(scores):
        raise LowdataError(f"{len(labels)} labels for {len(scores)} scores")
    if not np.all(np.isfinite(scores)):
        raise LowdataError(f"{int((~np.isfinite(scores)).sum())} scores are not finite")
    if len(np.unique(labels)) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score  # lazy: 0.9 s to import, and `lowdata --help` need not pay it

    return float(roc_auc_score(labels, scores))


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
register_metric("pixel_auroc", pixel_auroc, needs="maps", label="pixel AUROC")


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
