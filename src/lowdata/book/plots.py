"""Figures of the study from its results table (seaborn), and PaDiM heatmaps.

* :func:`curve_panels`: AUROC against the number of training images, averaged over replicates and
  then over categories, in panels by data set, group, method or category: the paper's Figures 3
  to 8 (pass ``exclude=("toothbrush",)`` as the paper does for its curves). Averaging over
  categories uses only the sizes every category of the panel has, so a mean never mixes different
  sets of categories; the band is a 95 % interval over categories (over replicates for one category).
* :func:`auc_curves`: one panel, one line per method: a category's page.
* :func:`heatmap_grid`: test images with their PaDiM heatmaps (and ground-truth contours), as Figure 2.

(The overlay that ``lowdata score`` writes for one scored image is the product's: :mod:`lowdata.inspection.overlays`.)

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot state), for notebooks and files alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
import pandas as pd

from ..core.errors import LowdataError
from ..data.mvtec import OBJECTS, TEXTURES
from ..data.sources import source_label
from ..detectors.registry import method_label, method_names, method_order


#: the titles of image grids, in points: a 5-image figure (11 in wide) is shown at about 0.6 times its size (about 9 pt)
TITLE_SIZE = 14


def _fit_title(text: str, width: int = 14) -> str:
    """A long image title on two lines (``broken_large`` above ``(123)``): neighbours never overlap."""
    return text.replace(" (", "\n(", 1) if len(text) > width else text


def setting_label(factor: int, augment_only: bool) -> str:
    """``none``, ``x10`` (10 copies added to each image) or ``x1 only`` (copies without the originals)."""
    return f"x{factor} only" if augment_only else (f"x{factor}" if factor else "none")


def category_names(df: pd.DataFrame) -> pd.Series:
    """How tables and panels name each row's category: its name, or, where the rows hold several data sets,
    ``BTAD 01``, ``MVTec AD bottle`` (two data sets may name a category alike)."""
    if "source" not in df.columns or df["source"].nunique() <= 1:
        return df["category"]
    return pd.Series([f"{source_label(s)} {c}" for s, c in zip(df["source"], df["category"])], index=df.index,
                     dtype=object)


def group_of(source: str, category: str) -> str:
    """``textures`` / ``objects`` for MVTec AD's categories, else the data set's name."""
    if source == "mvtec" and category in TEXTURES:
        return "textures"
    if source == "mvtec" and category in OBJECTS:
        return "objects"
    return source_label(source)


def _select(results: pd.DataFrame, categories, exclude, settings, methods) -> pd.DataFrame:
    df = results if "source" in results else results.assign(source="mvtec")
    if categories is not None:
        missing = sorted(set(categories) - set(df["category"]))
        if missing:
            raise LowdataError(f"no results for categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
        df = df[df["category"].isin(categories)]
    df = df[~df["category"].isin(exclude)]
    only = df["augment_only"].astype(bool)
    if settings is not None:
        keep = np.zeros(len(df), bool)
        for f, o in settings:
            keep |= (df["aug_factor"] == f).to_numpy() & (only == o).to_numpy()
        df = df[keep]
    if methods is not None:
        df = df[df["method"].isin(methods)]
    if df.empty:
        raise LowdataError("no results to plot for this selection")
    return df.assign(setting=[setting_label(f, o) for f, o in zip(df["aug_factor"], df["augment_only"].astype(bool))])


def n_ticks(sizes, ratio: float = 1.4) -> list[int]:
    """The sizes labelled on a log N axis: the smallest, then each one at least ``ratio`` times the last
    labelled, and the largest (the one before it dropped when too close)."""
    sizes = sorted({int(n) for n in sizes})
    if len(sizes) <= 2:
        return sizes
    ticks = [sizes[0]]
    for n in sizes[1:-1]:
        if n >= ratio * ticks[-1]:
            ticks.append(n)
    if len(ticks) > 1 and sizes[-1] < ratio * ticks[-1]:
        ticks.pop()
    return ticks + [sizes[-1]]


def log_n_axis(ax, sizes) -> None:
    """N on a log scale (the low-data end, 1 to 10 images, gets as much room as 10 to 100), ticks at the sizes
    run (:func:`n_ticks`), written as plain numbers."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    sizes = [int(n) for n in pd.unique(pd.Series(sizes)) if n > 0]
    if not sizes:
        return
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(n_ticks(sizes)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    lo, hi = min(sizes), max(sizes)
    if lo < hi:
        ax.set_xlim(lo / 1.15, hi * 1.15)


def caption(df: pd.DataFrame, panels: Sequence[pd.DataFrame] | None = None) -> str:
    """What a figure of AUROC against N averages: replicates (how many, fewer at the full training set),
    then categories (how many, at the sizes they all have), and what the band is."""
    keys = ["category", "method", "aug_factor", "augment_only", "n_train"]
    if "replicate" not in df:
        return "Each point: one fit."
    full = (df["n_train"] == df["n_pool"]) if "n_pool" in df else pd.Series(False, index=df.index)
    below = df[~full] if (~full).any() else df
    most = int(below.groupby(keys)["replicate"].nunique().max())
    text = f"Each point: the mean image AUROC over {most} replicate{'s' if most != 1 else ''} (seeded training subsets)"
    if full.any() and (~full).any():
        at_full = int(df[full].groupby(keys)["replicate"].nunique().max())
        if at_full != most:
            text += f", {at_full} at a category's full training set"
    panels = [df] if not panels else panels
    cats = max(p["category"].nunique() for p in panels)
    if cats > 1:
        where = "each panel's categories (its title says how many)" if len(panels) > 1 else f"the {cats} categories"
        text += f"; then the mean over {where}, at the N they all ran; band: 95 % bootstrap interval over categories"
    else:
        text += "; band: 95 % bootstrap interval over replicates"
    return text + "."


def add_caption(fig, text: str) -> None:
    """``text`` under the figure, wrapped to its width (part of the image: it travels with it)."""
    import textwrap

    fig.supxlabel(textwrap.fill(text, int(fig.get_figwidth() * 15)), fontsize=8, color="0.25")


def _panel(ax, df: pd.DataFrame, hue: str, title: str | None, legend: bool) -> None:
    import seaborn as sns  # lazy: 1.6 s to import (measured), and only figures need it

    cats = sorted(df["category"].unique())
    if len(cats) > 1:  # per category, mean over replicates; then the sizes that every category has
        per_cat = df.groupby(["category", "method", "setting", "n_train"], as_index=False)["auroc"].mean()
        common = set.intersection(*(set(g["n_train"]) for _, g in per_cat.groupby("category")))
        df = per_cat[per_cat["n_train"].isin(common)]
    order = {s: (s != "none", "only" in s, int(s[1:].split()[0]) if s != "none" else 0) for s in df["setting"].unique()}
    df = df.assign(method=df["method"].map(method_label))
    style = "setting" if hue == "method" else "method"
    multi = df[style].nunique() > 1
    hue_order = sorted(df[hue].unique(), key=lambda v: order.get(v, v)) if hue == "setting" else \
        [method_label(m) for m in method_names() if method_label(m) in set(df["method"])]
    style_order = (sorted(df[style].unique(), key=lambda v: order.get(v, v)) if style == "setting" else None) \
        if multi else None
    sns.lineplot(data=df, x="n_train", y="auroc", hue=hue, hue_order=hue_order, style=style if multi else None,
                 style_order=style_order, errorbar=("ci", 95), marker="o", markersize=3, ax=ax, legend=legend)
    if legend and ax.get_legend() is not None:  # beside the axes, never over the curves
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title_fontsize=8, frameon=False)
    log_n_axis(ax, df["n_train"])
    ax.set_xlabel("training images N, log scale" + (" (original, before augmentation)" if "setting" in (hue, style)
                                                      and df["setting"].nunique() > 1 else ""))
    ax.set_ylabel("image AUROC" + (f" (mean of {len(cats)} categories)" if len(cats) > 1 else ""))
    ax.set_title(title or (cats[0] if len(cats) == 1 else f"{len(cats)} categories"), fontsize=10)
    ax.grid(alpha=0.3)


def curve_panels(results: pd.DataFrame, *, by: str | None = None, settings: Sequence[tuple[int, bool]] | None = None,
                 methods: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), hue: str = "method", ncols: int = 3, panel_size=(4.2, 3.2)):
    """AUROC against N in one panel per value of ``by`` (``None``: one panel; ``"source"``, ``"group"``
    (textures / objects / ELPV), ``"method"`` or ``"category"``), each line the mean over the panel's
    categories (at the sizes they all have) with a 95 % band; lines by ``hue`` (``"method"`` or
    ``"setting"``: the augmentation, ``none`` / ``x10`` / ``x1 only``) and dashes by the other.
    ``settings`` picks (factor, augment_only) pairs. Returns the Figure (one shared legend)."""
    if hue not in ("method", "setting"):
        raise LowdataError(f"hue must be 'method' or 'setting', not {hue!r}")
    df = _select(results, categories, exclude, settings, methods)
    if by is None:
        panels = [(None, df)]
    elif by in ("source", "group", "method", "category"):
        key = df["source"].map(source_label) if by == "source" else \
            pd.Series([group_of(s, c) for s, c in zip(df["source"], df["category"])], index=df.index) if by == "group" \
            else category_names(df) if by == "category" else df[by]
        names = sorted(key.unique(), key=lambda v: (method_order(v) if by == "method" else 0, v))
        panels = []
        for v in names:
            sub = df[key == v]
            n = sub["category"].nunique()
            title = method_label(v) if by == "method" else v if by == "category" else \
                f"{v} ({n} categor{'y' if n == 1 else 'ies'})"
            panels.append((title, sub))
    else:
        raise LowdataError(f"by must be None, 'source', 'group', 'method' or 'category', not {by!r}")
    cols = min(ncols, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(panel_size[0] * cols + 1.8, panel_size[1] * rows),  # + the legend beside
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    for i, (title, sub) in enumerate(panels):
        _panel(axes[i], sub, hue, title, legend=(i == 0))
        if i % cols:
            axes[i].set_ylabel("")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if len(panels) > 1 and axes[0].get_legend() is not None:
        handles, labels = axes[0].get_legend_handles_labels()
        axes[0].get_legend().remove()
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    add_caption(fig, caption(df, [sub for _, sub in panels]))
    return fig


def auc_curves(results: pd.DataFrame, categories: Sequence[str] | None = None, *, exclude: Sequence[str] = (),
               factors: Sequence[int] | None = None, augment_only: bool = False, title: str | None = None,
               ax=None):
    """AUROC against N in one panel: one line per method (dashes per augmentation factor), the mean
    over replicates, or over categories at their common sizes; returns the Figure."""
    df = _select(results, categories, exclude, None, None)
    df = df[df["augment_only"].astype(bool) == augment_only]
    if factors is not None:
        df = df[df["aug_factor"].isin(factors)]
    if df.empty:
        raise LowdataError("no results to plot for this selection")
    fig = None
    if ax is None:
        fig = Figure(figsize=(7.6, 4.0), layout="constrained")
        ax = fig.subplots()
    _panel(ax, df, "method", title, legend=True)
    if fig is not None:
        add_caption(fig, caption(df))
    return fig if fig is not None else ax.figure


def heatmap_grid(images: Sequence[np.ndarray], heatmaps: np.ndarray, masks: np.ndarray | None = None, *,
                 titles: Sequence[str] | None = None, vmax: float | None = None):
    """Row 1: the images; row 2: their heatmaps over them (one colour scale), with mask contours."""
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
            axes[0, i].set_title(_fit_title(titles[i]), fontsize=TITLE_SIZE)
        for ax in axes[:, i]:
            ax.set_axis_off()
    bar = fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8)
    bar.set_label("Mahalanobis distance", fontsize=TITLE_SIZE - 2)
    return fig


def heatmap_rows(images: Sequence[np.ndarray], rows: Sequence[tuple[str, np.ndarray, Sequence[float]]],
                 masks: np.ndarray | None = None, *, titles: Sequence[str] | None = None):
    """Row 1: the images; then one row per detector (``(label, heatmaps, scores)``) of heatmaps over them, each
    row on its own colour scale (its own units: Mahalanobis or euclidean distances), with mask contours."""
    n = len(images)
    if n == 0 or any(len(h) != n for _, h, _ in rows) or (masks is not None and len(masks) != n):
        raise LowdataError(f"need as many heatmaps and masks as images: {n}, {[len(h) for _, h, _ in rows]}, "
                           f"{None if masks is None else len(masks)}")
    fig = Figure(figsize=(2.2 * n + 1.2, 2.3 * (len(rows) + 1)), layout="constrained")
    axes = fig.subplots(len(rows) + 1, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i])
        if titles is not None:
            axes[0, i].set_title(_fit_title(titles[i]), fontsize=TITLE_SIZE)
    for r, (label, heat, scores) in enumerate(rows, start=1):
        vmax = float(np.max(heat))
        for i in range(n):
            axes[r, i].imshow(images[i])
            im = axes[r, i].imshow(heat[i], cmap="jet", alpha=0.5, vmin=0, vmax=vmax)
            if masks is not None and masks[i].any():
                axes[r, i].contour(masks[i], levels=[0.5], colors="white", linewidths=0.8)
            axes[r, i].set_title(f"{label}:\n{scores[i]:.3g}", fontsize=TITLE_SIZE - 2)
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.8).set_label(label, fontsize=TITLE_SIZE - 2)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig


def pollution_curves(df: pd.DataFrame, *, factors: Sequence[int] = (0,), refinements: Sequence[str] | None = None,
                     hue: str = "refinement", ncols: int = 3, panel_size=(4.0, 3.2)):
    """AUROC against the pollution rate, one panel per method, one line per refinement (``hue``
    ``"refinement"``) or per augmentation factor (``hue`` ``"augmentation"``), mean over replicates
    (and categories) with a 95 % band; the ablation rows are left out."""
    import seaborn as sns  # lazy: 1.6 s to import (measured), and only figures need it
    d = df[(df["ablation"] == "") & df["aug_factor"].isin(factors)]
    if refinements is not None:
        d = d[d["refinement"].isin(refinements)]
    if d.empty:
        raise LowdataError("no pollution results to plot for this selection")
    d = d.assign(rate_pct=d["rate"] * 100, augmentation=d["aug_factor"].map(lambda f: f"x{f}" if f else "none"))
    methods = [m for m in method_names() if m in set(d["method"])]
    cols = min(ncols, len(methods))
    rows = -(-len(methods) // cols)
    fig = Figure(figsize=(panel_size[0] * cols + 1.8, panel_size[1] * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    order = [r for r in ("oracle", "none", "sroc", "ensemble") if r in set(d["refinement"])]
    style = "augmentation" if hue == "refinement" and d["augmentation"].nunique() > 1 else \
        ("refinement" if hue == "augmentation" and d["refinement"].nunique() > 1 else None)
    for i, m in enumerate(methods):
        sns.lineplot(data=d[d["method"] == m], x="rate_pct", y="auroc", hue=hue,
                     hue_order=order if hue == "refinement" else None, style=style, marker="o", markersize=4,
                     errorbar=("ci", 95), ax=axes[i], legend=(i == 0))
        axes[i].set_title(method_label(m), fontsize=10)
        axes[i].set_xlabel("pollution rate (% of training images defective)")
        axes[i].set_ylabel("image AUROC" if i % cols == 0 else "")
        axes[i].grid(alpha=0.3)
    for ax in axes[len(methods):]:
        ax.set_axis_off()
    if axes[0].get_legend() is not None:
        handles, labels = axes[0].get_legend_handles_labels()
        axes[0].get_legend().remove()
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    reps = int(d.groupby(["category", "method", "rate", "aug_factor", "refinement"])["replicate"].nunique().max())
    cats = d["category"].nunique()
    add_caption(fig, f"Each point: the mean image AUROC over {reps} replicate{'s' if reps != 1 else ''} (seeded draws of "
                     f"the polluted training set)" + (f" and {cats} categories" if cats > 1 else "")
                + f"; band: 95 % bootstrap interval over {'replicates and categories' if cats > 1 else 'replicates'}.")
    return fig
