"""The paper's numbers (Tables 1, 2, 3, 5, 6, 7, 8, 9) and the same tables computed from study results.

``data/paper_tables.csv`` is a copy of ``../shared/papers/low-data-augmentation-tables.csv`` (the
numbers transcribed from the paper; tidy: table, metric, group, method, aug_factor, n_train, value).

How the paper aggregates, checked on its own numbers (tests/test_paper.py): a group's value is the
plain mean of its categories' values, over all 15 MVTec categories for ``all`` (toothbrush
included; the paper leaves it out of the *curves* only), the 5 textures and the 10 objects.
Per category, ``auc`` at ``n_train`` is the mean AUROC over replicates at that N (``max``: the
category's full training set) and ``auc_percent_area`` is :func:`lowdata.metrics.auc_percent_area`
of its mean curve.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .errors import LowdataError
from .metrics import auc_percent_area
from .mvtec import MVTEC_CATEGORIES, OBJECTS, TEXTURES

GROUPS = {"all": MVTEC_CATEGORIES, "textures": TEXTURES, "objects": OBJECTS}
#: table number -> (metric, rows: "groups" or "categories")
TABLES = {1: ("auc", "groups"), 2: ("auc_percent_area", "groups"), 3: ("auc_percent_area", "groups"),
          5: ("auc", "categories"), 6: ("auc_percent_area", "categories"), 7: ("auc", "groups"),
          8: ("auc", "groups"), 9: ("auc", "groups")}


def paper_tables() -> pd.DataFrame:
    """Every number of the paper's Tables 1, 2, 3, 5, 6, 7, 8, 9 (``n_train`` is ``"max"``, ``"30"`` or ``"10"``)."""
    with resources.files("lowdata").joinpath("data/paper_tables.csv").open() as f:
        return pd.read_csv(f, dtype={"n_train": str, "group": str, "method": str, "metric": str})


def category_values(results: pd.DataFrame, metric: str, n_train: str, aug_factor: int) -> pd.DataFrame:
    """Per (category, method): ``auc`` at ``n_train`` (``"max"`` or a number) or ``auc_percent_area``,
    from study rows with that augmentation factor (augment-only rows are not used)."""
    rows = results[(results["aug_factor"] == aug_factor) & (~results["augment_only"].astype(bool))]
    out = []
    for (cat, method), g in rows.groupby(["category", "method"], sort=True):
        n_pool = int(g["n_pool"].max())
        curve = g.groupby("n_train")["auroc"].mean()
        if metric == "auc":
            n = n_pool if n_train == "max" else int(n_train)
            value = curve.get(n, np.nan)
        elif metric == "auc_percent_area":
            value = auc_percent_area(curve.index, curve.values, n_pool) if n_pool in curve.index and len(curve) > 1 \
                else np.nan
        else:
            raise LowdataError(f"unknown metric {metric!r}; known: auc, auc_percent_area")
        out.append({"category": cat, "method": method, "value": value})
    return pd.DataFrame(out, columns=["category", "method", "value"])


def group_means(per_category: pd.DataFrame) -> pd.DataFrame:
    """Per (group, method): the mean over the group's categories that have a value, and how many did."""
    out = []
    for group, members in GROUPS.items():
        sub = per_category[per_category["category"].isin(members)].dropna(subset=["value"])
        for method, g in sub.groupby("method", sort=True):
            out.append({"group": group, "method": method, "value": g["value"].mean(), "n_categories": len(g),
                        "of": len(members)})
    return pd.DataFrame(out, columns=["group", "method", "value", "n_categories", "of"])


def compare(number: int, results: pd.DataFrame) -> pd.DataFrame:
    """Table ``number`` with the paper's value, ours, their difference (ours - paper) and, for group
    rows, how many of the group's categories our value averages (a partial group is not the paper's)."""
    if number not in TABLES:
        raise LowdataError(f"the paper has no Table {number} of results; known: {', '.join(map(str, TABLES))}")
    metric, kind = TABLES[number]
    paper = paper_tables()
    paper = paper[paper["table"] == number]
    rows = []
    for (aug, n_train), p in paper.groupby(["aug_factor", "n_train"], sort=True):
        per_cat = category_values(results, metric, n_train, int(aug))
        if kind == "groups":
            ours = group_means(per_cat).rename(columns={"value": "ours"})
        else:
            ours = per_cat.rename(columns={"category": "group", "value": "ours"})
            ours["n_categories"], ours["of"] = ours["ours"].notna().astype(int), 1
        merged = p.rename(columns={"value": "paper"}).merge(ours, on=["group", "method"], how="left")
        rows.append(merged)
    df = pd.concat(rows, ignore_index=True)
    df["n_categories"] = df["n_categories"].fillna(0).astype(int)
    df["diff"] = df["ours"] - df["paper"]
    return df[["table", "metric", "group", "method", "aug_factor", "n_train", "paper", "ours", "diff", "n_categories"]]
