"""A model folder: written whole or not at all, read back as a closed box.

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

A model folder is a closed box (:func:`read_model`): ``model.json`` (at most 64 MB, a regular file in
the folder) is checked field by field against one schema (:func:`model_schema`: types, ranges, finite
numbers; the detector's parameters against its own :meth:`~lowdata.detectors.base.Detector.state_schema`)
before anything in it is used; its arrays file must be a plain name of the form lowdata writes
(``detector-<12 hex>.npz``), a regular file inside the folder (a symlink out is refused), of the
recorded size and SHA-256; every array's header is read before its data (float dtype, a size the file
can hold) and the arrays must have the shapes the detector and the backbone expect, and be finite.
A damaged or truncated file is found by its digest. A model from another format or package version,
backbone or weights digest is refused with a message that says what differs.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.version import __version__
from ..core import schema as S
from ..core.atomic import atomic_path, default_file_mode, make_dirs, os_error_text, writing
from ..core.digests import file_hash
from ..core.errors import LowdataError, quoted
from ..core.locks import exclusive_lock
from ..data.images import IMAGE_EXTENSIONS
from ..detectors.base import Detector
from ..detectors.registry import detector_from_state, method_spec
from .inputs import samefile
from .model_format import ARRAYS_NAME, FORMAT, FORMAT_VERSION, model_schema

MODEL_FILE = "model.json"
LOCK_FILE = ".lowdata.lock"
MAX_MODEL_JSON_BYTES = 64 * 2 ** 20


def read_model_json(directory: Path) -> tuple[Path, dict]:
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
    except ValueError:  # Python reads no whole number of more than 4300 digits
        raise LowdataError(f"{path} is not a lowdata model file: it holds a whole number of more than "
                           f"{sys.get_int_max_str_digits():,} digits") from None
    except OSError as exc:
        raise LowdataError(f"cannot read {path}: {os_error_text(exc)}") from None
    return path, meta


def lowdata_meta(folder: Path) -> dict | None:
    """The description in ``folder/model.json`` when it reads as a lowdata model, else ``None``."""
    if not (folder / MODEL_FILE).is_file():
        return None
    try:
        _, meta = read_model_json(folder)
    except LowdataError:
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


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
    meta = lowdata_meta(directory)
    if meta is None:
        raise LowdataError(f"{directory / MODEL_FILE} is not a lowdata model: not overwriting it (choose another "
                           "--out)")
    name = (meta.get("arrays") or {}).get("file") if isinstance(meta.get("arrays"), dict) else None
    return name if isinstance(name, str) and ARRAYS_NAME.fullmatch(name) else None


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
    model_dir = next((f for f in [parent, *parent.parents] if lowdata_meta(f) is not None), None)
    if model_dir is not None:
        raise LowdataError(f"--out {out} is inside the model folder {model_dir}: scores would damage the model; "
                           "write them elsewhere")
    same = [p for p in paths if samefile(Path(p), out)]
    if same:
        raise LowdataError(f"--out {out} is one of the images being scored: the scores would replace it")
    return out


def write_model(directory: str | Path, meta: dict, detector: Detector) -> dict:
    """Write the model folder (see the module's docstring): ``meta`` with the detector's parameters and its
    arrays file; returns the description written. A folder that is neither empty nor a lowdata model is
    refused; a folder this call created is removed again when the save fails (no empty model folder is left)."""
    directory = Path(directory)
    created = not os.path.lexists(directory)
    make_dirs(directory)
    try:
        with exclusive_lock(directory / LOCK_FILE, f"the model folder {directory}", wait=60):
            previous = check_model_folder(directory)  # under the lock: no other save is half-way
            params, arrays = detector.get_state()
            name, digest = _write_named_by_content(directory, arrays)
            meta = dict(meta)
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
    return meta


def _remove_if_empty(directory: Path) -> None:
    try:
        (directory / LOCK_FILE).unlink(missing_ok=True)
        directory.rmdir()
    except OSError:
        pass


def _write_named_by_content(directory: Path, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write ``arrays`` to a temporary file in ``directory``, then rename it ``detector-<sha256[:12]>.npz``
    (atomic): the file of that name is always whole. Returns its name and SHA-256."""
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
    got, want = det.feature_shapes(meta["backbone"]["level_shapes"])
    if got != want:
        raise LowdataError(f"{path}: the detector's arrays ({got}) do not fit the backbone's features "
                           f"({want}, from backbone.level_shapes)")


def read_model(directory: str | Path, *, allow_other_version: bool = False) -> tuple[Detector, dict]:
    """The fitted detector and the description of a model folder written by :func:`write_model`. Everything is
    checked before use (see the module's docstring): the description's schema, the format and package version (another version is
    refused unless ``allow_other_version``), the arrays file's name, place, size and digest, and the
    arrays' dtypes, shapes and values. The backbone is checked when it is first used."""
    directory = Path(directory)
    if directory.name == MODEL_FILE and directory.is_file():  # the model's JSON file given for its folder
        directory = directory.parent
    if not directory.is_dir():
        raise LowdataError(f"model folder not found: {directory}")
    path, meta = read_model_json(directory)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LowdataError(f"{path} is not a lowdata model file (format "
                           f"{quoted(meta.get('format') if isinstance(meta, dict) else None)})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise LowdataError(f"{path} has model format version {quoted(meta.get('format_version'))}; this lowdata "
                           f"{__version__} reads version {FORMAT_VERSION}. Fit the model again with this version")
    if meta.get("lowdata_version") != __version__ and not allow_other_version:
        raise LowdataError(f"{path} was written by lowdata {quoted(meta.get('lowdata_version'))}; this is lowdata "
                           f"{__version__}. Scores may differ between versions: fit the model again, or accept it "
                           "knowingly (--allow-other-version / allow_other_version=True)")
    S.check(meta, model_schema(), str(path))
    method = meta["detector"]["method"]
    S.check(meta["detector"]["params"], method_spec(method).state_schema(), str(path), at="detector.params")
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
    try:
        det = detector_from_state(method, meta["detector"]["params"], arrays)
    except LowdataError as exc:  # name the file and the detector whose arrays do not fit
        raise LowdataError(f"{npz} ({method} model): {exc}") from None
    _check_against_backbone(det, meta, path)
    return det, meta
