"""The book's workflow page: from a folder of ten good images to scores, a threshold and heatmaps.

:func:`run_walkthrough` does what an engineer would do with ``lowdata fit`` and ``lowdata score``,
through the same Python API (:mod:`lowdata.inspection.model`), on one category: ten good training images are
copied into a folder, a model is fitted on it and saved, loaded back, and scores the whole test set;
PaDiM heatmap overlays are written for a few test images. It also times each step
(:func:`time_workflow`, also printed by ``benchmarks/workflow.py``) and measures the false-positive rate
of each threshold rule on held-out normal images (:func:`lowdata.experiments.thresholds.evaluate_thresholds`).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
import pandas as pd

from ..core.errors import LowdataError
from ..data.images import read_image
from ..data.roots import read_root
from ..data.sources import load_category
from ..detectors.registry import check_method
from ..experiments.design import draw_subset
from ..experiments.thresholds import evaluate_thresholds
from ..features.backbones import load_backbone
from ..features.encode import cache_for
from ..inspection.model import fit_model, load_model
from ..inspection.threshold import check_rule, threshold_from_scores
from .params import WORKFLOW


@dataclass
class Walkthrough:
    source: str
    category: str
    folder: Path  # the ten good images
    model_dir: Path
    commands: str  # the command lines this page runs through the API
    model: object  # the InspectionModel loaded back from model_dir
    scores: pd.DataFrame  # every test image: image, label, defect_type, score, threshold, ratio, verdict
    overlays: list[Path]
    timings: pd.DataFrame  # per method, seconds of each step (time_workflow)
    evaluation: pd.DataFrame  # evaluate_thresholds rows


def _split(text, what: str, cast=str) -> list:
    try:
        items = [cast(x.strip()) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise LowdataError(f"{what} must be comma-separated values, got {text!r}") from None
    if not items:
        raise LowdataError(f"{what} is empty")
    return items


def time_workflow(goods: Sequence[Path], one: Path, methods: Sequence[str], backbone, repeats: int = 3,
                  seed: int = 0) -> pd.DataFrame:
    """Seconds of each step of the workflow per method, the median of ``repeats`` runs, each with an empty
    embedding cache (so encoding is timed): encoding the training images, fitting the detector (embedding
    excluded: the paper's claim), setting the threshold (out-of-fold fits), saving, loading, and scoring
    one new image (its encoding included; the backbone is already loaded)."""
    rows = []
    for method in methods:
        runs = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="lowdata-time-") as tmp:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = fit_model(list(goods), method, backbone=backbone, cache_dir=Path(tmp) / "cache",
                                      seed=seed, progress=False)
                t = model.meta["timings"]
                t0 = time.perf_counter()
                model.save(Path(tmp) / "model")
                t1 = time.perf_counter()
                loaded = load_model(Path(tmp) / "model")
                loaded.attach_backbone(backbone)
                t2 = time.perf_counter()
                loaded.score([one], cache_dir=Path(tmp) / "cache2", progress=False)
                t3 = time.perf_counter()
                size = sum(f.stat().st_size for f in (Path(tmp) / "model").iterdir())
            runs.append({"encode_s": t["encode_s"], "detector_fit_s": t["detector_fit_s"],
                         "threshold_s": t["threshold_s"], "save_s": t1 - t0, "load_s": t2 - t1,
                         "score_one_s": t3 - t2, "model_mb": size / 1e6})
        rows.append({"method": method, "images": len(goods),
                     **{k: statistics.median(r[k] for r in runs) for k in runs[0]}})
    return pd.DataFrame(rows)


def run_walkthrough(**values) -> Walkthrough:
    """The workflow page of one category (the notebook's parameters, checked first)."""
    WORKFLOW.check(values)
    methods = _split(values["methods"], "methods")
    for m in methods + [values["method"]]:
        check_method(m)
    rules = _split(values["rules"], "rules")
    fprs = _split(values["fprs"], "fprs", float)
    for r in rules:
        for f in fprs:
            check_rule(r, f)
    if values["n"] < 5 or values["reps"] < 1:
        raise LowdataError(f"n must be at least 5 and reps at least 1, got n={values['n']}, reps={values['reps']}")
    source, root = read_root(values["data_root"], values["category"])
    category, progress, seed = values["category"], values["progress"], values["seed"]
    data = load_category(source, category, root=root)
    n = values["n"]
    if n > len(data.train):
        print(f"{source}/{category} has {len(data.train)} training images, fewer than n={n}: the folder gets all "
              f"{len(data.train)}, and every replicate of the threshold measurement is the same draw")
        n = len(data.train)
    bb = load_backbone(values["backbone"], values["input_size"])

    # a folder of ten good images, as an engineer would have
    work = Path(values["out_dir"]) / "workflow" / f"{source}-{category}"
    folder = work / "good"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i in draw_subset(len(data.train), n, seed, 0):
        src = data.train[i].path
        shutil.copy(src, folder / src.name)
    model_dir = work / "model"
    method = values["method"]
    fitted = fit_model(folder, method, backbone=bb, cache_dir=values["cache_dir"], seed=seed, progress=progress)
    fitted.save(model_dir)
    model = load_model(model_dir)
    model.attach_backbone(bb)

    cache_root = cache_for(bb, values["cache_dir"]).root  # the test set is in the study's cache already
    scores, maps = model.score([s.path for s in data.test], cache_dir=cache_root, progress=progress,
                               return_maps=True)
    scores.insert(1, "label", data.test_labels)
    scores.insert(2, "defect_type", [s.defect_type for s in data.test])
    overlays = []
    if model.gives_maps:
        pick = _typical(scores)
        heat = work / "heatmaps"
        if heat.exists():
            shutil.rmtree(heat)
        overlays = model.write_overlays(scores.iloc[pick].reset_index(drop=True), maps[pick], heat)

    goods = sorted(folder.iterdir())
    timings = time_workflow(goods, data.test[0].path, methods, bb, seed=seed)
    evaluation = evaluate_thresholds(data, bb, cache_for(bb, values["cache_dir"]), threshold_from_scores, methods=methods, rules=rules,
                                     n=n, reps=values["reps"], fprs=fprs, seed=seed, progress=progress)
    size = f" --input-size {values['input_size']}" if values["input_size"] else ""
    commands = (f"lowdata fit {folder} --method {method} --backbone {values['backbone']}{size} --out {model_dir}\n"
                f"lowdata score {model_dir} TEST_IMAGES_OR_FOLDER --out scores.csv --heatmaps heatmaps")
    return Walkthrough(source, category, folder, model_dir, commands, model, scores, overlays, timings, evaluation)


def _typical(scores: pd.DataFrame, per_type: int = 1) -> list[int]:
    """Row numbers of the test images to show: per defect type its median-scored image, then the normal
    image with the highest score (the likeliest false alarm) and a median-scored normal image."""
    pick = []
    for kind, g in scores[scores["label"] == 1].groupby("defect_type", sort=True):
        order = g.sort_values("score")
        pick.append(int(order.index[len(order) // 2]))
    goods = scores[scores["label"] == 0].sort_values("score")
    if len(goods):
        pick += [int(goods.index[-1]), int(goods.index[len(goods) // 2])]
    return list(dict.fromkeys(pick))[:6]


def verdict_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per defect type (and normal): images, flagged as anomalous, and the share flagged."""
    g = scores.assign(flagged=scores["verdict"] == "anomalous").groupby("defect_type")
    out = g.agg(images=("flagged", "size"), flagged=("flagged", "sum"))
    out["share flagged"] = (out["flagged"] / out["images"]).round(3)
    return out


def fpr_table(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Per method, rule and target rate: the false-positive rate measured on held-out normal images (mean,
    and the lowest and highest over replicates), the true-positive rate on defects, and the threshold."""
    g = evaluation.groupby(["method", "rule", "fpr_target"], sort=False)
    out = g.agg(replicates=("replicate", "size"), fpr_measured=("fpr_heldout", "mean"),
                fpr_min=("fpr_heldout", "min"), fpr_max=("fpr_heldout", "max"),
                tpr_defects=("tpr_defects", "mean"), auroc=("auroc", "mean"))
    return out.round(3)


def score_histogram(scores: pd.DataFrame, oof: Sequence[float], threshold: float, title: str = ""):
    """Scores of the test set's normal and defective images, the training images' out-of-fold scores
    (ticks) and the threshold (line)."""
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    lo = min(scores["score"].min(), min(oof))
    hi = min(float(scores["score"].max()), max(3.0 * threshold, float(np.quantile(scores["score"], 0.9))))
    bins = np.linspace(lo, max(hi, threshold * 1.2), 40)
    for label, name, colour in ((0, "normal (test)", "tab:blue"), (1, "defective (test)", "tab:red")):
        ax.hist(scores.loc[scores["label"] == label, "score"].clip(upper=bins[-1]), bins=bins, alpha=0.55,
                label=name, color=colour)
    ax.plot(oof, np.zeros(len(oof)), "|", color="black", markersize=14, label="training, out of fold")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score (the last bin holds every higher score)")
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def fpr_plot(evaluation: pd.DataFrame):
    """Measured false-positive rate per replicate against the target, one panel per target rate."""
    import seaborn as sns  # lazy: 1.6 s to import (measured), and only figures need it
    targets = sorted(evaluation["fpr_target"].unique(), reverse=True)
    fig = Figure(figsize=(4.2 * len(targets), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(targets), sharey=True))
    for ax, t in zip(axes, targets):
        d = evaluation[evaluation["fpr_target"] == t]
        sns.stripplot(data=d, x="method", y="fpr_heldout", hue="rule", dodge=True, ax=ax, size=4, alpha=0.7,
                      legend=ax is axes[-1])
        ax.axhline(t, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"target {t:.0%}", fontsize=10)
        ax.set_ylabel("false-positive rate on held-out normal images")
        ax.set_xlabel("")
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def _image_grid(paths: Sequence[Path], ncols: int, cell: tuple[float, float], titles: bool):
    """Image files side by side, ``ncols`` per row, each ``cell`` inches (with its file name above)."""
    n = len(paths)
    if n == 0:
        raise LowdataError("no image to show")
    rows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(cell[0] * min(n, ncols), cell[1] * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, min(n, ncols))).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, p in zip(axes, paths):
        ax.imshow(read_image(p))
        if titles:
            ax.set_title(Path(p).name, fontsize=10)
    return fig


def overlay_grid(paths: Sequence[Path], ncols: int = 3):
    """The overlay PNGs written by ``lowdata score``, side by side."""
    return _image_grid(paths, ncols, (4.2, 4.6), titles=False)


def thumbnails(paths: Sequence[Path], ncols: int = 5):
    """The images of a folder, small, with their file names."""
    return _image_grid(paths, ncols, (2.0, 2.2), titles=True)
