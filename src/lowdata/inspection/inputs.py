"""The images a user gives: files and folders gathered, their sizes checked, paths compared."""

from __future__ import annotations

import os
import stat
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import LowdataError
from ..data.images import IMAGE_EXTENSIONS, image_size, list_images
from ..features.encode import source_key


def _kind(p: Path) -> str:
    """What a path that is neither a regular file nor a folder is, in words."""
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return "a dangling symbolic link" if os.path.islink(p) else "unreadable"
    return ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def collect_images(inputs: str | Path | Sequence[str | Path], what: str = "images") -> list[Path]:
    """Image files from folders (their image files, sorted) and files, in the order given."""
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
        elif os.path.lexists(p):
            raise LowdataError(f"{what}: {p} is {_kind(p)}, not an image file or a folder")
        else:
            raise LowdataError(f"{what}: no such file or folder: {p}")
    if not out:
        raise LowdataError(f"no {what} given")
    return out


def distinct_images(paths: Sequence[Path]) -> tuple[list[Path], list[str], list[str]]:
    """The images with the same content once (the first of each, by content hash, in order): paths, their
    hashes and the duplicates left out (``name (= first's name)``), with a warning naming them."""
    seen: dict[str, Path] = {}
    keep, dupes = [], []
    for p in paths:
        h = source_key(p)
        if h in seen:
            dupes.append(f"{Path(p).name} (= {seen[h].name})")
        else:
            seen[h] = Path(p)
            keep.append((Path(p), h))
    if dupes:
        warnings.warn(f"{len(dupes)} duplicate image(s) are used once: {', '.join(dupes[:5])}"
                      + (" ..." if len(dupes) > 5 else ""), stacklevel=3)
    return [p for p, _ in keep], [h for _, h in keep], dupes


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


def samefile(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (or folder); ``False`` when either cannot be read."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_test_views(k, aug, copies: int, rule: str) -> int:
    """K test-time views for ``fit_model``, or one clear error: a whole number from 0, with a training policy
    (the views are made with it: views the model never saw in training look anomalous, the book measures PaDiM
    losing 0.3 AUROC on MVTec AD's bottle), at most ``copies``, and not with the chi2 rule (a mean of scores is not
    a Mahalanobis distance)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise LowdataError(f"--test-aug: a number of test-time views of at least 1, got {k!r}")
    if k and aug in (None, "none"):
        raise LowdataError(f"--test-aug {k}: test-time views are made with the training augmentation's policy; give "
                           "--aug (views of a policy the model never saw in training look anomalous)")
    if k > copies:
        raise LowdataError(f"--test-aug {k}: at most as many views as --copies ({copies}): the threshold is set with "
                           "that many copies of each held-out image")
    if k and rule == "chi2":
        raise LowdataError("--test-aug: the chi2 threshold rule needs the image's own Mahalanobis distance; use the "
                           "lognormal or conformal rule with test-time views")
    return int(k)
