"""An inspection model: fitted on a few good images, saved, loaded, and scoring new images.

This is the practitioner's side of the paper: with about ten images of good parts and no defect,
:func:`fit_model` encodes them (and, optionally, augmented copies) with a frozen backbone, fits a
detector, and sets a decision threshold from the good images alone (:mod:`lowdata.inspection.threshold`).
:meth:`InspectionModel.save` writes a self-describing model folder and :func:`load_model` reads it back,
both through :mod:`lowdata.inspection.store` (what a folder holds, and every check on reading it);
:meth:`InspectionModel.score` gives each new image a score and a verdict (a detector that gives maps,
PaDiM, also gives heatmaps: :meth:`InspectionModel.write_overlays`).
"""

from __future__ import annotations

import datetime
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.version import __version__
from ..core.atomic import atomic_path
from ..core.errors import LowdataError
from ..core.machine import usable_cpus
from ..autoaug.search import SearchConfig, check_search_images, search_policy
from ..autoaug.space import DEFAULT_SPACE, check_space
from ..data.augment import AugmentPolicy, policy_for
from ..data.images import read_image
from ..detectors.inputs import stack_maps
from ..detectors.crossfit import fit_on_pool, fit_rows
from ..detectors.registry import check_method, make_detector, method_params, method_spec
from ..features.backbones import load_backbone
from ..features.encode import cache_for, encode
from ..features.embeddings import Embeddings
from ..features.pool import FeaturePool, encode_augmented
from .inputs import check_sizes, check_test_views, collect_images, distinct_images
from .overlays import heatmap_overlay, plan_overlays
from .model_format import FORMAT, FORMAT_VERSION
from .store import MODEL_FILE, read_model, write_model
from .threshold import (DEFAULT_FPR, DEFAULT_RULE, MAX_THRESHOLD, MIN_THRESHOLD, Threshold, check_rule,
                        threshold_from_scores)

MIN_IMAGES = 5


@dataclass
class InspectionModel:
    """A fitted detector, its threshold and everything needed to score new images the same way."""

    detector: object
    meta: dict
    backbone: object | None = None  # built on first use; checked against meta["backbone"]

    @property
    def method(self) -> str:
        return self.meta["detector"]["method"]

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    @property
    def gives_maps(self) -> bool:
        """Whether the detector gives anomaly maps (heatmaps)."""
        return self.detector.gives_maps

    @property
    def input_size(self) -> int:
        return int(self.meta["backbone"]["input_size"])

    @property
    def test_views(self) -> int:
        """K: each image is scored as the mean over it and K augmented views (0: the image alone)."""
        aug = self.meta.get("augmentation") or {}
        k = int(aug.get("test_views", 0))
        if k > int(aug.get("copies", 0)):  # the threshold was set with K copies of each held-out image
            raise LowdataError(f"this model asks for {k} test-time views but was fitted with {aug.get('copies')} "
                               "copies of each image: is model.json damaged?")
        return k

    def describe(self) -> str:
        m, t = self.meta, Threshold.from_dict(self.meta["threshold"])
        aug = m["augmentation"]
        found = m.get("policy_search")
        chosen = f", chosen automatically: fitness {found['fitness']:.3f} over {found['candidates']} candidates" \
            if found else ""
        copies = f" + {aug['copies']} augmented copies each (policy {aug['policy']['name']}{chosen})" if aug else \
            (f" without augmentation (the policy search's choice: fitness {found['fitness']:.3f} over "
             f"{found['candidates']} candidates)" if found else "")
        views = f"; each image scored with {self.test_views} test-time views (mean score)" if self.test_views else ""
        return (f"{self.method} on {m['training']['n_images']} images{copies}; backbone {m['backbone']['name']} "
                f"at {self.input_size} px{views}; threshold {t.describe()}")

    # ---------------------------------------------------------------------------------- backbone
    def attach_backbone(self, backbone=None):
        """Use ``backbone`` (or build the model's) after checking that it computes the same features."""
        want = self.meta["backbone"]
        runtime = want.get("runtime", "tensorflow")  # a model file without one was written before ONNX Runtime
        bb = backbone if backbone is not None else load_backbone(want["name"], want["input_size"], runtime=runtime)
        if bb.runtime is not None and bb.runtime != runtime:
            raise LowdataError(f"this model's features were computed by {runtime}, this backbone runs on {bb.runtime}: "
                               f"its threshold would be applied to other features (they differ in the last bits); "
                               f"score with a {runtime} backbone (LOWDATA_RUNTIME={runtime}), or fit the model again")
        if bb.name != want["name"] or bb.input_size != want["input_size"]:
            raise LowdataError(f"this model was fitted with {want['name']} at {want['input_size']} px, "
                               f"not {bb.name} at {bb.input_size} px")
        if bb.weights_digest != want["weights_digest"]:
            raise LowdataError(f"this model was fitted with {want['name']} weights of digest "
                               f"{want['weights_digest'][:16]}..., but the weights here have digest "
                               f"{bb.weights_digest[:16]}...: the features would differ. Install the weights the "
                               "model was fitted with, or fit the model again")
        if [list(s) for s in bb.level_shapes] != [list(s) for s in want["level_shapes"]]:
            raise LowdataError(f"this model expects features of shapes {want['level_shapes']}, but {bb.name} at "
                               f"{bb.input_size} px gives {[list(s) for s in bb.level_shapes]}")
        self.backbone = bb
        return bb

    # ------------------------------------------------------------------------------------ scoring
    def _embed(self, paths: Sequence[Path], cache_dir, progress: bool):
        bb = self.backbone or self.attach_backbone()
        return encode(bb, list(paths), cache_for(bb, cache_dir), progress=progress, desc="scoring",
                      maps=self.detector.consumes == "maps")

    def _score_features(self, emb, views=()):
        """Scores and maps of ``emb``; with ``views`` (their embeddings, view by view), each score is the mean over
        the image and its views, and the maps stay the image's own."""
        scores, maps = self.detector.scores_and_maps(emb)
        if views:
            scores = (np.asarray(scores, float) + sum(self.detector.anomaly_score(v) for v in views)) / (len(views) + 1)
        return scores, maps

    def _features(self, paths, cache_dir, progress: bool):
        """The images' scores and maps, each image encoded once and its test-time views (the training copies'
        policy and seed) keyed by the content hashes that encoding computed."""
        emb = self._embed(paths, cache_dir, progress)
        if not self.test_views:
            return self._score_features(emb)
        aug = self.meta["augmentation"]
        bb = self.backbone or self.attach_backbone()
        return self._score_features(emb, encode_augmented(bb, paths, list(emb.keys), cache_for(bb, cache_dir),
                                AugmentPolicy.from_dict(aug["policy"]), self.test_views, int(aug["seed"]), progress,
                                maps=self.detector.consumes == "maps"))

    def score(self, images, *, cache_dir=None, progress: bool = True, return_maps: bool = False):
        """Score and verdict of each image (a file, a folder, or a list of them): a DataFrame with the
        columns image, score, threshold, ratio (score / threshold) and verdict (``anomalous`` when the
        score is above the threshold, else ``normal``). With ``return_maps``, also the ``(n, h, w)`` anomaly
        maps on the feature grid (``None`` when the detector gives none: PaDiM's are Mahalanobis distances). ``cache_dir``: keep the images' embeddings
        in that cache (default: a temporary one, removed after scoring)."""
        paths = collect_images(images)
        check_sizes(paths, self.input_size, self.meta["training"]["image_sizes"])
        if cache_dir is None:  # new parts are scored once: their maps go to a temporary cache, then away
            with tempfile.TemporaryDirectory(prefix="lowdata-score-") as tmp:
                scores, maps = self._features(paths, tmp, progress)
        else:
            scores, maps = self._features(paths, cache_dir, progress)
        t = self.threshold
        if not (np.isfinite(t) and MIN_THRESHOLD <= t <= MAX_THRESHOLD):  # never a verdict from a threshold that cannot judge
            raise LowdataError(f"the model's threshold {t!r} is not a number from {MIN_THRESHOLD:g} to {MAX_THRESHOLD:g}")
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):  # NaN > t is False: a NaN score would pass as "normal"
            raise LowdataError(f"the score of {paths[bad[0]]} is {scores[bad[0]]}"
                               + (f" (and {len(bad) - 1} more images)" if len(bad) > 1 else "")
                               + ": no verdict can be given; is the model damaged?")
        with np.errstate(over="ignore"):  # a ratio past the float range is inf (null in JSON), not a warning
            ratio = scores / t
        df = pd.DataFrame({"image": [str(p) for p in paths], "score": scores, "threshold": t,
                           "ratio": ratio, "verdict": np.where(scores > t, "anomalous", "normal")})
        return (df, maps) if return_maps else df

    def heatmaps(self, images, *, cache_dir=None, progress: bool = True) -> np.ndarray:
        """``(n, s, s)`` heatmaps at the input size (bilinear, smoothed as the detector declares), for a
        detector that gives maps (PaDiM)."""
        if not self.gives_maps:
            raise LowdataError(f"heatmaps need a model whose detector gives maps (padim, patchcore); this one is {self.method}")
        _, maps = self.score(images, cache_dir=cache_dir, progress=progress, return_maps=True)
        return self.detector.heatmaps(maps=maps, size=self.input_size)

    def write_overlays(self, scores, maps: np.ndarray, out_dir: str | Path) -> list[Path]:
        """One PNG per scored image in ``out_dir``, named ``<image stem>.heatmap.png``: the image at its own
        size under the heatmap (colours from half the threshold to 1.5 times it), the region above the
        threshold outlined, and the score and verdict in the title. ``scores``/``maps``: :meth:`score` with
        ``return_maps=True``. A file lowdata did not write there (listed in the folder's
        ``.lowdata-heatmaps.json``) is never replaced, and a folder holding a scored image is refused."""
        if not self.gives_maps:
            raise LowdataError(f"heatmaps need a model whose detector gives maps (padim, patchcore); this one is {self.method}")
        paths = [Path(p) for p in scores["image"]]
        out_dir = Path(out_dir)
        targets = plan_overlays(out_dir, paths)
        written = []
        for (_, row), m, path, target in zip(scores.iterrows(), maps, paths, targets):
            img = read_image(path)
            kind = f" [{row['defect_type']}]" if "defect_type" in row else ""
            fig = heatmap_overlay(img, m, self.threshold, sigma=self.detector.smoothing(img.shape[0], self.input_size),
                                  title=f"{Path(row['image']).name}{kind}: {row['score']:.1f} ({row['verdict']})")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=100)
            written.append(target)
        return written

    # ----------------------------------------------------------------------------------- saving
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (:func:`lowdata.inspection.store.write_model`); returns the path of
        ``model.json``. A folder that is neither empty nor a lowdata model is refused."""
        self.meta = write_model(directory, self.meta, self.detector)
        return Path(directory) / MODEL_FILE


def load_model(directory: str | Path, *, allow_other_version: bool = False) -> InspectionModel:
    """Read a model folder written by :meth:`InspectionModel.save`, every part checked before use
    (:func:`lowdata.inspection.store.read_model`); the backbone is checked when it is first used."""
    detector, meta = read_model(directory, allow_other_version=allow_other_version)
    return InspectionModel(detector, meta)


def fit_model(images, method: str = "maha-lw", *, backbone="efficientnet-lite0", input_size: int | None = None,
              aug: str | Path | None = None, copies: int = 10, fpr: float | None = None, rule: str | None = None,
              folds: int | None = None, seed: int = 0, cache_dir=None, progress: bool = True,
              params: dict | None = None, search=None, search_space: dict | None = None,
              test_aug: int = 0) -> InspectionModel:
    """Fit an inspection model on good images (a folder, files, or a list of them; at least 5).

    ``backbone``: a name or a loaded :class:`~lowdata.features.base.Backbone`. ``aug``: ``None`` (no
    augmentation), a policy (a Table 4 category, ``'default'``, a ``.json`` file) giving ``copies``
    augmented copies of each image, drawn from ``seed``, or ``'auto'``: the policy chosen for these images and
    this method by :func:`lowdata.autoaug.search.search_policy` (``search``: its
    :class:`~lowdata.autoaug.search.SearchConfig`, seeded by ``seed`` by default; ``search_space``: its space),
    recorded with its fitness in ``model.json`` (``policy_search``). ``rule``, ``fpr``, ``folds``: the threshold
    (:mod:`lowdata.inspection.threshold`; default: log-normal bound at a 5 % false-positive rate, leave-one-out up to
    10 images). ``params``: the detector's parameters by name (:attr:`~lowdata.detectors.base.Detector.parameters`;
    a text is read as the parameter's type, as ``--param NAME=VALUE``). ``test_aug``: K test-time views: every
    image the model scores is scored as the mean over it and K augmented views made with the training copies'
    policy and seed (at most ``copies``; the threshold's out-of-fold scores are means over each held-out image and
    its first K copies, which its fold never saw). Duplicate files (same bytes) are used once, with a warning.
    """
    t_start = time.perf_counter()
    rule = DEFAULT_RULE if rule is None else rule
    fpr = DEFAULT_FPR if fpr is None else fpr
    check_method(method)
    params = method_params([method], params)[method]
    check_rule(rule, fpr, method)
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < (1 if aug else 0):
        raise LowdataError(f"copies must be a whole number of at least 1 with augmentation, got {copies!r}")
    auto = isinstance(aug, str) and aug == "auto"
    policy = policy_for("", aug) if aug not in (None, "none") and not auto else None
    if auto:
        search = (SearchConfig(seed=seed) if search is None else search).validate()
        space = check_space(DEFAULT_SPACE if search_space is None else search_space)
    factor = int(copies) if policy is not None else 0
    test_aug = check_test_views(test_aug, aug, int(copies), rule)

    paths, hashes, dupes = distinct_images(collect_images(images, "training images"))
    if len(paths) < MIN_IMAGES:
        where = Path(images) if isinstance(images, (str, Path)) else "the images given"
        raise LowdataError(f"{where} has {len(paths)} distinct image(s); a model needs at least {MIN_IMAGES} "
                           "good images")
    if auto:  # too few images for the search's folds: said before the backbone is loaded
        check_search_images(len(paths), search.folds, method)
    t_load = time.perf_counter()
    bb = load_backbone(backbone, input_size) if isinstance(backbone, str) else backbone
    t_backbone = time.perf_counter() - t_load
    sizes = check_sizes(paths, bb.input_size)

    cache = cache_for(bb, cache_dir)
    searched = None
    if auto:  # the policy is chosen from these images alone: held-out good images against synthetic defects
        searched = search_policy(paths, method, bb, cache, search, space=space, hashes=hashes, progress=progress,
                                 params=params)
        policy = None if searched.best.is_identity() else searched.best
        factor = int(copies) if policy is not None else 0
        if policy is None and test_aug:
            warnings.warn(f"the search chose no augmentation: the model scores without the {test_aug} test-time "
                          "views asked for (views of a policy it never saw in training would look anomalous)",
                          stacklevel=2)
            test_aug = 0
    t0 = time.perf_counter()
    fresh = method_spec(method)
    maps = fresh.consumes == "maps"  # a detector of pooled vectors: no maps kept on disk
    emb = encode(bb, paths, cache, keys=hashes, progress=progress, desc="encoding", maps=maps)
    copies_emb = encode_augmented(bb, paths, hashes, cache, policy, factor, seed, progress, maps=maps) \
        if factor else []
    allp = Embeddings.concat([emb] + copies_emb)
    maps = stack_maps(allp, 256) if fresh.consumes == "maps" else None
    t_encode = time.perf_counter() - t0
    pool = FeaturePool(list(allp.pooled), maps, len(paths), factor)
    note = make_detector(method, **params).size_note(len(allp), maps.shape[1:] if maps is not None else None)
    if note:
        warnings.warn(note, stacklevel=2)
    if rule == "chi2":
        t1 = time.perf_counter()
        det = fit_rows(pool, np.arange(len(paths)), method, factor, params)
        t_fit, t_thr = time.perf_counter() - t1, 0.0
        thr = threshold_from_scores(None, rule, fpr, seed=seed, dims=pool.dims)
    else:
        det, (k, oof), t_fit, t_thr = fit_on_pool(pool, np.arange(len(paths)), method, factor, folds=folds, seed=seed,
                                                  params=params, views=test_aug)
        thr = threshold_from_scores(oof, rule, fpr, folds=k, seed=seed)
    if thr.note:
        warnings.warn(thr.note, stacklevel=2)

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "lowdata_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backbone": {"name": bb.name, "input_size": bb.input_size, "weights_digest": bb.weights_digest,
                     "levels": list(bb.levels), "level_shapes": [list(s) for s in bb.level_shapes],
                     **({"runtime": bb.runtime} if bb.runtime else {})},
        "preprocessing": bb.preprocessing.describe(),
        "detector": {"method": method, "score": det.score_definition},
        "threshold": thr.to_dict(),
        "augmentation": None if policy is None else {"policy": policy.to_dict(), "digest": policy.digest(),
                                                     "copies": factor, "seed": seed,
                                                     **({"test_views": test_aug} if test_aug else {})},
        "policy_search": None if searched is None else searched.summary(),
        "training": {"n_images": len(paths), "folder": str(Path(images)) if isinstance(images, (str, Path)) else None,
                     "files": [{"name": p.name, "sha256": h.split("-")[0]} for p, h in zip(paths, hashes)],
                     "image_sizes": sorted([list(s) for s in sizes]), "duplicates_dropped": dupes, "seed": seed},
        "timings": {"backbone_load_s": round(t_backbone, 4), "encode_s": round(t_encode, 4),
                    "detector_fit_s": round(t_fit, 4), "threshold_s": round(t_thr, 4),
                    "total_s": round(time.perf_counter() - t_start, 4), "machine": platform.machine(),
                    "cpus": usable_cpus(), "policy_search_s": round(searched.seconds, 4) if searched else 0.0,
                    # the copies share one encoding call, so its count is taken once
                    "encoded": emb.stats.encoded + (copies_emb[0].stats.encoded if copies_emb else 0)},
    }
    return InspectionModel(det, meta, bb)
