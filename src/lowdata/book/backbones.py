"""The chapter "Which backbone?" (``notebooks/backbones.ipynb`` once per category, ``backbones-summary.ipynb`` over
all): the sample-size study of one category repeated for several backbones on the same seeded subsets, the image
AUROC and the area under the AUC-percent curve by backbone, and what each backbone costs to encode.

The paper chose EfficientNet-B4 "from our own network ablations (data not shown)"; here they are shown for the
backbones whose ImageNet weights are at hand (EfficientNet-Lite0, -Lite1, -Lite2 offline; B4 and DINOv2 where their
weights can be downloaded: add them to ``lowdata book --backbones``). Each backbone's rows are in their own table,
``<out_dir>/backbones-<source>-<category>-<backbone>.parquet`` (the study's columns: the backbone's key names its
weights and input size).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.errors import LowdataError
from ..data.images import read_image
from ..data.roots import read_root
from ..data.sources import load_category
from ..detectors.registry import method_label, method_order
from ..experiments.design import StudyConfig, parse_factors, sizes_within
from ..experiments.study import fitted, run_study
from ..experiments.table import results_path
from ..features.backbones import backbone_names, default_input_size, load_backbone
from ..features.encode import cache_for
from ..metrics import auc_percent_area
from .params import BACKBONES
from .plots import log_n_axis, setting_label
from .summary import load_results

KIND = "backbones"


def parse_backbones(spec: str) -> list[str]:
    """``efficientnet-lite0,efficientnet-lite1``: the backbones named (each known, once), else one clear error."""
    names = list(dict.fromkeys(n.strip() for n in str(spec).split(",") if n.strip()))
    if not names:
        raise LowdataError(f"--backbones: no backbone named; choose from {', '.join(backbone_names())}")
    for n in names:
        if n not in backbone_names():
            raise LowdataError(f"--backbones: unknown backbone {n!r}; choose from {', '.join(backbone_names())}")
    return names


def name_of(key: str) -> str:
    """A backbone's name from its key (``efficientnet-lite1-380px-<digest>-onnxruntime`` -> ``efficientnet-lite1``)."""
    return re.sub(r"-\d+px-.*$", "", str(key))


def run_backbones_category(**values) -> pd.DataFrame:
    """The page's studies, its parameters checked (one clear message): the sample-size study of the category for
    each backbone of ``backbones``, the same sizes, replicates, seeds and augmentation for all. Returns the fits of
    this run (column ``backbone_name`` added); ``.attrs["note"]`` names the sizes left out (more than the category's
    training images)."""
    BACKBONES.check(values)
    names = parse_backbones(values["backbones"])
    source, root = read_root(values["data_root"], values["category"])
    data = load_category(source, values["category"], root=root)
    sizes, note = sizes_within(values["sizes"], len(data.train), values["category"])
    config = StudyConfig(methods=[m.strip() for m in values["methods"].split(",") if m.strip()], sizes=sizes,
                         reps=values["reps"], factors=parse_factors(str(values["aug"])), seed=values["seed"])
    parts = []
    for name in names:
        bb = load_backbone(name, values["input_size"])
        out = results_path(values["out_dir"], source, values["category"], name, KIND)
        rows = run_study(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])
        parts.append(fitted(rows).assign(backbone_name=name))
    df = pd.concat(parts, ignore_index=True)
    df.attrs["note"] = note
    return df


def load_backbone_results(results_dir: str | Path, input_size: int | None = None, run: dict | None = None) -> pd.DataFrame:
    """Every backbone's rows of the chapter in ``results_dir`` at ``input_size`` (default: each backbone's own), of
    the categories whose page the run ``run`` completed; column ``backbone_name`` added."""
    df = load_results(results_dir, None, None, run, kind=KIND)
    if df.empty:
        return df.assign(backbone_name=pd.Series(dtype=object))
    names = df["backbone"].map(name_of)
    size = np.array([f"-{input_size or default_input_size(n)}px-" in k for n, k in zip(names, df["backbone"])], bool)
    return df.assign(backbone_name=names)[size].reset_index(drop=True)  # load_results reads the fits made only


def _n_label(df: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(df["n_train"] == df["n_pool"], "max", df["n_train"].astype(str)), index=df.index)


def _order(names) -> list[str]:
    known = list(backbone_names())
    return sorted(set(names), key=lambda n: (known.index(n) if n in known else len(known), n))


def auroc_by_backbone(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """One detector's image AUROC by N (rows; ``max``: the category's every training image) and by augmentation and
    backbone (columns): the mean over replicates, then over the categories that have that size."""
    d = df[(df["method"] == method) & ~df["augment_only"].astype(bool)]
    if d.empty:
        return pd.DataFrame()
    d = d.assign(N=_n_label(d))
    per_cat = d.groupby(["source", "category", "N", "aug_factor", "backbone_name"])["auroc"].mean().reset_index()
    t = per_cat.groupby(["N", "aug_factor", "backbone_name"])["auroc"].mean().unstack(["aug_factor", "backbone_name"])
    t = t.reindex(sorted(t.index, key=lambda n: (n == "max", int(n) if n != "max" else 0)))
    cols = [(f, b) for f in sorted(set(t.columns.get_level_values(0))) for b in _order(t.columns.get_level_values(1))
            if (f, b) in t.columns]
    t = t[cols]
    t.columns = pd.MultiIndex.from_tuples([(setting_label(int(f), False), b) for f, b in cols],
                                          names=["augmentation", "backbone"])
    return t.rename_axis(f"{method_label(method)}: N")


def area_by_backbone(df: pd.DataFrame) -> pd.DataFrame:
    """The area under the AUC-percent curve (the paper's summary of a whole curve, up to the category's every
    image) by detector and augmentation (rows) and backbone (columns), the mean over the categories whose sizes
    reach their full training set."""
    rows = []
    d = df[~df["augment_only"].astype(bool)]
    for (m, f, b, s, c), g in d.groupby(["method", "aug_factor", "backbone_name", "source", "category"]):
        curve = g.groupby("n_train")["auroc"].mean()
        n_pool = int(g["n_pool"].max())
        if n_pool in curve.index and len(curve) > 1:
            rows.append({"detector": method_label(m), "order": method_order(m), "augmentation": setting_label(int(f), False),
                         "backbone": b, "area": auc_percent_area(curve.index.to_numpy(float), curve.to_numpy(), n_pool)})
    if not rows:
        return pd.DataFrame()
    t = pd.DataFrame(rows).groupby(["order", "detector", "augmentation", "backbone"])["area"].mean().unstack("backbone")
    return t[_order(t.columns)].droplevel("order")


def backbone_figure(df: pd.DataFrame, panel_size: tuple[float, float] = (4.2, 3.2)) -> Figure:
    """One panel per detector: image AUROC against N (mean over replicates, then categories; the full training set
    at the right, as ``max``), one colour per backbone, no augmentation solid, with copies dashed."""
    methods = sorted(df["method"].unique(), key=method_order)
    if not methods:
        raise LowdataError("no fit to plot")
    fig = Figure(figsize=(panel_size[0] * len(methods), panel_size[1]), layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    colours = dict(zip(_order(df["backbone_name"]), ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
    for ax, m in zip(axes, methods):
        t = auroc_by_backbone(df, m)
        labels = list(t.index)
        x = [int(n) if n != "max" else None for n in labels]
        top = max([v for v in x if v is not None] or [1])
        x = [v if v is not None else top * 2 for v in x]  # the full set, one step right of the largest size
        for (aug, b) in t.columns:
            ax.plot(x, t[(aug, b)], marker="o", ms=3, color=colours.get(b, "black"),
                    linestyle="-" if aug == "none" else "--", label=f"{b.replace('efficientnet-', '')} ({aug})")
        log_n_axis(ax, x)
        ax.set_xticks(x, labels)
        ax.set_title(method_label(m))
        ax.set_xlabel("training images N")
        ax.set_ylabel("image AUROC")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig


def forward_speed(bb, paths: Sequence, rounds: int = 2) -> float:
    """Images per second through ``bb``'s forward pass on real images, each alone (as encoding runs them), the best of
    ``rounds`` after a warm-up call."""
    imgs = [bb.preprocessing.apply(read_image(p)).astype(np.float32)[None] for p in paths]
    bb.forward(imgs[0])
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for x in imgs:
            bb.forward(x)
        best = max(best, len(imgs) / (time.perf_counter() - t0))
    return best


def encoding_cost(names: Sequence[str], input_size: int | None, paths: Sequence, paper: bool = True) -> pd.DataFrame:
    """What each backbone of ``names`` costs at ``input_size`` (default: its own): images per second through its
    forward pass (``paths``: real images, each alone) on the runtime encoding uses and on TensorFlow, the width of
    its features per level, its grids; with ``paper``, also EfficientNet-B4 (the paper's choice), timed with random
    weights when its ImageNet weights are not here (its cost is the architecture's, not the weights'; random B4 runs
    on TensorFlow only). ``cost vs first``: time per image over the first backbone's, on TensorFlow (the runtime
    they all have)."""
    from ..features.efficientnet_b4 import b4_weights_here

    rows = []
    todo = list(names) + (["efficientnet-b4"] if paper and "efficientnet-b4" not in names else [])
    for name in todo:
        random = name == "efficientnet-b4" and not b4_weights_here()  # nothing downloaded to time it
        weights = None if random else "imagenet"
        bb = load_backbone(name, input_size, weights=weights, runtime="tensorflow" if random else None)
        speed = forward_speed(bb, paths)
        tf = speed if (bb.runtime or "tensorflow") == "tensorflow" else \
            forward_speed(load_backbone(name, input_size, weights=weights, runtime="tensorflow"), paths)
        rows.append({"backbone": name, "weights": "random (timing only)" if random else "ImageNet",
                     "runtime": bb.runtime or "tensorflow", "input px": bb.input_size, "images / s": round(speed, 1),
                     "images / s, TensorFlow": round(tf, 1), "ms / image, TensorFlow": round(1000 / tf, 1),
                     "feature width": " + ".join(str(s[2]) for s in bb.level_shapes)
                                      + f" = {sum(s[2] for s in bb.level_shapes)}",
                     "grids": ", ".join(f"{h}x{w}" for h, w, _ in bb.level_shapes)})
    t = pd.DataFrame(rows).set_index("backbone")
    t["cost vs first"] = (t["ms / image, TensorFlow"] / t["ms / image, TensorFlow"].iloc[0]).round(2)
    return t


def cost_images(source: str, category: str, data_root: str | None, n: int = 8) -> list:
    """``n`` test images of a category to time the backbones on (ELPV mono where none is named)."""
    if not source:
        source, category, data_root = "elpv", "mono", None
    data = load_category(source, category, root=data_root)
    return [s.path for s in data.test[:n]]


def paper_choice(cost: pd.DataFrame, results: pd.DataFrame) -> str:
    """A paragraph: what EfficientNet-B4 costs against the first backbone of ``cost``, and what its AUROC is where
    ``results`` has it (else why not)."""
    if "efficientnet-b4" not in cost.index:
        return "*EfficientNet-B4 was not timed.*"
    b4, first = cost.loc["efficientnet-b4"], cost.iloc[0]
    text = (f"EfficientNet-B4 at {b4['input px']} px encodes {b4['images / s, TensorFlow']:.1f} images per second "
            f"here on TensorFlow ({b4['ms / image, TensorFlow']:.0f} ms each, {b4['weights']} weights), against "
            f"{first['images / s, TensorFlow']:.1f} for {cost.index[0]} on TensorFlow ({first['images / s']:.1f} on "
            f"{first['runtime']}, which encoding uses): **{b4['cost vs first']:.1f} times the "
            f"time** of every encoding (each training image, each augmented copy, each test image), and features of "
            f"{b4['feature width'].split(' = ')[-1]} dimensions against {first['feature width'].split(' = ')[-1]} "
            "(the Gaussians' covariances grow with the square).")
    area = area_by_backbone(results) if len(results) else pd.DataFrame()
    if "efficientnet-b4" in area.columns and cost.index[0] in area.columns:
        gain = (area["efficientnet-b4"] - area[cost.index[0]]).round(4)
        text += (f" What it buys, as the area under the AUC-percent curve (B4 minus {cost.index[0]}): "
                 + "; ".join(f"{d} ({a}) {g:+.4f}" for (d, a), g in gain.items()) + ".")
    else:
        text += (" What it buys in AUROC is not measured here: its ImageNet weights cannot be downloaded on this "
                 "machine (with internet, add it: `lowdata book --backbones efficientnet-lite0,efficientnet-b4`).")
    return text
