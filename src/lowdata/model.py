"""An inspection model: fitted on a few good images, saved, loaded, and scoring new images.

This is the practitioner's side of the paper: with about ten images of good parts and no defect,
:func:`fit_model` encodes them (and, optionally, augmented copies) with a frozen backbone, fits a
detector, and sets a decision threshold from the good images alone (:mod:`lowdata.threshold`).
:meth:`InspectionModel.save` writes a self-describing model folder, :func:`load_model` reads it back,
and :meth:`InspectionModel.score` gives each new image a score and a verdict (PaDiM models also give
heatmaps, :meth:`InspectionModel.write_overlays`).

A model folder holds two files, both written atomically:

* ``detector-<sha256[:12]>.npz``: the fitted detector's numeric arrays (``np.load`` with pickles
  off; no code is stored);
* ``model.json``, written last: the format and package version, the backbone (name, input size,
  weights digest, levels), the preprocessing, the detector's method and parameters, the threshold
  and how it was set, the augmentation policy, the training images (names, content hashes, sizes)
  and the timings, and the name and SHA-256 of the arrays file.

Because the arrays file is named by its content and ``model.json`` is replaced last, a folder always
holds a whole model: the old one until the new ``model.json`` lands, the new one after. A damaged or
truncated file is found by its digest at load. A model from another format or package version,
backbone or weights digest is refused with a message that says what differs.
"""

from __future__ import annotations

import datetime
import json
import platform
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import __version__
from .atomic import atomic_path, default_file_mode
from .digests import file_hash
from .cluster import usable_cpus
from .errors import LowdataError

FORMAT = "lowdata-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
MIN_IMAGES = 5
METHODS = ("knn", "maha-emp", "maha-lw", "padim")


# ------------------------------------------------------------------------------------------ images
def collect_images(inputs: str | Path | Sequence[str | Path], what: str = "images") -> list[Path]:
    """Image files from folders (their image files, sorted) and files, in the order given."""
    from .images import IMAGE_EXTENSIONS, list_images

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise LowdataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise LowdataError(f"{what}: no such file or folder: {p}")
    if not out:
        raise LowdataError(f"no {what} given")
    return out


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header; an unreadable file is an error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise LowdataError(f"cannot read image {path}: {exc}") from None


def _sizes_text(sizes: Counter) -> str:
    return ", ".join(f"{w}x{h} ({c})" for (w, h), c in sizes.most_common())


def check_sizes(paths: Sequence[Path], input_size: int, known: Sequence[Sequence[int]] | None = None) -> Counter:
    """The images' sizes; a warning when they differ from each other (or from ``known``, the sizes a model
    was fitted on), or are not square: every image is resized to ``input_size`` square, as the paper."""
    sizes = Counter(image_size(p) for p in paths)
    if len(sizes) > 1:
        warnings.warn(f"the images have {len(sizes)} different sizes: {_sizes_text(sizes)}; each is resized to "
                      f"{input_size}x{input_size} px (bilinear) before encoding", stacklevel=3)
    if known is not None:
        new = {s for s in sizes if list(s) not in [list(k) for k in known]}
        if new:
            warnings.warn(f"{sum(sizes[s] for s in new)} image(s) have a size the model was not fitted on "
                          f"({_sizes_text(Counter({s: sizes[s] for s in new}))}; fitted on "
                          f"{', '.join(f'{w}x{h}' for w, h in known)}); they are resized to {input_size}x{input_size} px",
                          stacklevel=3)
    if any(w != h for w, h in sizes):
        warnings.warn(f"non-square images ({_sizes_text(Counter({s: c for s, c in sizes.items() if s[0] != s[1]}))}) "
                      f"are stretched to {input_size}x{input_size} px: their aspect ratio is not kept", stacklevel=3)
    return sizes


# ------------------------------------------------------------------------------------------- model
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
    def input_size(self) -> int:
        return int(self.meta["backbone"]["input_size"])

    def describe(self) -> str:
        from .threshold import Threshold

        m, t = self.meta, Threshold.from_dict(self.meta["threshold"])
        aug = m["augmentation"]
        copies = f" + {aug['copies']} augmented copies each (policy {aug['policy']['name']})" if aug else ""
        return (f"{self.method} on {m['training']['n_images']} images{copies}; backbone {m['backbone']['name']} "
                f"at {self.input_size} px; threshold {t.describe()}")

    # ---------------------------------------------------------------------------------- backbone
    def attach_backbone(self, backbone=None):
        """Use ``backbone`` (or build the model's) after checking that it computes the same features."""
        from .backbones import load_backbone

        want = self.meta["backbone"]
        bb = backbone if backbone is not None else load_backbone(want["name"], want["input_size"])
        if bb.name != want["name"] or bb.input_size != want["input_size"]:
            raise LowdataError(f"this model was fitted with {want['name']} at {want['input_size']} px, "
                               f"not {bb.name} at {bb.input_size} px")
        if bb.weights_digest != want["weights_digest"]:
            raise LowdataError(f"this model was fitted with {want['name']} weights of digest "
                               f"{want['weights_digest'][:16]}..., but the weights here have digest "
                               f"{bb.weights_digest[:16]}...: the features would differ. Install the weights the "
                               "model was fitted with, or fit the model again")
        self.backbone = bb
        return bb

    # ------------------------------------------------------------------------------------ scoring
    def _embed(self, paths: Sequence[Path], cache_dir, progress: bool):
        from .encode import cache_for, encode

        bb = self.backbone or self.attach_backbone()
        return encode(bb, list(paths), cache_for(bb, cache_dir), progress=progress, desc="scoring")

    def _score_features(self, emb):
        if self.method == "padim":
            maps = self.detector.score_maps(emb)
            return maps.reshape(len(maps), -1).max(axis=1), maps
        return self.detector.score(emb), None

    def score(self, images, *, cache_dir=None, progress: bool = True, return_maps: bool = False):
        """Score and verdict of each image (a file, a folder, or a list of them): a DataFrame with the
        columns image, score, threshold, ratio (score / threshold) and verdict (``anomalous`` when the
        score is above the threshold, else ``normal``). With ``return_maps`` (PaDiM), also the
        ``(n, h, w)`` Mahalanobis maps on the feature grid. ``cache_dir``: keep the images' embeddings
        in that cache (default: a temporary one, removed after scoring)."""
        import pandas as pd

        import tempfile

        paths = collect_images(images)
        check_sizes(paths, self.input_size, self.meta["training"]["image_sizes"])
        if cache_dir is None:  # new parts are scored once: their maps go to a temporary cache, then away
            with tempfile.TemporaryDirectory(prefix="lowdata-score-") as tmp:
                scores, maps = self._score_features(self._embed(paths, tmp, progress))
        else:
            scores, maps = self._score_features(self._embed(paths, cache_dir, progress))
        t = self.threshold
        df = pd.DataFrame({"image": [str(p) for p in paths], "score": scores, "threshold": t,
                           "ratio": scores / t if t > 0 else np.inf,
                           "verdict": np.where(scores > t, "anomalous", "normal")})
        return (df, maps) if return_maps else df

    def heatmaps(self, images, *, cache_dir=None, progress: bool = True) -> np.ndarray:
        """PaDiM only: ``(n, s, s)`` heatmaps at the input size (bilinear, smoothed as PaDiM)."""
        if self.method != "padim":
            raise LowdataError(f"heatmaps need a PaDiM model; this one is {self.method}")
        _, maps = self.score(images, cache_dir=cache_dir, progress=progress, return_maps=True)
        return self.detector.heatmaps(maps=maps, size=self.input_size)

    def write_overlays(self, scores, maps: np.ndarray, out_dir: str | Path) -> list[Path]:
        """One PNG per scored image in ``out_dir``: the image at its own size under the heatmap (colours
        from half the threshold to 1.5 times it), the region above the threshold outlined, and the score
        and verdict in the title. ``scores``/``maps``: :meth:`score` with ``return_maps=True``."""
        from .images import read_image
        from .plots import heatmap_overlay

        if self.method != "padim":
            raise LowdataError(f"heatmaps need a PaDiM model; this one is {self.method}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        paths = [Path(p) for p in scores["image"]]
        # file stems name the overlays; where two images share a stem (000.png in two folders), the
        # folder's name goes in front of every overlay's name
        clash = len({p.stem for p in paths}) < len(paths)
        names = Counter()
        for (_, row), m, path in zip(scores.iterrows(), maps, paths):
            img = read_image(path)
            stem = f"{path.parent.name}-{path.stem}" if clash else path.stem
            names[stem] += 1
            name = f"{stem}.png" if names[stem] == 1 else f"{stem}-{names[stem]}.png"
            kind = f" [{row['defect_type']}]" if "defect_type" in row else ""
            fig = heatmap_overlay(img, m, self.threshold, sigma=self.detector.sigma * img.shape[0] / self.input_size,
                                  title=f"{Path(row['image']).name}{kind}: {row['score']:.1f} ({row['verdict']})")
            target = out_dir / name
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=100)
            written.append(target)
        return written

    # ----------------------------------------------------------------------------------- saving
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (see the module's docstring); returns the path of ``model.json``."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise LowdataError(f"{directory} exists and is not a folder")
        if directory.is_dir() and any(directory.iterdir()) and not (directory / MODEL_FILE).is_file():
            raise LowdataError(f"{directory} is not empty and holds no {MODEL_FILE}: not overwriting a folder "
                               "that is not a lowdata model")
        directory.mkdir(parents=True, exist_ok=True)
        params, arrays = self.detector.get_state()
        name, digest = _write_named_by_content(directory, arrays)
        meta = dict(self.meta)
        meta["detector"] = dict(meta["detector"], params=params)
        meta["arrays"] = {"file": name, "sha256": digest, "bytes": (directory / name).stat().st_size,
                          "names": sorted(arrays)}
        with atomic_path(directory / MODEL_FILE) as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=_json_default) + "\n")
        for old in directory.glob("detector-*.npz"):  # arrays of a model this one replaced
            if old.name != name:
                old.unlink()
        self.meta = meta
        return directory / MODEL_FILE


def _write_named_by_content(directory: Path, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write ``arrays`` to a temporary file in ``directory``, then rename it ``detector-<sha256[:12]>.npz``
    (atomic): the file of that name is always whole. Returns its name and SHA-256."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".detector-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        digest = file_hash(tmp)
        name = f"detector-{digest[:12]}.npz"
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, directory / name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return name, digest


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serializable")


def load_model(directory: str | Path, *, allow_other_version: bool = False) -> InspectionModel:
    """Read a model folder written by :meth:`InspectionModel.save`. Everything is checked: the format,
    the package version (another version is refused unless ``allow_other_version``), the arrays file's
    digest, and the arrays' shapes. The backbone is checked when it is first used."""
    from .detectors import detector_from_state

    directory = Path(directory)
    if directory.is_file() and directory.name == MODEL_FILE:  # the model's JSON file given for its folder
        directory = directory.parent
    if not directory.is_dir():
        raise LowdataError(f"model folder not found: {directory}")
    path = directory / MODEL_FILE
    if not path.is_file():
        raise LowdataError(f"{directory} is not a lowdata model: it has no {MODEL_FILE}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LowdataError(f"{path} is damaged or truncated (not valid JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LowdataError(f"{path} is not a lowdata model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise LowdataError(f"{path} has model format version {meta.get('format_version')!r}; this lowdata "
                           f"{__version__} reads version {FORMAT_VERSION}. Fit the model again with this version")
    if meta.get("lowdata_version") != __version__ and not allow_other_version:
        raise LowdataError(f"{path} was written by lowdata {meta.get('lowdata_version')}; this is lowdata "
                           f"{__version__}. Scores may differ between versions: fit the model again, or accept it "
                           "knowingly (--allow-other-version / allow_other_version=True)")
    try:
        arrays_info, method = meta["arrays"], meta["detector"]["method"]
        params = meta["detector"]["params"]
        for key in ("backbone", "threshold", "training"):
            meta[key]
    except (KeyError, TypeError) as exc:
        raise LowdataError(f"{path} lacks the entry {exc}: damaged, or not written by lowdata") from None
    npz = directory / arrays_info["file"]
    if not npz.is_file():
        raise LowdataError(f"the model's arrays file {npz} is missing")
    digest = file_hash(npz)
    if digest != arrays_info["sha256"]:
        raise LowdataError(f"{npz} is damaged or truncated: its SHA-256 is {digest[:16]}..., the model expects "
                           f"{arrays_info['sha256'][:16]}... ({npz.stat().st_size} of {arrays_info.get('bytes')} bytes)")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise LowdataError(f"cannot read {npz}: {exc}") from None
    return InspectionModel(detector_from_state(method, params, arrays), meta)


# --------------------------------------------------------------------------------------------- fit
def _fit_pool(pool, rows: np.ndarray, method: str, factor: int):
    from .detectors import make_detector

    return make_detector(method).fit(pool.take(method, pool.rows_with_copies(rows, factor)))


def fit_on_pool(pool, rows: Sequence[int], method: str, factor: int, *, folds: int | None, seed: int):
    """Fit ``method`` on the pool's images ``rows`` (with ``factor`` copies each) and score each of those
    images out of fold. Returns ``(detector, (folds, out-of-fold scores), fit seconds, scoring seconds)``."""
    from .pollution import fit_score_fn
    from .threshold import oof_scores

    rows = np.asarray(rows, int)
    t0 = time.perf_counter()
    det = _fit_pool(pool, rows, method, factor)
    t1 = time.perf_counter()
    base = fit_score_fn(method, pool, factor)

    def fit_score(train_idx, score_idx):  # indices into rows
        return base(rows[train_idx], rows[score_idx])

    oof = oof_scores(fit_score, len(rows), folds, seed)
    return det, oof, t1 - t0, time.perf_counter() - t1


def fit_model(images, method: str = "maha-lw", *, backbone="efficientnet-lite0", input_size: int | None = None,
              aug: str | Path | None = None, copies: int = 10, fpr: float | None = None, rule: str | None = None,
              folds: int | None = None, seed: int = 0, cache_dir=None, progress: bool = True) -> InspectionModel:
    """Fit an inspection model on good images (a folder, files, or a list of them; at least 5).

    ``backbone``: a name or a loaded :class:`~lowdata.backbones.Backbone`. ``aug``: ``None`` (no
    augmentation), or a policy (a Table 4 category, ``'default'``, a ``.json`` file) giving ``copies``
    augmented copies of each image, drawn from ``seed``. ``rule``, ``fpr``, ``folds``: the threshold
    (:mod:`lowdata.threshold`; default: log-normal bound at a 5 % false-positive rate, leave-one-out up to
    10 images). Duplicate files (same bytes) are used once, with a warning.
    """
    from .augment import policy_for
    from .backbones import load_backbone
    from .encode import Embeddings, cache_for, encode, source_key
    from .pollution import FeaturePool
    from .study import encode_augmented
    from .threshold import DEFAULT_FPR, DEFAULT_RULE, check_rule, threshold_from_scores

    t_start = time.perf_counter()
    rule = DEFAULT_RULE if rule is None else rule
    fpr = DEFAULT_FPR if fpr is None else fpr
    if method not in METHODS:
        raise LowdataError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    check_rule(rule, fpr, method)
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < (1 if aug else 0):
        raise LowdataError(f"copies must be a whole number of at least 1 with augmentation, got {copies!r}")
    policy = policy_for("", aug) if aug not in (None, "none") else None
    factor = int(copies) if policy is not None else 0

    paths = collect_images(images, "training images")
    hashes = [source_key(p) for p in paths]
    seen: dict[str, Path] = {}
    dupes = []
    keep = []
    for p, h in zip(paths, hashes):
        if h in seen:
            dupes.append(f"{p.name} (= {seen[h].name})")
        else:
            seen[h] = p
            keep.append((p, h))
    if dupes:
        warnings.warn(f"{len(dupes)} duplicate image(s) are used once: {', '.join(dupes[:5])}"
                      + (" ..." if len(dupes) > 5 else ""), stacklevel=2)
    paths, hashes = [p for p, _ in keep], [h for _, h in keep]
    if len(paths) < MIN_IMAGES:
        where = Path(images) if isinstance(images, (str, Path)) else "the images given"
        raise LowdataError(f"{where} has {len(paths)} distinct image(s); a model needs at least {MIN_IMAGES} "
                           "good images")
    t_load = time.perf_counter()
    bb = load_backbone(backbone, input_size) if isinstance(backbone, str) else backbone
    t_backbone = time.perf_counter() - t_load
    sizes = check_sizes(paths, bb.input_size)

    cache = cache_for(bb, cache_dir)
    t0 = time.perf_counter()
    emb = encode(bb, paths, cache, keys=hashes, progress=progress, desc="encoding")
    copies_emb = encode_augmented(bb, paths, hashes, cache, policy, factor, seed, progress) if factor else []
    allp = Embeddings.concat([emb] + copies_emb)
    maps = np.concatenate([m for m in _aligned(allp)]) if method == "padim" else None
    t_encode = time.perf_counter() - t0
    pool = FeaturePool(list(allp.pooled), maps, len(paths), factor)
    if method == "padim" and len(allp) > maps.shape[-1]:
        gb = maps.shape[1] * maps.shape[2] * maps.shape[3] ** 2 * 8 / 1e9
        warnings.warn(f"PaDiM on {len(allp)} images (copies included), more than its {maps.shape[-1]} features: "
                      f"the model stores a full precision matrix per location, about {gb:.1f} GB", stacklevel=2)
    if rule == "chi2":
        t1 = time.perf_counter()
        det = _fit_pool(pool, np.arange(len(paths)), method, factor)
        t_fit, t_thr = time.perf_counter() - t1, 0.0
        thr = threshold_from_scores(None, rule, fpr, seed=seed, dims=[p.shape[1] for p in pool.pooled])
    else:
        det, (k, oof), t_fit, t_thr = fit_on_pool(pool, np.arange(len(paths)), method, factor, folds=folds, seed=seed)
        thr = threshold_from_scores(oof, rule, fpr, folds=k, seed=seed)
    if thr.note:
        warnings.warn(thr.note, stacklevel=2)

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "lowdata_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backbone": {"name": bb.name, "input_size": bb.input_size, "weights_digest": bb.weights_digest,
                     "levels": list(bb.levels), "level_shapes": [list(s) for s in bb.level_shapes]},
        "preprocessing": {"color": "RGB, 0-255 (grayscale repeated to 3 channels, alpha dropped, 16-bit scaled)",
                          "resize": f"bilinear to {bb.input_size}x{bb.input_size} (aspect ratio not kept)",
                          "normalisation": "inside the backbone"},
        "detector": {"method": method, "score": _SCORE_TEXT[method]},
        "threshold": thr.to_dict(),
        "augmentation": None if policy is None else {"policy": policy.to_dict(), "digest": policy.digest(),
                                                     "copies": factor, "seed": seed},
        "training": {"n_images": len(paths), "folder": str(Path(images)) if isinstance(images, (str, Path)) else None,
                     "files": [{"name": p.name, "sha256": h} for p, h in zip(paths, hashes)],
                     "image_sizes": sorted([list(s) for s in sizes]), "duplicates_dropped": dupes, "seed": seed},
        "timings": {"backbone_load_s": round(t_backbone, 4), "encode_s": round(t_encode, 4),
                    "detector_fit_s": round(t_fit, 4), "threshold_s": round(t_thr, 4),
                    "total_s": round(time.perf_counter() - t_start, 4), "machine": platform.machine(),
                    "cpus": usable_cpus(),
                    # the copies share one encoding call, so its count is taken once
                    "encoded": emb.stats.encoded + (copies_emb[0].stats.encoded if copies_emb else 0)},
    }
    return InspectionModel(det, meta, bb)


def _aligned(emb):
    from .detectors import align_levels

    for m in emb.iter_spatial(256):
        yield align_levels(m)


_SCORE_TEXT = {
    "knn": "mean squared euclidean distance to the k nearest training vectors (levels' pooled vectors joined)",
    "maha-emp": "sum over levels of the Mahalanobis distance (empirical covariance, pseudo-inverse)",
    "maha-lw": "sum over levels of the Mahalanobis distance (Ledoit-Wolf covariance)",
    "padim": "largest Mahalanobis distance over the feature grid (one Ledoit-Wolf Gaussian per location)",
}
