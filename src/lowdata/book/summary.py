"""The summary pages' material: every category's results, the run's record as a table, and what produced them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import LowdataError
from ..data.sources import source_label
from ..experiments.study import read_results, result_columns
from ..features.backbones import default_input_size
from .plots import curve_panels


def load_results(out_dir: str | Path, backbone: str | None = None, input_size: int | None = None,
                 run: dict | None = None, kind: str = "study", test_aug: int | None = 0) -> pd.DataFrame:
    """The study tables ``<kind>-*.parquet`` in ``out_dir`` (``study``: the paper's; ``beyond``: the part beyond
    it) as one table of the fits made, scored without test-time views: rows of ``backbone`` at ``input_size`` (default 380) if a backbone is
    given, and, with a runner's record ``run``, only the categories whose page that run completed (a failed
    one is reported, not averaged in)."""
    files = sorted(Path(out_dir).glob(f"{kind}-*.parquet"))
    parts = [read_results(f) for f in files]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=result_columns())
    if "test_aug" in df.columns and test_aug is not None:  # the image alone, as the paper (``None``: every K)
        df = df[df["test_aug"].fillna(0) == test_aug]
    return of_run(df, backbone, input_size, run, "categories" if kind == "study" else kind)


def of_run(df: pd.DataFrame, backbone: str | None, input_size: int | None, run: dict | None,
           part: str) -> pd.DataFrame:
    """The rows of ``df`` of ``backbone`` at ``input_size`` (default its own; ``None``: every backbone) and, with a
    runner's record ``run``, of the categories whose ``part`` page (``categories``, ``beyond``, ``autoaug``...) that
    run completed (a failed one is reported, not averaged in)."""
    if len(df) and backbone is not None:
        size = input_size or default_input_size(backbone)
        df = df[df["backbone"].astype(str).str.startswith(f"{backbone}-{size}px-")]
    if len(df) and run and run.get(part) is not None:
        done = {(r["source"], r["category"]) for r in run[part] if r["status"] == "done"}
        df = df[np.array([(s, c) in done for s, c in zip(df["source"], df["category"])], dtype=bool)]
    return df.reset_index(drop=True)


def absent_sentence(run: dict) -> str:
    """What did not run because its data is not here, in one sentence (``""``: nothing is absent)."""
    absent = list(run.get("absent", []))
    if not absent:
        return ""
    # a record of several roots says which categories ran; an older one names its single root
    given = any(r.get("source") == "mvtec" for r in run.get("categories", [])) or \
        ("data_roots" not in run and bool(run.get("data_root")))
    if not given:
        return ("MVTec AD: not found; set `MVTEC_ROOT` (or give `lowdata book --data ROOT`) to add its "
                f"{len(absent)} categories.")
    return f"MVTec AD: {len(absent)} of its categories not under the MVTec root ({', '.join(absent)})."


def run_status(run: dict, results: pd.DataFrame) -> pd.DataFrame:
    """One row per category that ran: done / failed (with the error), how many result rows it has and how long
    it took. What did not run for want of data is :func:`absent_sentence`."""
    rows = []
    for r in run.get("categories", []):
        n = int(((results["source"] == r["source"]) & (results["category"] == r["category"])).sum()) if len(results) else 0
        rows.append({"category": f"{r['source']}/{r['category']}", "study": r["status"], "result rows": n,
                     "minutes": round(r["seconds"] / 60, 1), "error": r["error"]})
    if not rows and len(results):  # a notebook run by hand, without the runner's record
        for (s, c), g in results.groupby(["source", "category"]):
            rows.append({"category": f"{s}/{c}", "study": "results found", "result rows": len(g), "minutes": None,
                         "error": ""})
    return pd.DataFrame(rows, columns=["category", "study", "result rows", "minutes", "error"]).set_index("category")


def show_status(run: dict, results: pd.DataFrame) -> pd.DataFrame:
    """A page's account of what ran: the sentence on absent data (shown), then :func:`run_status`'s table."""
    from IPython.display import Markdown, display

    line = absent_sentence(run)
    if line:
        display(Markdown(line))
    return run_status(run, results)


def describe_results(results: pd.DataFrame) -> str:
    """One paragraph (Markdown) saying what produced our numbers: data, backbone, sizes, replicates, seeds."""
    if results.empty:
        return "**No study results were found**, so every table below has the paper's values only."
    parts = []
    for source, g in results.groupby("source", sort=True):
        cats = sorted(g["category"].unique())
        parts.append(f"{source_label(source)} ({len(cats)} categor{'y' if len(cats) == 1 else 'ies'}: "
                     f"{', '.join(cats)})")
    backbones = ", ".join(sorted(results["backbone"].unique()))
    reps = int(results.groupby(["category", "method", "n_train", "aug_factor", "augment_only"])["replicate"]
               .nunique().max())
    seeds = ", ".join(map(str, sorted(results["seed"].unique())))
    not_paper = "" if set(results["source"]) == {"mvtec"} and backbones.startswith("efficientnet-b4") else \
        " **These are not the paper's data and backbone** (MVTec AD's 15 categories with EfficientNet-B4): " \
        "our numbers show the same protocol on what was available here, so a difference from the paper is " \
        "not, by itself, a failure to reproduce."
    schemes = set(results["subsets"].fillna("independent")) if "subsets" in results.columns else {"independent"}
    # independent subsets (the paper's reading, the default) go unsaid, as before --subsets existed
    nested = "" if schemes == {"independent"} else \
        ("; **nested subsets** (each replicate's smaller training sets inside its larger ones)" if schemes == {"nested"}
         else "; **independent and nested subsets mixed** (their AUCs are averaged together)")
    return (f"Ours: {'; '.join(parts)}; backbone {backbones}; up to {reps} replicates per size; subset seed "
            f"{seeds}{nested}; image AUROC.{not_paper} Group values are plain means over the categories we have "
            "(the row says how many of the paper's). Like with like: *paper, same categories* is the paper's mean "
            "over those same categories (from its per-category Tables 5 and 6), and `diff` is ours minus it; "
            "*paper, whole group* is the paper's own value over all 15 (5 textures, 10 objects), for reading. Where "
            "the paper gives group values only (Tables 3 and 7 with augmentation, 8, 9), a partial group has no "
            "same-category value and no `diff`; ELPV's row sits beside the paper's `all` row without one either.")


def curves(results: pd.DataFrame, **kwargs):
    """:func:`lowdata.book.plots.curve_panels` for a summary page: when the results have nothing for the
    figure (no category ran, or none with these settings), a Markdown note saying so instead."""
    from IPython.display import Markdown


    try:
        return curve_panels(results, **kwargs)
    except LowdataError as exc:
        return Markdown(f"*No figure: {exc}.*")
