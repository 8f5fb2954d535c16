"""How well the threshold rules keep their promise: the false-positive rate they give on held-out images.

:func:`evaluate_thresholds` draws ``n`` training images per replicate (seeded as the study's subsets), fits
each method on them (with ``factor`` augmented copies each), sets each rule's threshold from those images
alone, and scores every image not drawn: the other training images and the test set. The rules are the
product's (:mod:`lowdata.inspection.threshold`), passed in by the caller: the experiments measure them
without importing the product.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..core.errors import LowdataError
from ..data.augment import policy_for
from ..detectors.crossfit import fit_on_pool
from ..detectors.registry import uses_maps
from ..features.encode import encode, source_key
from ..features.embeddings import Embeddings
from ..features.pool import FeaturePool, encode_augmented
from ..metrics import image_auroc
from .design import draw_subset

#: threshold(oof_scores, rule, fpr, *, folds, seed, dims) -> an object with .value and .note
ThresholdFn = Callable[..., object]


def evaluate_thresholds(data, backbone, cache, threshold: ThresholdFn, methods: Sequence[str] = ("knn", "maha-lw", "padim"),
                        rules: Sequence[str] = ("lognormal", "conformal"), n: int = 10, reps: int = 5,
                        fprs: Sequence[float] = (0.05,), factor: int = 0, seed: int = 0,
                        progress: bool = True) -> pd.DataFrame:
    """The false-positive rate each rule's threshold gives on *held-out* normal images.

    ``threshold(oof_scores, rule, fpr, folds=, seed=, dims=)`` sets a threshold (an object with ``value``
    and ``note``) from a model's out-of-fold scores: the product's rules
    (:func:`lowdata.inspection.threshold.threshold_from_scores`), given by the caller, who checks the
    rules and rates first; the chi-square rule is measured for Gaussian detectors only.

    Per replicate, ``n`` training images are drawn (seeded as the study's subsets); a model is fitted on
    them (with ``factor`` copies each) and its threshold set from them alone; then every normal image not
    drawn (the other training images and the test set's good ones) and every defective test image is
    scored. One row per (method, rule, target rate, replicate): threshold, measured false-positive rate
    on the held-out normal images, true-positive rate on the defects, and the AUROC (for context).
    """
    n_pool = len(data.train)
    if n > n_pool:
        raise LowdataError(f"{data.category}: n={n} is more than its {n_pool} training images")
    draws = [draw_subset(n_pool, n, seed, rep) for rep in range(reps)]
    used = np.unique(np.concatenate(draws))
    paths = [data.train[i].path for i in used]
    label = f"{data.source}/{data.category}"
    train = encode(backbone, [s.path for s in data.train], cache, progress=progress, desc=f"{data.category} train",
                   label=label)
    test = encode(backbone, [s.path for s in data.test], cache, progress=progress, desc=f"{data.category} test",
                  label=label)
    need_maps = uses_maps(methods)
    copies = encode_augmented(backbone, paths, [source_key(p) for p in paths], cache, policy_for(data.category),
                              factor, seed, progress, maps=need_maps, label=label) if factor else []
    allp = Embeddings.concat([train.subset(used)] + copies)

    def maps_of(emb):  # memory-mapped from the feature packs, aligned on read: no copy of every map in memory
        return emb.map_rows() if need_maps else None

    pool = FeaturePool(list(allp.pooled), maps_of(allp), len(used), factor)
    held = Embeddings.concat([train, test])
    held_maps = maps_of(held)
    labels = np.concatenate([np.zeros(n_pool, int), data.test_labels])
    row_in_pool = {int(g): j for j, g in enumerate(used)}
    rows = []
    for rep, draw in enumerate(draws):
        keep = np.ones(len(labels), bool)
        keep[draw] = False  # the drawn images are not held out
        for method in methods:
            det, (k, oof), t_fit, t_thr = fit_on_pool(pool, [row_in_pool[int(g)] for g in draw], method, factor,
                                                      folds=None, seed=seed)
            feats = held_maps.subset(np.flatnonzero(keep)) if det.consumes == "maps" else [p[keep] for p in held.pooled]
            scores = det.anomaly_score(feats)
            good, bad = scores[labels[keep] == 0], scores[labels[keep] == 1]
            dims = pool.dims
            for rule, fpr in ((r, f) for r in rules for f in fprs):
                if rule == "chi2" and not det.gaussian:
                    continue
                thr = threshold(oof, rule, fpr, folds=k, seed=seed, dims=dims)
                rows.append({"category": data.category, "method": method, "rule": rule, "replicate": rep, "n": n,
                             "aug_factor": factor, "fpr_target": fpr, "threshold": thr.value,
                             "fpr_heldout": float((good > thr.value).mean()), "n_heldout_good": len(good),
                             "tpr_defects": float((bad > thr.value).mean()) if len(bad) else float("nan"),
                             "note": thr.note,
                             "n_defects": len(bad), "auroc": image_auroc(labels[keep], scores) if len(bad) else float("nan"),
                             "fit_s": t_fit, "oof_s": t_thr})
    return pd.DataFrame(rows)
