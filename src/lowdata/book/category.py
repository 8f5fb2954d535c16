"""A category's page (``notebooks/category.ipynb``): its checked parameters, its studies, its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data.augment import describe, policy_for
from ..data.roots import read_root
from ..data.sources import load_category, source_label
from ..detectors.registry import method_label, method_order, method_spec
from ..experiments.study import fitted, run_study
from ..experiments.design import StudyConfig, parse_factors, sizes_within
from ..experiments.table import results_path
from ..features.backbones import load_backbone
from ..features.encode import cache_for
from .params import CATEGORY


@dataclass
class CategoryParams:
    data_root: str | None
    category: str
    backbone: str
    input_size: int | None
    methods: str
    sizes: str  # "auto" or e.g. "5,10,max" (a single int is accepted)
    reps: int
    aug: str  # e.g. "0,10" (a single int is accepted)
    sweep: str  # more factors for KNN and Mahalanobis only (Figure 5), e.g. "1,5"; "" for none
    augment_only: str  # factors without the original images (Figure 6), e.g. "1"; "" for none
    subsets: str  # "independent" (the default) or "nested" (lowdata.experiments.study.SUBSETS)
    out_dir: str
    cache_dir: str | None
    seed: int
    progress: bool = False  # progress bars on the notebook's stderr (the runner shows them live)

    @property
    def source(self) -> str:
        """The category's source (:func:`lowdata.data.roots.read_root`: recognised from its folder, or given)."""
        return read_root(self.data_root, self.category)[0]

    @property
    def root(self) -> Path | None:
        """The folder of categories ``data_root`` names (``None`` for ELPV)."""
        return read_root(self.data_root, self.category)[1]

    @property
    def out(self) -> Path:
        return results_path(self.out_dir, self.source, self.category, self.backbone)


def category_params(**values) -> CategoryParams:
    """The notebook's parameters, checked: a wrong type or an unknown name raises :class:`LowdataError`."""
    values.setdefault("progress", False)
    values.setdefault("subsets", "independent")  # notebooks executed before --subsets existed
    CATEGORY.check(values)
    # methods, factors, replicates and seed: the study's own checks, before anything slow
    for name in ("sizes", "aug", "sweep", "augment_only"):  # papermill -p aug 0 gives an int
        values[name] = str(values[name])
    StudyConfig(methods=[m.strip() for m in values["methods"].split(",")], sizes=[], reps=values["reps"],
                factors=parse_factors(values["aug"]), augment_only=_factors(values["augment_only"]),
                seed=values["seed"], subsets=values["subsets"]).validate()
    _factors(values["sweep"])
    return CategoryParams(**values)


def _factors(spec: str) -> list[int]:

    return parse_factors(spec) if spec.strip() else []


def study_configs(p: CategoryParams, n_pool: int):
    """The category's studies: every method with ``aug`` and ``augment_only``; KNN and Mahalanobis
    with the ``sweep`` factors."""
    methods = [m.strip() for m in p.methods.split(",")]
    sizes = sizes_within(p.sizes, n_pool, p.category)[0]
    configs = [StudyConfig(methods=methods, sizes=sizes, reps=p.reps, factors=parse_factors(p.aug),
                           augment_only=_factors(p.augment_only), seed=p.seed, subsets=p.subsets)]
    sweep = [f for f in _factors(p.sweep) if f not in configs[0].factors]
    pooled = [m for m in methods if method_spec(m).consumes == "pooled"]  # the paper leaves PaDiM out of Figure 5
    if sweep and pooled:
        configs.append(StudyConfig(methods=pooled, sizes=sizes, reps=p.reps, factors=sweep, seed=p.seed,
                                   subsets=p.subsets))
    for c in configs:
        c.validate()
    return configs


def run_category(p: CategoryParams, progress: bool | None = None) -> pd.DataFrame:
    """Run (or resume) the study of ``p.category``; returns this run's rows."""
    data = load_category(p.source, p.category, root=p.root)
    configs = study_configs(p, len(data.train))
    backbone = load_backbone(p.backbone, p.input_size)
    cache = cache_for(backbone, p.cache_dir)
    progress = p.progress if progress is None else progress
    return fitted(pd.concat([run_study(data, backbone, cache, c, p.out, progress=progress) for c in configs],
                            ignore_index=True))


def category_overview(p: CategoryParams, results: pd.DataFrame) -> pd.DataFrame:
    """The category's data and the study's settings, as a two-column table for its page."""
    data = load_category(p.source, p.category, root=p.root)
    counts = data.counts()
    pol = policy_for(p.category)
    sizes = sorted(results["n_train"].unique()) if len(results) else []
    left = sizes_within(p.sizes, len(data.train), p.category)[1]
    settings = sorted({(int(f), bool(o)) for f, o in zip(results["aug_factor"], results["augment_only"])})
    rows = {"data": f"{source_label(p.source)}: {p.category}"
                    + (f" ({p.root})" if p.root else " (PyPI package elpv-dataset)"),
            "training images (good)": len(data.train),
            "test images": ", ".join(f"{v} {k}" for k, v in counts.items() if k != "train/good"),
            "backbone": results["backbone"].iloc[0] if len(results) else p.backbone,
            "methods": p.methods, "sizes N": ", ".join(map(str, sizes)) + (f" ({left})" if left else ""),
            "replicates": f"{p.reps} (1 at the full training set)"
                          + ("; nested subsets (each inside the next larger)" if p.subsets == "nested" else ""),
            "augmentation": ", ".join(("x%d only" % f) if o else (f"x{f}" if f else "none") for f, o in settings),
            "augmentation policy": f"{pol.name}: {describe(pol)}",
            "seeds": f"subsets {p.seed}, augmentation {int(results['aug_seed'].iloc[0]) if len(results) else 0}",
            "fits": len(results)}
    return pd.DataFrame({"": list(rows.values())}, index=list(rows))


def fit_times(results: pd.DataFrame) -> pd.DataFrame:
    """Median fit and score seconds per method and setting, at N = 10 and the full training set."""
    rows = results[(results["n_train"] == 10) | (results["n_train"] == results["n_pool"])]
    rows = rows.assign(N=["max" if n == m else str(n) for n, m in zip(rows["n_train"], rows["n_pool"])],
                       setting=[f"x{f} only" if o else (f"x{f}" if f else "none")
                                for f, o in zip(rows["aug_factor"], rows["augment_only"])])
    return rows.pivot_table(index=["method", "setting"], columns="N", values=["fit_seconds", "score_seconds"],
                            aggfunc="median").round(3)


def by_defect_type(results: pd.DataFrame):
    """Image AUROC of each defect type (its anomalous images against every normal one) at the full training set,
    mean over replicates, per method and augmentation (MVTec LOCO: logical against structural anomalies); a
    Markdown line where the results hold no per-type AUROC (one defect type, or tables made before it was kept)."""
    import json

    from IPython.display import Markdown

    rows = results[(results["n_train"] == results["n_pool"]) & ~results["augment_only"].astype(bool)]
    if "auroc_by_type" in rows:
        rows = rows[rows["auroc_by_type"].fillna("").astype(str) != ""]
    if "auroc_by_type" not in rows or rows.empty:
        why = "the sizes run do not include the full training set ('max')" if not \
            (results["n_train"] == results["n_pool"]).any() else \
            "the category has one defect type (or the results were made before lowdata kept it)"
        return Markdown(f"*No AUROC by defect type: {why}.*")
    types = pd.DataFrame([json.loads(t) for t in rows["auroc_by_type"]], index=rows.index)
    table = pd.concat([rows[["method", "aug_factor", "auroc"]], types], axis=1).rename(columns={"auroc": "all"})
    out = table.groupby(["method", "aug_factor"]).mean()  # sorted by method, then factor
    out = out.iloc[sorted(range(len(out)), key=lambda i: (method_order(out.index[i][0]), out.index[i][1]))]
    out.index = pd.MultiIndex.from_tuples([(method_label(m), f"x{f}" if f else "none") for m, f in out.index],
                                          names=["method", "augmentation"])
    return out[["all", *sorted(types.columns)]].round(3)

