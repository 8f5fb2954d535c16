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
* Example (tests/metrics/test_metrics.py): ``N = 5, 10, 20`` with ``A = 0.6, 0.8, 1.0`` gives
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
pixel AUROC, each defect counts once whatever its size. Tests: ``tests/metrics/test_metrics.py`` (hand-computed
one- and two-region cases, perfect and inverted maps).

**The per-fit metrics** (:data:`METRICS`): every fit of a study gets one column per registered metric,
computed from what the fit gives: the test labels and the anomaly scores (``needs="scores"``), or the
ground-truth masks and the heatmaps (``needs="maps"``: only for detectors that give maps, on data with
masks; NaN elsewhere). A new metric is one function and one :func:`register_metric` line; a resumed study
computes it for the rows it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import LowdataError
from .image import auc_percent_area, auroc_by_type, image_auroc, image_average_precision, image_f1_max
from .pixel import PRO_LIMIT, area_to, aupro, pixel_auroc, pro_curve

__all__ = ["METRICS", "Metric", "PRO_LIMIT", "applies", "area_to", "auc_percent_area", "auroc_by_type", "aupro", "fit_metrics",
           "image_auroc", "image_average_precision", "image_f1_max", "metric_names", "pixel_auroc", "pro_curve",
           "register_metric"]


@dataclass(frozen=True)
class Metric:
    """A per-fit metric (:func:`register_metric`).

    Attributes
    ----------
    name : str
        The results table's column.
    fn : callable
        ``fn(labels, scores)`` for needs ``"scores"``; ``fn(masks, heatmaps)`` for needs ``"maps"``.
    needs : {'scores', 'maps'}
        What it is computed from.
    label : str
        How tables and figures name it.
    """

    name: str  # the results table's column
    fn: Callable  # fn(labels, scores) for needs "scores"; fn(masks, heatmaps) for needs "maps"
    needs: str  # "scores" or "maps"
    label: str


#: column -> metric, in the order of the results table
METRICS: dict[str, Metric] = {}


def register_metric(name: str, fn: Callable, *, needs: str = "scores", label: str | None = None) -> None:
    """Compute ``fn`` for every fit of a study, into the column ``name`` (see the module docstring).

    Parameters
    ----------
    name : str
        The results table's column.
    fn : callable
        ``fn(labels, scores)`` or ``fn(masks, heatmaps)``, returning a float.
    needs : {'scores', 'maps'}, default='scores'
        What ``fn`` takes: the test labels and anomaly scores, or the masks and heatmaps (detectors that give
        maps, on data with masks).
    label : str or None, default=None
        How tables and figures name it (``None``: ``name``).

    Raises
    ------
    lowdata.LowdataError
        If ``needs`` is not ``'scores'`` or ``'maps'``.
    """
    if needs not in ("scores", "maps"):
        raise LowdataError(f"register_metric({name!r}): needs must be 'scores' or 'maps', not {needs!r}")
    METRICS[name] = Metric(name, fn, needs, label or name)


register_metric("auroc", image_auroc, needs="scores", label="image AUROC")
register_metric("ap", image_average_precision, needs="scores", label="image average precision")
register_metric("f1_max", image_f1_max, needs="scores", label="image F1-max")
register_metric("pixel_auroc", pixel_auroc, needs="maps", label="pixel AUROC")
register_metric("aupro", aupro, needs="maps", label="AUPRO (FPR <= 0.3)")


def metric_names() -> list[str]:
    """Every registered metric's column.

    Returns
    -------
    list of str
        The columns, in the order of the results table.
    """
    return list(METRICS)


def applies(metric: Metric, gives_maps: bool, has_masks: bool) -> bool:
    """Whether a fit of a detector can have this metric (a maps metric needs maps and masks).

    Parameters
    ----------
    metric : Metric
        A registered metric.
    gives_maps : bool
        Whether the detector gives maps.
    has_masks : bool
        Whether the data have ground-truth masks.

    Returns
    -------
    bool
        True for a scores metric, or a maps metric with maps and masks.
    """
    return metric.needs == "scores" or (gives_maps and has_masks)


def fit_metrics(labels, scores, *, masks=None, heatmaps: Callable[[], np.ndarray] | None = None) -> dict[str, float]:
    """Every registered metric of one fit: ``scores`` against ``labels``; the maps metrics from ``masks``
    and ``heatmaps()`` (made once, only when a maps metric applies), else NaN.

    Parameters
    ----------
    labels : sequence of int
        The test images' labels (1 anomalous).
    scores : sequence of float
        Their anomaly scores.
    masks : ndarray of shape (n, h, w) or None, default=None
        Ground-truth masks (``None``: the maps metrics are NaN).
    heatmaps : callable or None, default=None
        ``heatmaps()`` returns the ``(n, h, w)`` heatmaps at the masks' resolution (``None``: the maps metrics
        are NaN).

    Returns
    -------
    dict of str to float
        Column -> value, for every registered metric.
    """
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
