"""The part "Beyond the paper" (``notebooks/beyond.ipynb``, once per category): PatchCore beside the paper's
methods from 1 training image up, with and without augmentation; the few-shot table beside published
anchors; localization (pixel AUROC, AUPRO) where masks exist; PatchCore's heatmaps next to PaDiM's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data.dataset import load_masks
from ..data.images import read_image, resize_rgb
from ..data.roots import read_root
from ..data.sources import load_category, source_label
from ..detectors.inputs import stack_maps
from ..detectors.params import parse_assignments
from ..detectors.registry import make_detector, method_label, method_order, method_spec, params_for
from ..experiments.study import fitted, run_study, skipped_fits
from ..experiments.design import StudyConfig, draw_subset, parse_factors, parse_test_aug, sizes_within
from ..experiments.table import results_path
from ..features.backbones import load_backbone
from ..features.encode import cache_for, encode
from .figures import example_images
from .params import BEYOND
from .plots import category_names, setting_label

#: the published few-shot results shown beside ours (method, backbone, data, shots, image AUROC, citation)
ANCHORS = Path(__file__).with_name("fewshot_anchors.csv")


def run_beyond_category(**values) -> pd.DataFrame:
    """The page's study, its parameters checked (one clear message): the sample-size study at few-shot sizes
    with PatchCore, into ``<out_dir>/beyond-<source>-<category>-<backbone>.parquet``. Returns every row of
    this run, the skipped fits (too few images for a method) included, and with ``test_aug`` (e.g. ``"0,4"``) a row
    per number of test-time views K (:func:`test_aug_gain`); ``.attrs["note"]`` says which sizes were left out
    (more than the category's training images), or is empty."""
    BEYOND.check(values)
    source, root = read_root(values["data_root"], values["category"])
    data = load_category(source, values["category"], root=root)
    sizes, note = sizes_within(values["sizes"], len(data.train), values["category"])
    config = StudyConfig(methods=[m.strip() for m in values["methods"].split(",") if m.strip()],
                         sizes=sizes, reps=values["reps"],
                         factors=parse_factors(str(values["aug"])), seed=values["seed"],
                         params=parse_assignments(values["method_params"]),
                         test_aug=parse_test_aug(str(values["test_aug"]) or None))
    bb = load_backbone(values["backbone"], values["input_size"])
    out = results_path(values["out_dir"], source, values["category"], values["backbone"], "beyond")
    rows = run_study(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])
    rows.attrs["note"] = note
    return rows


def test_aug_gain(results: pd.DataFrame):
    """What test-time views add: per method, augmentation and N, the image AUROC without views and, for each K, the
    gain of averaging the image's score with its K views' (mean and standard deviation over replicates, fit by
    fit), and the scoring time it costs (times the image alone). A Markdown line where no row has views."""
    from IPython.display import Markdown

    df = fitted(results)
    if "test_aug" not in df or not (df["test_aug"] > 0).any():
        return Markdown("*No test-time views in these results (`lowdata book --preset fewshot` or `lowdata study "
                        "--test-aug 0,4` score them).*")
    fit = [c for c in ("source", "category", "backbone", "method", "params", "seed", "aug_seed", "subsets",
                       "aug_factor", "augment_only", "n_train", "replicate") if c in df.columns]  # one fit's rows
    base = df[df["test_aug"] == 0].set_index(fit)
    rows = []
    for k in sorted(set(df["test_aug"]) - {0}):
        views = df[df["test_aug"] == k].set_index(fit)
        both = views.join(base[["auroc", "score_seconds"]].add_suffix("_0"), how="inner")
        both["gain"] = both["auroc"] - both["auroc_0"]
        both["cost"] = both["score_seconds"] / both["score_seconds_0"].where(both["score_seconds_0"] > 0)
        both = both.reset_index()
        both = both[~both["augment_only"].astype(bool)] if "augment_only" in both else both
        for (m, f, n), g in both.groupby(["method", "aug_factor", "n_train"]):
            rows.append({"_m": method_order(m), "method": method_label(m), "augmentation": setting_label(int(f), False), "N": int(n),
                         "K": int(k), "AUROC without": g["auroc_0"].mean(), "gain": g["gain"].mean(),
                         "gain sd": g["gain"].std(ddof=1) if len(g) > 1 else float("nan"), "fits": len(g),
                         "scoring time x": g["cost"].median()})
    out = pd.DataFrame(rows)
    return out.sort_values(["_m", "augmentation", "N", "K"]).drop(columns="_m").set_index(
        ["method", "augmentation", "N", "K"]).round(4)


def anchors() -> pd.DataFrame:
    """The published anchors: mean image AUROC (percent) by data set (``dataset``: a source's name, ``mvtec`` or
    ``visa``), method and shots, with backbones and citations (``fewshot_anchors.csv``). Only values read in the
    papers are there: AnomalyDINO's VisA values are not (they could not be read where this was written)."""
    return pd.read_csv(ANCHORS, dtype={"shots": str})


def fewshot_table(results: pd.DataFrame, shots=(1, 2, 4, 8, 16)) -> pd.DataFrame:
    """Image AUROC (percent, mean over replicates) by data set, method and augmentation, at 1 to 16 shots: ours on
    each data set, followed by the published anchors of that data set (their backbones differ). Where none of our
    data sets has anchors (ELPV, a user's own), MVTec AD's follow, for reading: other images, other networks."""
    df = fitted(results)
    df = df[df["n_train"].isin(shots) & ~df["augment_only"].astype(bool)]
    pub = anchors()
    ours_sets = sorted(set(df["source"]), key=lambda s: (s not in set(pub["dataset"]), source_label(s)))
    rows = []
    for source in ours_sets:
        mine = df[df["source"] == source]
        for (m, f), g in sorted(mine.groupby(["method", "aug_factor"]),
                                key=lambda kv: (method_order(kv[0][0]), kv[0][1])):
            cats = ", ".join(sorted(set(g["category"])))
            row = {"dataset": source_label(source), "": "ours", "method": method_label(m),
                   "backbone": "-".join(g["backbone"].iloc[0].split("-")[:2]), "data": cats,
                   "augmentation": setting_label(int(f), False)}
            row.update({str(n): round(100 * g[g["n_train"] == n]["auroc"].mean(), 1) for n in shots})
            rows.append(row)
        rows += _published(pub[pub["dataset"] == source], shots)
    if not set(ours_sets) & set(pub["dataset"]):
        rows += _published(pub[pub["dataset"] == "mvtec"], shots)
    out = pd.DataFrame(rows)
    cols = ["dataset", "", "method", "backbone", "data", "augmentation", *map(str, shots),
            *(["all"] if "all" in out else [])]
    return out[cols + (["source"] if "source" in out else [])].fillna({"source": ""}).set_index(
        ["dataset", "", "method"])


def _published(pub: pd.DataFrame, shots) -> list[dict]:
    """One row per published method of ``pub`` (one data set's anchors), its values by shots."""
    rows = []
    for (d, m, b, data, src), g in pub.groupby(["dataset", "method", "backbone", "data", "source"], sort=False):
        row = {"dataset": source_label(d), "": "published", "method": m, "backbone": b, "data": data,
               "augmentation": "", **{str(n): float("nan") for n in shots}}
        for s, v in zip(g["shots"], g["image_auroc"]):
            row[s] = v
        row["source"] = src
        rows.append(row)
    return rows


def localization_table(results: pd.DataFrame) -> pd.DataFrame | None:
    """Pixel AUROC and AUPRO (mean over replicates) of the methods that give maps, by N and augmentation;
    ``None`` when the category has no masks (ELPV: image labels only)."""
    df = fitted(results)
    df = df.dropna(subset=["pixel_auroc"])
    if df.empty:
        return None
    df = df.assign(category=category_names(df), method=df["method"].map(method_label),
                   setting=[setting_label(int(f), bool(o)) for f, o in zip(df["aug_factor"], df["augment_only"])])
    t = df.groupby(["category", "method", "setting", "n_train"])[["pixel_auroc", "aupro"]].mean().unstack("n_train")
    return t.round(3)


def skipped(results: pd.DataFrame) -> pd.DataFrame:
    """The fits that could not be made, with the reason (each once)."""
    s = skipped_fits(results)
    return s.assign(method=s["method"].map(method_label)).drop_duplicates(["method", "skipped"])[["method", "skipped"]]


def settings(methods: str, params: str | dict = "") -> str:
    """The detectors' parameters as the page's fits use them, one line (``params``: as ``--param``, or a mapping)."""
    given = parse_assignments(params) if isinstance(params, str) else params
    names = [m.strip() for m in methods.split(",") if m.strip()]
    return "; ".join(f"{method_label(m)}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in
                                                       make_detector(m, **params_for(m, given)).get_params().items())
                     for m in names if method_spec(m).parameters)


def heatmap_pairs(category: str, data_root: str | None, backbone: str, input_size: int | None = None,
                  cache_dir=None, n: int = 8, anomalous: int = 4, good: int = 1, params: str | dict = "", seed: int = 0,
                  progress: bool = False) -> dict:
    """PaDiM and PatchCore fitted on the same ``n`` training images (the study's subset of replicate 0), and
    their heatmaps of the same test images (one per defect type first, then a good one), with the masks
    where the category has them. Returns images, the two rows of heatmaps, masks, titles and each model's
    image AUROC on the whole test set (``data_root`` as the page's parameter: :func:`lowdata.data.roots.read_root`)."""
    from ..metrics import image_auroc

    source, root = read_root(data_root, category)
    data = load_category(source, category, root=root)
    bb = load_backbone(backbone, input_size)
    cache = cache_for(bb, cache_dir)
    n = min(n, len(data.train))
    idx = draw_subset(len(data.train), n, seed, 0)
    train = encode(bb, [data.train[i].path for i in idx], cache, progress=progress, desc=f"{category} train",
                   label=f"{data.source}/{data.category}")
    test = encode(bb, [s.path for s in data.test], cache, progress=progress, desc=f"{category} test",
                  label=f"{data.source}/{data.category}")
    labels = data.test_labels
    chosen = example_images(data, anomalous, good, seed)
    size = 256
    train_maps, test_maps = stack_maps(train), test.map_rows()  # the test set's maps memory-mapped, not copied
    rows, aurocs = [], {}
    given = parse_assignments(params) if isinstance(params, str) else params
    for method in ("padim", "patchcore"):
        det = make_detector(method, **params_for(method, given)).fit(train_maps)
        scores, maps = det.scores_and_maps(test_maps)
        aurocs[method_label(method)] = image_auroc(labels, scores)
        rows.append((method_label(method), det.heatmaps(size=size, maps=maps[chosen]), scores[chosen]))
    images = [resize_rgb(read_image(data.test[i].path), size) for i in chosen]
    masks = None
    if any(data.test[i].mask_path is not None for i in chosen):
        masks = load_masks([data.test[i] for i in chosen], (size, size))
    return {"images": images, "rows": rows, "masks": masks, "titles": [data.test[i].defect_type for i in chosen],
            "auroc": aurocs, "n": n}
