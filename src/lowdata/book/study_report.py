"""The study's summary on one screen (``lowdata study`` prints it): AUROC at the full training set, the area under
the AUC-percent curve, localization at N max, and the fits that were skipped."""

from __future__ import annotations

import pandas as pd

from ..experiments.study import fitted, skipped_fits
from ..metrics import auc_percent_area


def summarize(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per (category, method, augmentation): AUROC at the full training set, and the AUC-percent area."""
    out = {}
    df = fitted(df)
    group = ["category", "aug_factor", "augment_only", "method"]
    rows = []
    for (cat, f, only, m), g in df.groupby(group, sort=True):
        n_max = int(g["n_pool"].max())  # the category's full training set, whether or not it was run
        curve = g.groupby("n_train")["auroc"].mean()
        full = n_max in curve.index  # without the full size there is no AUC at N max and no area
        rows.append({"category": cat, "aug": f"{f}{' only' if only else ''}", "method": m,
                     "auroc_max_n": curve.loc[n_max] if full else float("nan"),
                     "area": auc_percent_area(curve.index, curve.values, n_max) if full else float("nan"),
                     "n_max": n_max, "sizes": len(curve), "fits": len(g), "fit_s_mean": g["fit_seconds"].mean()})
    table = pd.DataFrame(rows)
    if table.empty:
        return {"table": table}
    out["table"] = table
    out["auroc_max_n"] = table.pivot_table(index=["category", "aug"], columns="method", values="auroc_max_n")
    out["area"] = table.pivot_table(index=["category", "aug"], columns="method", values="area")
    return out


def test_aug_table(df: pd.DataFrame) -> pd.DataFrame:
    """Image AUROC (mean over replicates) by the number of test-time views K, per category, augmentation factor,
    method and N, with each K's gain over the image alone (``+K``: AUROC with K views minus without)."""
    df = fitted(df)
    t = df.pivot_table(index=["category", "aug_factor", "augment_only", "method", "n_train"], columns="test_aug",
                       values="auroc")
    for k in [k for k in t.columns if k != 0 and 0 in t.columns]:
        t[f"+{k}"] = t[k] - t[0]
    t.columns = [f"K={c}" if not isinstance(c, str) else c for c in t.columns]
    return t


def format_summary(df: pd.DataFrame) -> str:
    """One screen: AUROC at the full training set and the area under the AUC-percent curve (without test-time
    views when there are; then the gain of each number of views)."""
    views = sorted(set(df["test_aug"])) if "test_aug" in df and len(df) else [0]
    if len(views) > 1:
        return (format_summary(df[df["test_aug"] == views[0]]) + "\n\nTest-time augmentation (image AUROC by the "
                f"number of views K, mean over replicates; +K: the gain over K={views[0]}):\n"
                + test_aug_table(df).round(3).to_string())
    s = summarize(df)
    skips = skipped_fits(df)
    df = fitted(df)
    if s["table"].empty:
        return "no results" + "".join(f"\nskipped: {r.skipped}" for r in skips.itertuples())
    lines = [f"skipped ({len(skips)}): {r.skipped}" for r in skips.itertuples()]
    if s["table"]["auroc_max_n"].isna().any() and not s["auroc_max_n"].empty:  # some categories lack N max
        lines += ["(NaN: the sizes run do not include the full training set, so there is no AUC at N max and no area)"]
    mixed = [c for c in ("seed", "aug_seed", "policy_digest", "subsets") if c in df.columns]
    if df.groupby("category")[mixed].nunique().max().max() > 1:
        lines += ["(these rows mix several seeds, policies or subset schemes; their AUCs are averaged together)"]
    lines += [f"{len(df)} fits; fit time {df['fit_seconds'].sum():.1f} s, score time {df['score_seconds'].sum():.1f} s"]
    if s["auroc_max_n"].empty:  # no size ran at the full set: the largest one that did run, said as such
        top = df[df["n_train"] == df.groupby("category")["n_train"].transform("max")]
        sizes = ", ".join(f"{c} N={n} of {p}" for c, n, p in
                          top[["category", "n_train", "n_pool"]].drop_duplicates().itertuples(index=False))
        lines += ["", f"Image AUROC at the largest size run ({sizes}; not the full training set, so no AUROC "
                  "at N max):", top.pivot_table(index=["category", "aug_factor"], columns="method",
                                               values="auroc").round(3).to_string()]
    else:
        lines += ["", "Image AUROC at the full training set (N max):", s["auroc_max_n"].round(3).to_string()]
    if (s["table"]["sizes"] > 1).any() and s["area"].empty:
        lines += ["", "(no area under the AUC-percent curve: it is relative to the full training set, not run)"]
    elif (s["table"]["sizes"] > 1).any():
        lines += ["", "Area under the AUC-percent curve:", s["area"].round(3).to_string()]
    else:
        lines += ["", "(one sample size only: no AUC-percent curve; run more --sizes for its area)"]
    if df["pixel_auroc"].notna().any():
        pix = df[df["n_train"] == df["n_pool"]].dropna(subset=["pixel_auroc"])
        keys = ["category", "aug_factor", "augment_only", "method"]
        pix = pix.groupby(keys)[[c for c in ("pixel_auroc", "aupro") if c in pix.columns]].mean()
        lines += ["", "Localization at N max (pixel AUROC, AUPRO):", pix.round(3).to_string()]
    return "\n".join(lines)
