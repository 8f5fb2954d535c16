"""Figures of the study from its results table (seaborn), and PaDiM heatmaps.

* :func:`auc_curves`: AUROC against the number of training images, one line per method (and per
  augmentation factor), mean over replicates with a 95 % interval band: one category's panel of the
  paper's Figure 8, or, averaged over categories, Figures 3 to 7 (pass ``exclude=("toothbrush",)``
  as the paper does for its curves). Averaging over categories uses only the sizes every included
  category has, so a mean never mixes different sets of categories.
* :func:`heatmap_grid`: test images with their PaDiM heatmaps (and ground-truth contours), as Figure 2.

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot state), for notebooks and files alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .detectors import METHOD_LABELS
from .errors import LowdataError


def _curve_rows(results: pd.DataFrame, categories: Sequence[str] | None, exclude: Sequence[str],
                factors: Sequence[int] | None, augment_only: bool) -> pd.DataFrame:
    df = results[results["augment_only"].astype(bool) == augment_only]
    if categories is not None:
        missing = sorted(set(categories) - set(df["category"]))
        if missing:
            raise LowdataError(f"no results for categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
        df = df[df["category"].isin(categories)]
    df = df[~df["category"].isin(exclude)]
    if factors is not None:
        df = df[df["aug_factor"].isin(factors)]
    if df.empty:
        raise LowdataError("no results to plot for this selection")
    return df


def auc_curves(results: pd.DataFrame, categories: Sequence[str] | None = None, *, exclude: Sequence[str] = (),
               factors: Sequence[int] | None = None, augment_only: bool = False, title: str | None = None,
               ax=None):
    """AUROC against N: one line per (method, augmentation factor); returns the Figure."""
    import seaborn as sns
    from matplotlib.figure import Figure

    df = _curve_rows(results, categories, exclude, factors, augment_only)
    cats = sorted(df["category"].unique())
    if len(cats) > 1:  # per category, mean over replicates; then the sizes that every category has
        per_cat = df.groupby(["category", "method", "aug_factor", "n_train"], as_index=False)["auroc"].mean()
        common = set.intersection(*(set(g["n_train"]) for _, g in per_cat.groupby("category")))
        df = per_cat[per_cat["n_train"].isin(common)]
    df = df.assign(method=df["method"].map(lambda m: METHOD_LABELS.get(m, m)),
                   augmentation=df["aug_factor"].map(lambda f: f"x{f}" if f else "none"))
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = fig.subplots()
    multi_aug = df["augmentation"].nunique() > 1
    sns.lineplot(data=df, x="n_train", y="auroc", hue="method", style="augmentation" if multi_aug else None,
                 errorbar=("ci", 95), marker="o", markersize=3, ax=ax)
    ax.set_xlabel("training images N" + (" (original, before augmentation)" if multi_aug else ""))
    ax.set_ylabel("image AUROC" + (f" (mean of {len(cats)} categories)" if len(cats) > 1 else ""))
    ax.set_title(title or (cats[0] if len(cats) == 1 else f"{len(cats)} categories"))
    ax.grid(alpha=0.3)
    return fig if fig is not None else ax.figure


def heatmap_grid(images: Sequence[np.ndarray], heatmaps: np.ndarray, masks: np.ndarray | None = None, *,
                 titles: Sequence[str] | None = None, vmax: float | None = None):
    """Row 1: the images; row 2: their heatmaps over them (one colour scale), with mask contours."""
    from matplotlib.figure import Figure

    n = len(images)
    if n == 0 or len(heatmaps) != n or (masks is not None and len(masks) != n):
        raise LowdataError(f"need as many heatmaps and masks as images: {n}, {len(heatmaps)}, "
                           f"{None if masks is None else len(masks)}")
    vmax = float(np.max(heatmaps)) if vmax is None else vmax
    fig = Figure(figsize=(2.2 * n, 4.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[1, i].imshow(images[i])
        im = axes[1, i].imshow(heatmaps[i], cmap="jet", alpha=0.5, vmin=0, vmax=vmax)
        if masks is not None and masks[i].any():
            axes[1, i].contour(masks[i], levels=[0.5], colors="white", linewidths=0.8)
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=8)
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="Mahalanobis distance")
    return fig
