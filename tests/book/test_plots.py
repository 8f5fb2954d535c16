"""Figures from study rows: what is plotted is what the results say."""

import numpy as np
import pandas as pd
import pytest

from lowdata.core.errors import LowdataError
from lowdata.book.plots import auc_curves, curve_panels, heatmap_grid


def _results():
    rows = []
    for cat, sizes in (("bottle", (5, 10, 20)), ("carpet", (5, 10, 15, 20))):
        for n in sizes:
            for r in (0, 1):
                rows.append(dict(category=cat, method="maha-lw", n_train=n, replicate=r, aug_factor=0,
                                 augment_only=False, auroc=0.5 + n / 40 + (0.02 if r else 0) + (0.1 if cat == "carpet" else 0)))
    rows.append({**rows[0], "category": "toothbrush", "auroc": 0.0})
    return pd.DataFrame(rows)


def _data_lines(fig):
    return [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 1]


def test_one_category_panel_is_its_mean_curve():
    fig = auc_curves(_results(), ["bottle"])
    (line,) = _data_lines(fig)
    np.testing.assert_array_equal(line.get_xdata(), [5, 10, 20])
    np.testing.assert_allclose(line.get_ydata(), [0.5 + n / 40 + 0.01 for n in (5, 10, 20)])
    assert fig.axes[0].get_title() == "bottle"


def test_average_over_categories_uses_common_sizes_and_excludes():
    fig = auc_curves(_results(), exclude=("toothbrush",))
    (line,) = _data_lines(fig)
    np.testing.assert_array_equal(line.get_xdata(), [5, 10, 20])  # carpet's N=15 is not bottle's
    np.testing.assert_allclose(line.get_ydata(), [0.5 + n / 40 + 0.01 + 0.05 for n in (5, 10, 20)])
    assert "mean of 2 categories" in fig.axes[0].get_ylabel()


def test_curve_errors():
    with pytest.raises(LowdataError, match="no results for category screw"):
        auc_curves(_results(), ["screw"])
    with pytest.raises(LowdataError, match="no results to plot"):
        auc_curves(_results(), ["bottle"], factors=[10])


def test_heatmap_grid():
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 3
    heat = np.random.default_rng(0).random((3, 8, 8))
    masks = np.zeros((3, 8, 8), bool)
    masks[1, 2:5, 2:5] = True
    fig = heatmap_grid(imgs, heat, masks, titles=["a", "b", "c"])
    assert len(fig.axes) == 2 * 3 + 1  # images, overlays, colour bar
    with pytest.raises(LowdataError, match="as many heatmaps"):
        heatmap_grid(imgs, heat[:2])


def _sources():
    rows = []
    for src, cat, base in (("mvtec", "bottle", 0.8), ("mvtec", "carpet", 0.7), ("elpv", "mono", 0.6)):
        for m in ("knn", "padim"):
            for f, only in ((0, False), (10, False), (1, True)):
                for n in (5, 10):
                    rows.append(dict(source=src, category=cat, method=m, n_train=n, replicate=0, aug_factor=f,
                                     augment_only=only, auroc=base + n / 100 + f / 1000 + (0.05 if only else 0)))
    return pd.DataFrame(rows)


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1}


def test_curve_panels_by_source_never_average_data_sets_together():
    fig = curve_panels(_sources(), by="source", settings=[(0, False)], methods=["knn"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["ELPV (1 category)", "MVTec AD (2 categories)"]
    elpv, mvtec = [ax for ax in fig.axes if ax.get_title()]
    (line,) = [ln for ln in elpv.get_lines() if len(ln.get_xdata()) > 1]
    np.testing.assert_allclose(line.get_ydata(), [0.65, 0.7])
    (line,) = [ln for ln in mvtec.get_lines() if len(ln.get_xdata()) > 1]
    np.testing.assert_allclose(line.get_ydata(), [0.8, 0.85])  # mean of bottle and carpet


def test_curve_panels_by_method_with_one_line_per_setting():
    fig = curve_panels(_sources(), by="method", hue="setting", categories=["bottle"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["KNN", "PaDiM (Ledoit)"]
    ys = sorted(tuple(np.round(ln.get_ydata(), 4)) for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 1)
    assert ys == [(0.85, 0.9), (0.86, 0.91), (0.901, 0.951)]  # none, x10, x1 only
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["none", "x10", "x1 only"]


def test_curve_panels_by_group_and_errors():
    fig = curve_panels(_sources(), by="group", settings=[(0, False)])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["ELPV (1 category)", "objects (1 category)",
                                                                      "textures (1 category)"]
    with pytest.raises(LowdataError, match="by must be"):
        curve_panels(_sources(), by="colour")
    with pytest.raises(LowdataError, match="no results to plot"):
        curve_panels(_sources(), settings=[(20, False)])
