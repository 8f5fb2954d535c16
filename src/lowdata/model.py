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
holds a whole model: the old one until the new ``model.json`` lands, the new one after. A save holds
the folder's lock (``.lowdata.lock``), so two saves into one folder take turns and neither removes the
other's arrays. Only a folder that is empty or holds a lowdata ``model.json`` is written, and only the
arrays file that model named is removed.

A model folder is a closed box (:func:`load_model`): ``model.json`` (at most 64 MB, a regular file in
the folder) is checked field by field against one schema (:data:`MODEL_SCHEMA`: types, ranges, finite
numbers) before anything in it is used; its arrays file must be a plain name of the form lowdata
writes (``detector-<12 hex>.npz``), a regular file inside the folder (a symlink out is refused), of the
recorded size and SHA-256; every array's header is read before its data (float dtype, a size the file
can hold) and the arrays must have the shapes the detector and the backbone expect, and be finite.
A damaged or truncated file is found by its digest. A model from another format or package version,
backbone or weights digest is refused with a message that says what differs.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import stat
import time
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import __version__
from . import schema as S
from .atomic import atomic_path, default_file_mode, make_dirs, os_error_text, writing
from .backbones import MAX_INPUT_SIZE, MIN_INPUT_SIZE
from .cluster import usable_cpus
from .digests import file_hash
from .errors import LowdataError
from .images import IMAGE_EXTENSIONS, image_size
from .locks import exclusive_lock

FORMAT = "lowdata-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
MIN_IMAGES = 5
METHODS = ("knn", "maha-emp", "maha-lw", "padim")
ARRAYS_NAME = re.compile(r"detector-[0-9a-f]{12}\.npz")
LOCK_FILE = ".lowdata.lock"
MAX_MODEL_JSON_BYTES = 64 * 2 ** 20
OVERLAY_SUFFIX = ".heatmap.png"
OVERLAY_MANIFEST = ".lowdata-heatmaps.json"


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


def overlay_names(paths: Sequence[Path]) -> list[str]:
    """``<stem>.heatmap.png`` per image (a name no input image has); where two images share a stem
    (000.png in two folders), the folder's name goes in front of every name."""
    clash = len({p.stem for p in paths}) < len(paths)
    names, seen = [], Counter()
    for path in paths:
        stem = f"{path.parent.name}-{path.stem}" if clash else path.stem
        seen[stem] += 1
        names.append(f"{stem}{OVERLAY_SUFFIX}" if seen[stem] == 1 else f"{stem}-{seen[stem]}{OVERLAY_SUFFIX}")
    return names


def _samefile(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def plan_overlays(out_dir: str | Path, paths: Sequence[Path], write: bool = True) -> list[Path]:
    """The overlay files of ``paths`` in ``out_dir``, after checking that writing them loses nothing: the
    folder is not a file and holds none of the images, and no target is a file lowdata did not write
    (the folder's manifest lists those it wrote). With ``write``, the folder is made and the manifest
    updated, before any overlay is written; without it, this is only the check."""
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise LowdataError(f"the heatmap folder {out_dir} is a file, not a folder: give a folder for the overlays")
    inside = [p for p in paths if _samefile(Path(p).parent, out_dir)]
    if inside:
        raise LowdataError(f"the heatmap folder {out_dir} holds images being scored ({Path(inside[0]).name}"
                           + (f" and {len(inside) - 1} more" if len(inside) > 1 else "")
                           + "): give another folder, so that no image of yours sits among the overlays")
    names = overlay_names([Path(p) for p in paths])
    manifest = out_dir / OVERLAY_MANIFEST
    ours: set[str] = set()
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text()).get("written", [])
            ours = {n for n in listed if isinstance(n, str)}
        except (OSError, ValueError, AttributeError):
            ours = set()
    foreign = [n for n in names if os.path.lexists(out_dir / n) and n not in ours]
    if foreign:
        raise LowdataError(f"{out_dir / foreign[0]} exists and was not written by lowdata score: not replacing it"
                           + (f" (nor {len(foreign) - 1} more)" if len(foreign) > 1 else "")
                           + "; give another heatmap folder")
    if not write:
        return [out_dir / n for n in names]
    make_dirs(out_dir)
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps({"written": sorted(ours | set(names))}, indent=0) + "\n")
    return [out_dir / n for n in names]


def _lowdata_meta(folder: Path) -> dict | None:
    """The description in ``folder/model.json`` when it reads as a lowdata model, else ``None``."""
    if not (folder / MODEL_FILE).is_file():
        return None
    try:
        _, meta = _read_model_json(folder)
    except LowdataError:
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def check_scores_output(out: str | Path, paths: Sequence[Path]) -> Path:
    """May ``lowdata score`` write its scores to ``out``? Not when ``out`` is a folder, lies inside a model
    folder (the one scoring, or any other), is one of the images being scored, or has an image's suffix;
    checked before any image is scored."""
    out = Path(out)
    if out.is_dir():
        raise LowdataError(f"--out {out} is a folder: give a file for the scores (e.g. {out / 'scores.csv'})")
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        raise LowdataError(f"--out {out} has an image's suffix: give a .csv or .json file for the scores")
    parent = out.resolve().parent
    model_dir = next((f for f in [parent, *parent.parents] if _lowdata_meta(f) is not None), None)
    if model_dir is not None:
        raise LowdataError(f"--out {out} is inside the model folder {model_dir}: scores would damage the model; "
                           "write them elsewhere")
    same = [p for p in paths if _samefile(Path(p), out)]
    if same:
        raise LowdataError(f"--out {out} is one of the images being scored: the scores would replace it")
    return out


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
        if [list(s) for s in bb.level_shapes] != [list(s) for s in want["level_shapes"]]:
            raise LowdataError(f"this model expects features of shapes {want['level_shapes']}, but {bb.name} at "
                               f"{bb.input_size} px gives {[list(s) for s in bb.level_shapes]}")
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
        if not (np.isfinite(t) and t > 0):  # never a verdict from a threshold that cannot judge
            raise LowdataError(f"the model's threshold {t!r} is not a finite number above 0")
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):  # NaN > t is False: a NaN score would pass as "normal"
            raise LowdataError(f"the score of {paths[bad[0]]} is {scores[bad[0]]}"
                               + (f" (and {len(bad) - 1} more images)" if len(bad) > 1 else "")
                               + ": no verdict can be given; is the model damaged?")
        df = pd.DataFrame({"image": [str(p) for p in paths], "score": scores, "threshold": t,
                           "ratio": scores / t, "verdict": np.where(scores > t, "anomalous", "normal")})
        return (df, maps) if return_maps else df

    def heatmaps(self, images, *, cache_dir=None, progress: bool = True) -> np.ndarray:
        """PaDiM only: ``(n, s, s)`` heatmaps at the input size (bilinear, smoothed as PaDiM)."""
        if self.method != "padim":
            raise LowdataError(f"heatmaps need a PaDiM model; this one is {self.method}")
        _, maps = self.score(images, cache_dir=cache_dir, progress=progress, return_maps=True)
        return self.detector.heatmaps(maps=maps, size=self.input_size)

    def write_overlays(self, scores, maps: np.ndarray, out_dir: str | Path) -> list[Path]:
        """One PNG per scored image in ``out_dir``, named ``<image stem>.heatmap.png``: the image at its own
        size under the heatmap (colours from half the threshold to 1.5 times it), the region above the
        threshold outlined, and the score and verdict in the title. ``scores``/``maps``: :meth:`score` with
        ``return_maps=True``. A file lowdata did not write there (listed in the folder's
        ``.lowdata-heatmaps.json``) is never replaced, and a folder holding a scored image is refused."""
        from .images import read_image
        from .plots import heatmap_overlay

        if self.method != "padim":
            raise LowdataError(f"heatmaps need a PaDiM model; this one is {self.method}")
        paths = [Path(p) for p in scores["image"]]
        out_dir = Path(out_dir)
        targets = plan_overlays(out_dir, paths)
        written = []
        for (_, row), m, path, target in zip(scores.iterrows(), maps, paths, targets):
            img = read_image(path)
            kind = f" [{row['defect_type']}]" if "defect_type" in row else ""
            fig = heatmap_overlay(img, m, self.threshold, sigma=self.detector.sigma * img.shape[0] / self.input_size,
                                  title=f"{Path(row['image']).name}{kind}: {row['score']:.1f} ({row['verdict']})")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=100)
            written.append(target)
        return written

    # ----------------------------------------------------------------------------------- saving
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (see the module's docstring); returns the path of ``model.json``. A folder
        that is neither empty nor a lowdata model is refused; a folder this call created is removed again
        when the save fails (no empty model folder is left)."""
        directory = Path(directory)
        created = not os.path.lexists(directory)
        make_dirs(directory)
        try:
            with exclusive_lock(directory / LOCK_FILE, f"the model folder {directory}", wait=60):
                previous = check_model_folder(directory)  # under the lock: no other save is half-way
                params, arrays = self.detector.get_state()
                name, digest = _write_named_by_content(directory, arrays)
                meta = dict(self.meta)
                meta["detector"] = dict(meta["detector"], params=params)
                meta["arrays"] = {"file": name, "sha256": digest, "bytes": (directory / name).stat().st_size,
                                  "names": sorted(arrays)}
                try:
                    with atomic_path(directory / MODEL_FILE) as tmp:
                        tmp.write_text(json.dumps(meta, indent=1, default=_json_default, allow_nan=False) + "\n")
                except BaseException:
                    if name != previous:
                        (directory / name).unlink(missing_ok=True)
                    raise
                if previous and previous != name:  # the arrays of the model this one replaced, and only those
                    (directory / previous).unlink(missing_ok=True)
        except BaseException:
            if created:
                _remove_if_empty(directory)
            raise
        self.meta = meta
        return directory / MODEL_FILE


def _remove_if_empty(directory: Path) -> None:
    try:
        (directory / LOCK_FILE).unlink(missing_ok=True)
        directory.rmdir()
    except OSError:
        pass


def _write_named_by_content(directory: Path, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write ``arrays`` to a temporary file in ``directory``, then rename it ``detector-<sha256[:12]>.npz``
    (atomic): the file of that name is always whole. Returns its name and SHA-256."""
    import os
    import tempfile

    with writing(directory, "write the model's arrays into"):
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


def _bank_params(n_max: int | None = None) -> S.Dict:
    return S.Dict({"estimator": S.Str(("empirical", "ledoit-wolf")), "chunk": S.Int(1, 1 << 20),
                   "route": S.Str(("full", "woodbury")), "n": S.Int(2, 10 ** 7), "locations": S.Int(1, 1 << 20),
                   "features": S.Int(1, 1 << 16), "singular": S.List(S.Int(0, 1 << 20))}, optional=("singular",))


_GRID = S.List(S.Int(1, 4096), 2, 2)
DETECTOR_PARAMS = {
    "knn": S.Dict({"k": S.Int(1, 10 ** 6), "n_train": S.Int(1, 10 ** 7)}),
    "maha-emp": S.Dict({"estimator": S.Str(("empirical",)), "n_train": S.Int(2, 10 ** 7),
                        "levels": S.List(_bank_params(), 1, 16)}),
    "maha-lw": S.Dict({"estimator": S.Str(("ledoit-wolf",)), "n_train": S.Int(2, 10 ** 7),
                       "levels": S.List(_bank_params(), 1, 16)}),
    "padim": S.Dict({"chunk": S.Int(1, 1 << 20), "sigma": S.Num(0, 1000), "grid": _GRID,
                     "n_train": S.Int(2, 10 ** 7), "bank": _bank_params()}),
}
_SHA256 = S.Str(pattern="[0-9a-f]{64}")
MODEL_SCHEMA = S.Dict({
    "format": S.Str((FORMAT,)), "format_version": S.Int(), "lowdata_version": S.Str(max_len=100),
    "created": S.Str(max_len=100),
    "backbone": S.Dict({"name": S.Str(), "input_size": S.Int(MIN_INPUT_SIZE, MAX_INPUT_SIZE),
                        "weights_digest": S.Str(max_len=200), "levels": S.List(S.Str(max_len=100), 1, 16),
                        "level_shapes": S.List(S.List(S.Int(1, 1 << 16), 3, 3), 1, 16)}),
    "preprocessing": S.Opt(S.Dict()),
    "detector": S.Dict({"method": S.Str(METHODS), "score": S.Str(), "params": S.Dict()}),
    "threshold": S.Dict({"value": S.Num(0, lo_open=True), "rule": S.Str(("lognormal", "conformal", "chi2")),
                         "fpr": S.Num(0, 1, lo_open=True, hi_open=True), "folds": S.Int(0, 10 ** 7),
                         "seed": S.Int(), "oof_scores": S.List(S.Num()), "note": S.Str()},
                        optional=("folds", "seed", "oof_scores", "note")),
    "augmentation": S.Opt(S.Dict({"policy": S.Dict(), "digest": S.Str(max_len=200), "copies": S.Int(1, 10 ** 6),
                                  "seed": S.Int()})),
    "training": S.Dict({"n_images": S.Int(1, 10 ** 7), "folder": S.Opt(S.Str()),
                        "files": S.List(S.Dict({"name": S.Str(), "sha256": S.Str(max_len=200)})),
                        "image_sizes": S.List(S.List(S.Int(1, 10 ** 6), 2, 2)),
                        "duplicates_dropped": S.List(S.Str()), "seed": S.Int()},
                       optional=("folder", "files", "duplicates_dropped", "seed")),
    "timings": S.Opt(S.Dict(values=S.Any())),
    "arrays": S.Dict({"file": S.Str(pattern=ARRAYS_NAME.pattern), "sha256": _SHA256, "bytes": S.Int(0, 1 << 40),
                      "names": S.List(S.Str(pattern=r"[A-Za-z0-9_.]{1,100}"), 1, 10_000)}),
}, optional=("created", "preprocessing", "augmentation", "timings"))


def _regular_file_inside(directory: Path, name: str, what: str) -> Path:
    """``directory / name`` if it is a regular file in ``directory`` itself (not a symlink out, not a FIFO
    or a device); errors say no more about what the name points at than that it is refused."""
    path = directory / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise LowdataError(f"the model's {what} {path} is missing") from None
    except OSError as exc:
        raise LowdataError(f"cannot read the model's {what} {path}: {os_error_text(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            inside = path.resolve(strict=True).parent == directory.resolve()
        except (OSError, RuntimeError):
            inside = False
        if not inside:
            raise LowdataError(f"the model's {what} {path} is a symbolic link out of the model folder: refused")
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise LowdataError(f"the model's {what} {path} is not a regular file: refused")
    return path


def _read_model_json(directory: Path) -> tuple[Path, dict]:
    path = directory / MODEL_FILE
    if not os.path.lexists(path):
        raise LowdataError(f"{directory} is not a lowdata model: it has no {MODEL_FILE}")
    path = _regular_file_inside(directory, MODEL_FILE, "description")
    size = path.stat().st_size
    if size > MAX_MODEL_JSON_BYTES:
        raise LowdataError(f"{path} is {size:,} bytes, more than a lowdata model file can be "
                           f"({MAX_MODEL_JSON_BYTES:,}): refused")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise LowdataError(f"{path} is damaged or truncated (not valid JSON: {exc})") from None
    except OSError as exc:
        raise LowdataError(f"cannot read {path}: {os_error_text(exc)}") from None
    return path, meta


def _npz_headers(npz: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each member's shape and dtype, read from its header only; a member whose data the file cannot
    hold, or of a dtype other than a float, is refused before anything is loaded."""
    out = {}
    try:
        with zipfile.ZipFile(npz) as zf:
            for info in zf.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if info.compress_type != zipfile.ZIP_STORED:
                    raise LowdataError(f"{npz}: array {name!r} is compressed; lowdata writes them uncompressed")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        raise LowdataError(f"{npz}: array {name!r} has an unknown format version {version}")
                    shape, _, dtype = read(f)
                if dtype.kind != "f" or dtype.hasobject:
                    raise LowdataError(f"{npz}: array {name!r} has dtype {dtype}; a lowdata model holds floats only")
                if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise LowdataError(f"{npz}: array {name!r} claims shape {shape}, more than its "
                                       f"{info.file_size:,} bytes hold")
                out[name] = (tuple(shape), dtype)
    except LowdataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise LowdataError(f"cannot read {npz}: not a valid arrays file ({type(exc).__name__}: {exc})") from None
    return out


def _check_against_backbone(det, meta: dict, path: Path) -> None:
    """The detector's input sizes agree with the backbone's feature shapes (else scoring cannot work)."""
    shapes = [tuple(s) for s in meta["backbone"]["level_shapes"]]
    channels = [s[2] for s in shapes]
    method = meta["detector"]["method"]
    if method == "knn":
        got, want = det.train_.shape[1], sum(channels)
    elif method == "padim":
        got, want = (tuple(det.grid_), det.bank.d_), (shapes[0][:2], sum(channels))
    else:
        got, want = [(g.L_, g.d_) for g in det.gaussians_], [(1, c) for c in channels]
    if got != want:
        raise LowdataError(f"{path}: the detector's arrays ({got}) do not fit the backbone's features "
                           f"({want}, from backbone.level_shapes)")


def load_model(directory: str | Path, *, allow_other_version: bool = False) -> InspectionModel:
    """Read a model folder written by :meth:`InspectionModel.save`. Everything is checked before use (see
    the module's docstring): the description's schema, the format and package version (another version is
    refused unless ``allow_other_version``), the arrays file's name, place, size and digest, and the
    arrays' dtypes, shapes and values. The backbone is checked when it is first used."""
    from .detectors import detector_from_state

    directory = Path(directory)
    if directory.name == MODEL_FILE and directory.is_file():  # the model's JSON file given for its folder
        directory = directory.parent
    if not directory.is_dir():
        raise LowdataError(f"model folder not found: {directory}")
    path, meta = _read_model_json(directory)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LowdataError(f"{path} is not a lowdata model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise LowdataError(f"{path} has model format version {meta.get('format_version')!r}; this lowdata "
                           f"{__version__} reads version {FORMAT_VERSION}. Fit the model again with this version")
    if meta.get("lowdata_version") != __version__ and not allow_other_version:
        raise LowdataError(f"{path} was written by lowdata {meta.get('lowdata_version')}; this is lowdata "
                           f"{__version__}. Scores may differ between versions: fit the model again, or accept it "
                           "knowingly (--allow-other-version / allow_other_version=True)")
    S.check(meta, MODEL_SCHEMA, str(path))
    method = meta["detector"]["method"]
    S.check(meta["detector"]["params"], DETECTOR_PARAMS[method], f"{path} (detector.params)")
    info = meta["arrays"]
    npz = _regular_file_inside(directory, info["file"], "arrays file")
    size = npz.stat().st_size
    digest = file_hash(npz)
    if digest != info["sha256"] or size != info["bytes"]:
        raise LowdataError(f"{npz} is damaged or truncated: its SHA-256 is {digest[:16]}..., the model expects "
                           f"{info['sha256'][:16]}... ({size} of {info['bytes']} bytes)")
    headers = _npz_headers(npz)
    if sorted(headers) != sorted(info["names"]):
        raise LowdataError(f"{npz} holds the arrays {sorted(headers)[:6]}..., not the ones {path} names")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise LowdataError(f"cannot read {npz}: {type(exc).__name__}: {exc}") from None
    bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise LowdataError(f"{npz}: the array {bad[0]!r} holds NaN or infinite values: refused")
    det = detector_from_state(method, meta["detector"]["params"], arrays)
    _check_against_backbone(det, meta, path)
    return InspectionModel(det, meta)


def check_model_folder(directory: str | Path) -> str | None:
    """May a model be saved into ``directory``? Yes when it does not exist, is empty, or holds a lowdata
    model (then the name of that model's arrays file is returned: the one file a new save removes).
    Anything else is refused, before any work is done."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        return None
    if not directory.is_dir():
        raise LowdataError(f"{directory} exists and is not a folder")
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError as exc:
        raise LowdataError(f"cannot read the folder {directory}: {os_error_text(exc)}") from None
    if MODEL_FILE not in names:
        # lowdata's own files only (the lock, arrays files, temporary files): a first save is under way
        # or was cut short; nothing there is removed
        if all(n == LOCK_FILE or ARRAYS_NAME.fullmatch(n) or n.startswith((".detector-", f".{MODEL_FILE}-"))
               for n in names):
            return None
        raise LowdataError(f"{directory} is not empty and holds no {MODEL_FILE}: not overwriting a folder "
                           "that is not a lowdata model")
    meta = _lowdata_meta(directory)
    if meta is None:
        raise LowdataError(f"{directory / MODEL_FILE} is not a lowdata model: not overwriting it (choose another "
                           "--out)")
    name = (meta.get("arrays") or {}).get("file") if isinstance(meta.get("arrays"), dict) else None
    return name if isinstance(name, str) and ARRAYS_NAME.fullmatch(name) else None


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
                     "files": [{"name": p.name, "sha256": h.split("-")[0]} for p, h in zip(paths, hashes)],
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
