"""The paper's numbers (Tables 1, 2, 3, 5, 6, 7, 8, 9) and the same tables computed from study results.

``paper_tables.csv`` (beside this module) is a copy of ``../shared/papers/low-data-augmentation-tables.csv`` (the
numbers transcribed from the paper; tidy: table, metric, group, method, aug_factor, n_train, value).

How the paper aggregates, checked on its own numbers (tests/book/test_paper.py): a group's value is the
plain mean of its categories' values, over all 15 MVTec categories for ``all`` (toothbrush
included; the paper leaves it out of the *curves* only), the 5 textures and the 10 objects.
Per category, ``auc`` at ``n_train`` is the mean AUROC over replicates at that N (``max``: the
category's full training set) and ``auc_percent_area`` is :func:`lowdata.metrics.auc_percent_area`
of its mean curve.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd

from ..core.errors import LowdataError
from ..data.mvtec import MVTEC_CATEGORIES, OBJECTS, TEXTURES
from ..data.sources import source_label
from ..detectors.registry import method_label, method_order
from ..metrics import auc_percent_area

GROUPS = {"all": MVTEC_CATEGORIES, "textures": TEXTURES, "objects": OBJECTS}
#: table number -> (metric, rows: "groups" or "categories")
TABLES = {1: ("auc", "groups"), 2: ("auc_percent_area", "groups"), 3: ("auc_percent_area", "groups"),
          5: ("auc", "categories"), 6: ("auc_percent_area", "categories"), 7: ("auc", "groups"),
          8: ("auc", "groups"), 9: ("auc", "groups")}


@functools.lru_cache(maxsize=1)
def _read_paper_tables() -> pd.DataFrame:
    with resources.files("lowdata.book").joinpath("paper_tables.csv").open() as f:
        return pd.read_csv(f, dtype={"n_train": str, "group": str, "method": str, "metric": str})


def paper_tables() -> pd.DataFrame:
    """Every number of the paper's Tables 1, 2, 3, 5, 6, 7, 8, 9 (``n_train`` is ``"max"``, ``"30"`` or ``"10"``);
    read once, a copy each call."""
    return _read_paper_tables().copy()


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
    """Per (group, method): the mean over the group's MVTec categories that have a value, and how many did."""
    out = []
    for group, members in GROUPS.items():
        sub = per_category[per_category["category"].isin(members)].dropna(subset=["value"])
        for method, g in sub.groupby("method", sort=True):
            out.append({"group": group, "method": method, "value": g["value"].mean(), "n_categories": len(g),
                        "of": len(members)})
    return pd.DataFrame(out, columns=["group", "method", "value", "n_categories", "of"])


def _sources(results: pd.DataFrame) -> pd.DataFrame:
    return results if "source" in results else results.assign(source="mvtec")


def _our_groups(results: pd.DataFrame, metric: str, n_train: str, aug: int) -> pd.DataFrame:
    """Our group values, one set per data source: MVTec categories by the paper's groups (``all`` also
    counts MVTec-layout categories of other names); other sources (ELPV) only as ``all``."""
    out = []
    for source, rows in _sources(results).groupby("source", sort=True):
        per_cat = category_values(rows, metric, n_train, aug).dropna(subset=["value"])
        groups = dict(GROUPS, all=sorted(set(MVTEC_CATEGORIES) | set(per_cat["category"]))) if source == "mvtec" \
            else {"all": sorted(per_cat["category"].unique())}
        for group, members in groups.items():
            sub = per_cat[per_cat["category"].isin(members)]
            for method, g in sub.groupby("method", sort=True):
                out.append({"data": source, "group": group, "method": method, "ours": g["value"].mean(),
                            "n_categories": len(g), "of": len(GROUPS[group]) if source == "mvtec" else len(g),
                            "categories": ", ".join(sorted(g["category"]))})
    return pd.DataFrame(out, columns=["data", "group", "method", "ours", "n_categories", "of", "categories"])


#: group table -> the paper's per-category table with the same metric and setting (Table 5: AUC at the full
#: training set without augmentation; Table 6: its % area). Tables 3, 7 (augmented), 8 and 9 (N = 30, 10)
#: have group values only in the paper.
PER_CATEGORY = {("auc", 0, "max"): 5, ("auc_percent_area", 0, "max"): 6}


def paper_same_categories(metric: str, aug_factor: int, n_train: str, categories: list[str],
                          method: str) -> float:
    """The paper's mean over ``categories`` (MVTec names) for ``method``, from its per-category Table 5 or 6
    (:data:`PER_CATEGORY`); NaN where the paper gives no per-category values for this setting, or lacks one
    of the categories."""
    table = PER_CATEGORY.get((metric, int(aug_factor), str(n_train)))
    if table is None or not categories:
        return np.nan
    t = paper_tables()
    values = t[(t["table"] == table) & (t["method"] == method)].set_index("group")["value"]
    if not set(categories) <= set(values.index):
        return np.nan
    return float(values.loc[list(categories)].mean())


def compare(number: int, results: pd.DataFrame) -> pd.DataFrame:
    """Table ``number``: the paper's value beside ours and their difference (ours - paper), one row per
    (group or category, method, augmentation factor) and data source of ours.

    Like with like: on a group row, ``paper`` is the paper's mean over the *same* categories as ours
    (:func:`paper_same_categories`, from its per-category tables), and ``diff`` is taken against it;
    ``paper_group`` keeps the paper's own group value (all 15, the 5 textures, the 10 objects). Where the
    paper gives group values only (Tables 3, 7 with augmentation, 8, 9), ``paper`` is that group value
    when ours covers the whole group, else empty (``basis`` says which). Group rows say how many of the
    group's categories our value averages (``n_categories`` of ``of``). Ours from another data set than
    MVTec AD (``data`` is ``elpv``) is put beside the paper's ``all`` row, for reading only: the same
    protocol on other images, so no same-category value and no difference. Categories the paper does
    not have (ELPV's, a user's own) get rows with no paper value."""
    if number not in TABLES:
        raise LowdataError(f"the paper has no Table {number} of results; known: {', '.join(map(str, TABLES))}")
    metric, kind = TABLES[number]
    results = _sources(results)
    paper = paper_tables()
    paper = paper[paper["table"] == number].rename(columns={"value": "paper"})
    parts = []
    for (aug, n_train), p in paper.groupby(["aug_factor", "n_train"], sort=True):
        if kind == "groups":
            ours = _our_groups(results, metric, n_train, int(aug))
            merged = p.merge(ours, on=["group", "method"], how="outer" if len(ours) else "left")
        else:
            ours = []
            for source, rows in results.groupby("source", sort=True):
                v = category_values(rows, metric, n_train, int(aug)).rename(columns={"category": "group",
                                                                                     "value": "ours"})
                ours.append(v.assign(data=source, n_categories=v["ours"].notna().astype(int), of=1,
                                     categories=v["group"]))
            ours = pd.concat(ours, ignore_index=True) if ours else pd.DataFrame(
                columns=["group", "method", "ours", "data", "n_categories", "of", "categories"])
            # only MVTec AD's categories are the paper's: another data set's category of the same name is not
            mine = ours["data"] == "mvtec"
            merged = p.merge(ours[mine], on=["group", "method"], how="outer")
            if (~mine).any():
                merged = pd.concat([merged, ours[~mine]], ignore_index=True)
        merged[["table", "metric", "aug_factor", "n_train"]] = [number, metric, int(aug), n_train]
        parts.append(merged)
    df = pd.concat(parts, ignore_index=True)
    df["n_categories"] = df["n_categories"].fillna(0).astype(int)
    df["of"] = df["of"].fillna(0).astype(int)
    df["aug_factor"] = df["aug_factor"].astype(int)
    df["paper_group"] = df["paper"]
    if kind == "groups":
        same, basis = [], []
        for _, r in df.iterrows():
            cats = [c for c in str(r["categories"]).split(", ") if c] if isinstance(r["categories"], str) else []
            if r["data"] != "mvtec" or pd.isna(r["ours"]):
                same.append(np.nan)
                basis.append("" if pd.isna(r["ours"]) else "other data: no paper value to compare")
                continue
            v = paper_same_categories(metric, r["aug_factor"], r["n_train"], cats, r["method"])
            if not np.isnan(v):
                same.append(v)
                basis.append(f"Table {PER_CATEGORY[(metric, int(r['aug_factor']), str(r['n_train']))]}, "
                             f"the same {len(cats)} categories")
            elif set(cats) == set(GROUPS[r["group"]]):  # exactly the paper's group (no category of ours beside)
                same.append(r["paper_group"])
                basis.append("the whole group")
            else:
                same.append(np.nan)
                basis.append("the paper gives this group's value only"
                             if (metric, int(r["aug_factor"]), str(r["n_train"])) not in PER_CATEGORY
                             else "some of these categories are not the paper's")
        df["paper"], df["basis"] = same, basis
    else:
        df["basis"] = np.where(df["paper"].notna() & df["ours"].notna(), "the same category", "")
    df["diff"] = df["ours"] - df["paper"]
    return df[["table", "metric", "data", "group", "method", "aug_factor", "n_train", "paper", "ours", "diff",
               "paper_group", "basis", "n_categories", "of", "categories"]]


#: the column names of a group table's paper values: over our categories, and the paper's whole group
SAME, WHOLE = "paper, same categories", "paper, whole group"


def table_view(number: int, results: pd.DataFrame, digits: int = 3, na_rep: str | None = "—") -> pd.DataFrame:
    """Table ``number`` laid out for reading: rows (group or category, our data, method), columns
    ([augmentation factor,] paper / ours / diff; on group tables :data:`SAME`, ours, diff and
    :data:`WHOLE`, see :func:`compare`). Our data reads e.g. ``MVTec AD (1 of 15)``: how many
    of the group's categories our value averages. Paper rows without a value of ours are kept, with
    ``na_rep`` (``None``: NaN, and the table stays numeric) where a value is missing."""
    df = compare(number, results)
    has_ours = df["ours"].notna()
    # a paper row with ours from some source: drop its ours-less duplicate
    keyed = df[has_ours].groupby(["group", "method", "aug_factor"]).size()
    df = df[has_ours | ~df.set_index(["group", "method", "aug_factor"]).index.isin(keyed.index)]

    def label(r):
        if pd.isna(r["data"]):
            return "(none)"
        name = source_label(r["data"])
        if TABLES[number][1] == "categories":
            return name
        return f"{name} ({r['n_categories']} of {r['of']})" if r["data"] == "mvtec" else f"{name} ({r['categories']})"

    order = {g: i for i, g in enumerate(["all", "textures", "objects", *MVTEC_CATEGORIES])}
    df = df.assign(ours_data=[label(r) for _, r in df.iterrows()],
                   _g=df["group"].map(lambda g: order.get(g, len(order))),
                   _m=df["method"].map(method_order))
    df = df.sort_values(["_g", "group", "ours_data", "_m", "aug_factor"])
    df["method"] = df["method"].map(method_label)
    index = ["group", "ours_data", "method"]
    groups = TABLES[number][1] == "groups"
    values = ["paper", "ours", "diff", "paper_group"] if groups else ["paper", "ours", "diff"]
    if df["aug_factor"].nunique() > 1:
        wide = df.pivot_table(index=index, columns="aug_factor", values=values, aggfunc="first",
                              dropna=False, sort=False)
        wide = wide.reorder_levels([1, 0], axis=1)
        keys = sorted(set(wide.columns.get_level_values(0)))
        wide = wide.reindex(columns=pd.MultiIndex.from_tuples([(k, v) for k in keys for v in values]))
        wide.columns.names = ["augmentation factor", ""]
    else:
        wide = df.set_index(index)[values]
    rows = list(dict.fromkeys(df[index].itertuples(index=False, name=None)))
    wide = wide.reindex(rows).round(digits)
    wide.index.names = ["", "ours on", "method"]
    if na_rep is not None:  # fixed decimals, signed differences
        wide = wide.astype(object)
        for col in wide.columns:
            fmt = f"{{:+.{digits}f}}" if (col[-1] if isinstance(col, tuple) else col) == "diff" else f"{{:.{digits}f}}"
            wide[col] = [na_rep if pd.isna(v) else fmt.format(v) for v in wide[col]]
    if groups:  # like with like: the paper over our categories beside ours, its whole group apart
        names = {"paper": SAME, "paper_group": WHOLE}
        wide = wide.rename(columns=names, level=-1 if isinstance(wide.columns, pd.MultiIndex) else None)
    return wide


def auc_at(results: pd.DataFrame, sizes=(10, 30, "max"), digits: int = 3, category: str | None = None):
    """Mean AUROC over replicates at the given sizes (``"max"``: the full training set): rows
    (category, method, augmentation setting), columns N; sizes a category did not run are empty. With
    ``category``: that category's rows, or, when it ran none of the sizes, a Markdown line saying which it ran."""
    out = []
    for (cat, method, f, only), g in results.groupby(["category", "method", "aug_factor", "augment_only"], sort=True):
        n_pool = int(g["n_pool"].max())
        curve = g.groupby("n_train")["auroc"].mean()
        setting = f"x{f} only" if only else (f"x{f}" if f else "none")
        for n in sizes:
            key = n_pool if n == "max" else int(n)
            if key in curve.index:
                out.append({"category": cat, "method": method_label(method), "setting": setting,
                            "N": "max" if n == "max" else str(n), "auroc": curve[key]})
    df = pd.DataFrame(out, columns=["category", "method", "setting", "N", "auroc"])
    if category is not None and category not in set(df["category"]):
        from IPython.display import Markdown

        ran = sorted(results.loc[results["category"] == category, "n_train"].unique())
        return Markdown(f"*{category} has no fit at N = {', '.join(map(str, sizes))} (the full training set is "
                        f"'max'); the sizes it ran: {', '.join(map(str, ran)) or 'none'}.*")
    if category is not None:
        return auc_at(results[results["category"] == category], sizes, digits).loc[category]
    return df.pivot_table(index=["category", "method", "setting"], columns="N", values="auroc",
                          sort=False).round(digits)
