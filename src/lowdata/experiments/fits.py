"""The study's fits (:func:`fit_jobs`): each :class:`~lowdata.experiments.design.Job` fitted on its seeded subset
(and copies) and scored on the test set, from embeddings given or read from the cache: the same rows here or on a
worker (:class:`FitPlan` is what a batch needs, by reference to the cache)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.dataset import CategoryData, load_masks
from ..detectors.registry import make_detector, method_spec
from ..features.cache import EmbeddingCache
from ..features.embeddings import Embeddings, map_rows, read_embeddings
from ..metrics import auroc_by_type, fit_metrics
from .design import Job, StudyConfig, draw_subset

@dataclass
class FitPlan:
    """What a batch of a category's fits needs, by reference to the cache (picklable: sent to workers)."""

    data: CategoryData
    cache: EmbeddingCache
    train_keys: list[str]
    test_keys: list[str]
    copy_keys: list[list[str]]  # per copy index 1..max factor, the keys of every training image's copy
    config: StudyConfig
    base: dict
    view_keys: list[list[str]] = field(default_factory=list)  # per view 1..K, the keys of every test image's view


def _fit_inputs(plan: FitPlan, jobs, embeddings=None) -> dict:
    """Embeddings (given, or read from the cache) and, when a job's detector consumes maps, the masks and the test
    and training maps, memory-mapped from their feature packs and aligned on read: the same inputs serial or
    distributed."""
    if embeddings is None:
        embeddings = (read_embeddings(plan.cache, plan.train_keys), read_embeddings(plan.cache, plan.test_keys),
                      [read_embeddings(plan.cache, k) for k in plan.copy_keys],
                      [read_embeddings(plan.cache, k) for k in plan.view_keys])
    train, test, copies, views = (*embeddings, [])[:4] if len(embeddings) == 3 else embeddings
    out = {"train": train, "test": test, "copies": copies, "views": views, "test_maps": None, "masks": None,
           "pool_maps": None, "view_maps": []}
    maps_jobs = [j for j in jobs if method_spec(j.method).consumes == "maps"]
    if maps_jobs:  # nothing to load when no job needs maps
        out["test_maps"] = map_rows(plan.cache, plan.test_keys)
        out["view_maps"] = [map_rows(plan.cache, k) for k in plan.view_keys]
        if any(s.mask_path is not None for s in plan.data.test):
            size = (plan.config.pixel_size, plan.config.pixel_size)
            out["masks"] = load_masks(plan.data.test, size)
        # the training pool: the originals, then each copy index the jobs use
        factor = max(j.factor for j in maps_jobs)
        out["pool_maps"] = map_rows(plan.cache, plan.train_keys + [k for c in range(factor) for k in plan.copy_keys[c]])
    return out


def fit_jobs(plan: FitPlan, jobs: list[Job], embeddings=None, on_row=None, progress: bool = False) -> list[dict]:
    """The result rows of ``jobs`` (:class:`~lowdata.experiments.design.Job`): each fit on its
    seeded subset (and copies), scored on the test set: one row per value K of the study's ``test_aug``, the
    scores averaged over each test image and its first K augmented views (``views``: their embeddings or maps).
    Serial runs pass their ``embeddings`` (train, test, copies[, views]); workers read them from the cache.
    ``on_row(row)`` is called after each row."""
    config, base = plan.config, plan.base
    x = _fit_inputs(plan, jobs, embeddings)
    train, test, copies, test_maps, masks, pool_maps = (x[k] for k in ("train", "test", "copies", "test_maps", "masks",
                                                                      "pool_maps"))
    views, view_maps = x["views"], x["view_maps"]
    n_pool = len(plan.data.train)
    labels = plan.data.test_labels
    types = [s.defect_type for s in plan.data.test]
    rows, chain = [], None  # chain: (series, subset, sums) of the last nested fit that can grow

    def picks_of(idx, f, only):
        return np.concatenate(([] if only else [idx]) + [(c + 1) * n_pool + idx for c in range(f)]).astype(np.intp)

    def images(det, idx, f, only):  # the same images, in the same order, as maps (feature packs) or embeddings
        if det.consumes == "maps":
            return pool_maps.subset(picks_of(idx, f, only))
        return Embeddings.concat(([] if only else [train.subset(idx)]) + [copies[c].subset(idx) for c in range(f)])

    for n, r, f, only, m in jobs:
        idx = draw_subset(n_pool, n, config.seed, r, config.subsets)
        det = make_detector(m, **config.params_of(m))
        grow = config.subsets == "nested" and det.incremental
        fit_set = images(det, idx, f, only)
        t0 = time.perf_counter()
        if grow:  # the series (replicate, factor, method) goes on: its running sums grow by the new images
            series = (r, f, only, m)
            same = chain is not None and chain[0] == series and np.isin(chain[1], idx).all()
            added = images(det, np.setdiff1d(idx, chain[1]), f, only) if same else None
            sums = det.fit_nested(fit_set, added, chain[2] if same else None)
            chain = (series, idx, sums) if sums is not None else None
        else:
            det.fit(fit_set)
        t1 = time.perf_counter()
        scores, maps = det.scores_and_maps(test_maps if det.consumes == "maps" else test)
        t2 = time.perf_counter()
        each = {0: scores}  # K -> the test images' scores with K views (mean of the image's and its views')
        if max(config.test_aug) > 0:
            total = np.asarray(scores, dtype=float).copy()
            for k, view in enumerate(view_maps if det.consumes == "maps" else views, start=1):
                total += det.anomaly_score(view)
                each[k] = total / (k + 1)
        t3 = time.perf_counter()
        made = []  # the heatmaps, made once: every K's pixel metrics are the un-augmented image's

        def heatmaps():
            if not made:
                made.append(det.heatmaps(maps=maps, size=config.pixel_size, reference=det.smoothing_at))
            return made[0]

        for k in config.test_aug:
            s = each[k]
            metrics = fit_metrics(labels, s, masks=masks if det.gives_maps else None, heatmaps=heatmaps)
            row = {**base, "method": m, "n_train": int(n), "replicate": int(r), "aug_factor": int(f),
                   "augment_only": bool(only), "test_aug": int(k), "n_fit": len(fit_set), **metrics,
                   "auroc_by_type": json.dumps(by_type) if (by_type := auroc_by_type(labels, s, types)) else "",
                   "fit_seconds": t1 - t0, "score_seconds": (t2 - t1) + (t3 - t2) * k / max(1, len(each) - 1),
                   "params": config.params_key(m), "skipped": "", "subset": " ".join(map(str, idx))}
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
