"""Refining a polluted training set: SROC (our reading) and an ensemble baseline.

The second paper (Cordier, Gutierrez et al. 2022, *Data refinement for fully unsupervised visual
inspection using pre-trained networks*) names SROC, a *Simple Refinement strategy for One-Class
classification*, without a text we can read. This module is **our explicit reading** of it; every
choice is a parameter of :class:`SROCConfig`, and the book's pollution chapter measures each one:

1. Score every training image *out of fold*: the training images are split into ``folds`` groups
   (seeded); each group is scored by a detector fitted on the other groups, so no image judges
   itself (with augmentation, an image's copies stay in its group).
2. Flag the images whose score is above a threshold:

   * ``"zscore"``: robust z-score ``(s - median) / (1.4826 MAD)`` above ``threshold`` (default 3);
   * ``"quantile"``: above the ``threshold`` quantile of the scores (e.g. 0.9: the top 10 % each round);
   * ``"chi2"``: for the Mahalanobis scorers only: above the score a point would have if its squared
     distance were at the ``1 - threshold`` quantile of a chi-square with the level's dimension, at
     every level (a Gaussian's tail; ``threshold`` is then alpha, e.g. 0.001).
3. Remove them and repeat, until a round removes nothing or after ``max_rounds`` rounds; never below
   ``min_keep`` of the images, and not once fewer than ``2 * folds`` images are left.

The *scorer* that judges the training images is the method being refined unless ``scorer`` names
another (e.g. ``maha-lw``, cheap and smooth).

Baseline :func:`ensemble_refine`, in the spirit of Yoon et al. 2021 (*Self-supervise, Refine, Repeat*):
``members`` detectors fitted on disjoint random parts of the training set; each image is judged by the
members that did not see it, against each member's ``quantile`` of the scores it gives to the images
it did not see; an image is removed when all its judges flag it; repeated like SROC.

Both work on any ``fit_score(train_rows, score_rows) -> scores`` callable, so they serve every
detector, with or without augmented copies (see :mod:`lowdata.experiments.pollution`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.errors import LowdataError
from ..data.images import list_images
from ..detectors.inputs import stack_maps
from ..detectors.crossfit import FitScore, folds_of, out_of_fold_scores
from ..detectors.mahalanobis import chi2_score
from ..detectors.registry import check_method, make_detector, method_spec
from ..features.backbones import load_backbone
from ..features.encode import cache_for, encode

RULES = ("zscore", "quantile", "chi2")


@dataclass(frozen=True)
class SROCConfig:
    folds: int = 5
    rule: str = "zscore"
    threshold: float = 3.0
    max_rounds: int = 5
    min_keep: float = 0.5
    scorer: str | None = None  # None: the refined method itself
    seed: int = 0

    def validate(self) -> "SROCConfig":
        if self.rule not in RULES:
            raise LowdataError(f"unknown SROC rule {self.rule!r}; choose from {', '.join(RULES)}")
        if not isinstance(self.folds, int) or self.folds < 2:
            raise LowdataError(f"SROC folds must be an integer >= 2, got {self.folds!r}")
        if not isinstance(self.max_rounds, int) or self.max_rounds < 1:
            raise LowdataError(f"SROC max_rounds must be an integer >= 1, got {self.max_rounds!r}")
        if not 0 < self.min_keep <= 1:
            raise LowdataError(f"SROC min_keep must be in (0, 1], got {self.min_keep!r}")
        if self.rule == "quantile" and not 0 < self.threshold < 1:
            raise LowdataError(f"the quantile rule needs a threshold in (0, 1), got {self.threshold!r}")
        if self.rule == "chi2" and not 0 < self.threshold < 1:
            raise LowdataError(f"the chi2 rule needs alpha in (0, 1), got {self.threshold!r}")
        return self

    def label(self) -> str:
        return (f"folds={self.folds} rule={self.rule} t={self.threshold:g} rounds={self.max_rounds}"
                + (f" scorer={self.scorer}" if self.scorer else ""))


@dataclass
class Refinement:
    """The result: indices kept and removed (into the images given), and each round's record."""

    kept: np.ndarray
    removed: np.ndarray
    rounds: list[dict] = field(default_factory=list)
    scores: np.ndarray | None = None  # the last round's out-of-fold scores (of the images it scored)
    scored: np.ndarray | None = None  # which images those are


#: each rule's default threshold (``sroc_config(threshold=None)``)
DEFAULT_THRESHOLDS = {"zscore": 3.0, "quantile": 0.9, "chi2": 0.001}


def sroc_config(*, folds: int = 5, rule: str = "zscore", threshold: float | None = None, max_rounds: int = 5,
                scorer: str | None = None, seed: int = 0) -> "SROCConfig":
    """A checked :class:`SROCConfig`; ``threshold`` ``None`` takes the rule's default (:data:`DEFAULT_THRESHOLDS`)."""
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS.get(rule, 3.0)
    return SROCConfig(folds=folds, rule=rule, threshold=threshold, max_rounds=max_rounds, scorer=scorer,
                      seed=seed).validate()


def robust_z(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, float)
    med = np.median(s)
    mad = 1.4826 * np.median(np.abs(s - med))
    if mad == 0:
        mad = np.std(s) or 1.0
    return (s - med) / mad


def flag(scores: np.ndarray, rule: str, threshold: float, dims: Sequence[int] | None = None) -> np.ndarray:
    """Boolean mask of the scores above the rule's threshold."""
    s = np.asarray(scores, float)
    if rule == "zscore":
        return robust_z(s) > threshold
    if rule == "quantile":
        return s > np.quantile(s, threshold)
    if rule == "chi2":
        if not dims:
            raise LowdataError("the chi2 rule needs a Mahalanobis scorer (the levels' dimensions)")
        return s > chi2_score(dims, threshold)
    raise LowdataError(f"unknown SROC rule {rule!r}; choose from {', '.join(RULES)}")


def sroc(fit_score: FitScore, n: int, config: SROCConfig, dims: Sequence[int] | None = None) -> Refinement:
    """SROC on ``n`` training images (indices 0..n-1 for ``fit_score``)."""
    config.validate()
    keep = np.arange(n)
    rounds, scores, scored = [], None, keep
    for r in range(config.max_rounds):
        if len(keep) < 2 * config.folds:  # every fold model needs at least 2 images: stop refining here
            break
        scored = keep
        scores = out_of_fold_scores(fit_score, keep, config.folds, config.seed + r)
        drop = flag(scores, config.rule, config.threshold, dims)
        room = len(keep) - int(np.ceil(config.min_keep * n))
        if drop.sum() > room:  # never below min_keep: the highest scores go first
            order = np.argsort(-scores)
            drop = np.zeros(len(keep), bool)
            drop[order[:max(room, 0)]] = True
        rounds.append({"round": r + 1, "scored": len(keep), "removed": int(drop.sum()),
                       "dropped": keep[drop].tolist(), "scores": dict(zip(keep.tolist(), scores.tolist()))})
        if not drop.any():
            break
        keep = keep[~drop]
    return Refinement(kept=keep, removed=np.setdiff1d(np.arange(n), keep), rounds=rounds, scores=scores,
                      scored=scored)


def ensemble_refine(fit_score: FitScore, n: int, members: int = 5, quantile: float = 0.9, max_rounds: int = 5,
                    seed: int = 0, min_keep: float = 0.5) -> Refinement:
    """The ensemble baseline (see the module docstring)."""
    if not isinstance(members, int) or members < 2:
        raise LowdataError(f"the ensemble needs at least 2 members, got {members!r}")
    if not 0 < quantile < 1:
        raise LowdataError(f"the ensemble quantile must be in (0, 1), got {quantile!r}")
    keep = np.arange(n)
    rounds = []
    for r in range(max_rounds):
        if len(keep) < 2 * members:  # every member needs at least 2 images: stop refining here
            break
        part = folds_of(len(keep), members, seed + r)
        votes = np.ones(len(keep), bool)
        for j in range(members):
            others = part != j
            s = fit_score(keep[part == j], keep[others])
            votes[others] &= s > np.quantile(s, quantile)
        room = len(keep) - int(np.ceil(min_keep * n))
        if votes.sum() > room:
            votes[np.flatnonzero(votes)[max(room, 0):]] = False
        rounds.append({"round": r + 1, "scored": len(keep), "removed": int(votes.sum())})
        if not votes.any():
            break
        keep = keep[~votes]
    return Refinement(kept=keep, removed=np.setdiff1d(np.arange(n), keep), rounds=rounds)


def removal_quality(removed: np.ndarray, polluted: np.ndarray) -> dict:
    """Precision and recall of the removed images against the truly polluted ones (indices)."""
    removed, polluted = set(map(int, removed)), set(map(int, polluted))
    hit = len(removed & polluted)
    return {"removed": len(removed), "removed_defective": hit,
            "precision": hit / len(removed) if removed else float("nan"),
            "recall": hit / len(polluted) if polluted else float("nan")}


def refine_folder(folder, method: str = "maha-lw", backbone: str = "efficientnet-lite0", input_size: int | None = None,
                  config: SROCConfig = SROCConfig(), cache_dir=None, progress: bool = True):
    """SROC on an unlabeled folder of training images: one row per image with its last out-of-fold
    score, its robust z-score in that round, and the round that removed it (0: kept). Nothing is
    deleted."""
    config.validate()
    check_method(method)
    folder = Path(folder)
    if not folder.is_dir():
        raise LowdataError(f"no folder {folder}")
    paths = list_images(folder)
    need = 2 * config.folds
    if len(paths) < need:
        raise LowdataError(f"{folder} has {len(paths)} images; SROC with {config.folds} folds needs at least {need}")
    bb = load_backbone(backbone, input_size)
    emb = encode(bb, paths, cache_for(bb, cache_dir), progress=progress, desc="encoding")
    scorer = method_spec(config.scorer or method)
    if scorer.consumes == "maps":
        feats = stack_maps(emb, 256)

        def take(rows):
            return feats[rows]
    else:
        def take(rows):
            return [p[rows] for p in emb.pooled]

    def fit_score(tr, sc):
        return make_detector(scorer.name).fit(take(tr)).anomaly_score(take(sc))

    ref = sroc(fit_score, len(paths), config, [p.shape[1] for p in emb.pooled] if scorer.gaussian else None)
    removed_in = {i: r["round"] for r in ref.rounds for i in r["dropped"]}
    rows = []
    for i, p in enumerate(paths):
        last = max((r for r in ref.rounds if i in r["scores"]), key=lambda r: r["round"])
        z = robust_z(np.array(list(last["scores"].values())))[list(last["scores"]).index(i)]
        rows.append({"image": str(p), "score": last["scores"][i], "robust_z": z, "removed_in_round": removed_in.get(i, 0),
                     "verdict": "remove" if i in removed_in else "keep"})
    return pd.DataFrame(rows).sort_values("score", ascending=False).reset_index(drop=True)
