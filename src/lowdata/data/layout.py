"""What the folder-layout sources share: the root and category checks, the "is it this layout?" answer
(:class:`Match`) of detection, and the last checks of a loaded category (:func:`finish`).

Each source module (:mod:`~lowdata.data.mvtec`, :mod:`~lowdata.data.btad`, ...) reads one layout with these;
:mod:`~lowdata.data.sources` registers them and detects which one a folder is in.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

from ..core.errors import LowdataError
from .dataset import CategoryData, Sample
from .images import list_images


class Archive(NamedTuple):
    """Where a data set's public archive is (``url``) and its published checksum (``digest``:
    ``"sha256:<hex>"``, or ``"md5:<hex>"`` where only an MD5 is published), for ``lowdata download``."""

    url: str
    digest: str


class Match(NamedTuple):
    """A folder against a layout: ``missing`` ``None`` when it matches, else what it lacks (``missing
    train/good``); ``found``: how many of the layout's expected folders it has (the closest layout explains
    why none matched)."""

    missing: str | None
    found: int


def expect(folder: Path, *parts: str) -> Match:
    """Whether ``folder`` has each of ``parts`` (relative folders, in the order a layout is recognised by)."""
    for i, part in enumerate(parts):
        if not (folder / part).is_dir():
            return Match(f"missing {part}/", i)
    return Match(None, len(parts))


def check_root(root: str | Path) -> Path:
    """``root`` as a Path, after checking that it is a folder.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.exists():
        raise LowdataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise LowdataError(f"data root is not a folder: {root}")
    return root


def category_folder(root: Path, category: str, label: str, marker: str) -> Path:
    """``root/category`` after checking it exists; the error lists the folders of ``root`` that have
    ``marker`` (the layout's first folder, e.g. ``train/ok``).

    Raises
    ------
    lowdata.LowdataError
        If there is no such folder.
    """
    folder = root / category
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if (p / marker).is_dir())
        raise LowdataError(
            f"unknown category {category!r}: no folder {folder}. "
            + (f"Categories in {root}: {', '.join(found)}" if found
               else f"{root} holds no category in the {label} layout (<category>/{marker})"))
    return folder


def need_dir(path: Path, folder: Path, label: str) -> Path:
    """``path``, a folder the layout needs in ``folder``.

    Raises
    ------
    lowdata.LowdataError
        If it is missing.
    """
    if not path.is_dir():
        raise LowdataError(f"{folder} is not in the {label} layout: missing {path}")
    return path


def normals(folder: Path) -> list[Sample]:
    """The images of ``folder`` as normal samples (label 0, defect type ``good``)."""
    return [Sample(p, 0) for p in list_images(folder)]


def open_category(root: str | Path, category: str, label: str, train: str, test: str = "test"):
    """The checks every layout makes before reading a category: ``(root, folder, the normal training samples of
    folder/train, that folder, folder/test)``.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, the layout's training folder is missing or empty, or its test
        folder is missing.
    """
    root = check_root(root)
    folder = category_folder(root, category, label, train)
    train_dir = need_dir(folder / train, folder, label)
    samples = normals(train_dir)
    if not samples:  # said before a missing test folder: the first thing to mend
        raise LowdataError(f"no training images in {train_dir}")
    return root, folder, samples, train_dir, need_dir(folder / test, folder, label)


def defects(images: Path, kind: str, mask_of, root: Path, missing: list[str]) -> list[Sample]:
    """The images of ``images`` as defects of type ``kind``, each with its mask: ``mask_of(image)`` gives ``(mask,
    where it was looked for)``, a mask ``None`` (or empty) where there is none, then named in ``missing``."""
    out = []
    for p in list_images(images):
        mask, where = mask_of(p)
        if not mask:
            missing.append(str(where.relative_to(root)))
        out.append(Sample(p, 1, kind, mask or None))
    return out


def existing(path: Path) -> tuple[Path | None, Path]:
    """``(path, path)`` where ``path`` is a file, else ``(None, path)``: a :func:`defects` mask that may be missing."""
    return (path if path.is_file() else None), path


def first_file(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder/<stem><suffix>`` for the first suffix that is a file, else ``None``."""
    for suffix in suffixes:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def finish(source: str, category: str, root: Path, train: list[Sample], train_dir: Path, test: list[Sample],
           test_dir: Path, missing_masks: list[str] = (), notes: dict | None = None) -> CategoryData:
    """The category's :class:`CategoryData`, after the checks every layout shares; a defect image without a
    mask and a test set without defects are warned about.

    Raises
    ------
    lowdata.LowdataError
        If there are no training or no test images (naming the folder).
    """
    if not train:
        raise LowdataError(f"no training images in {train_dir}")
    if not test:
        raise LowdataError(f"no test images in {test_dir}")
    if missing_masks:
        warnings.warn(f"{len(missing_masks)} defect image(s) of {category} have no mask (pixel metrics skip them), "
                      f"e.g. {missing_masks[0]}", stacklevel=3)
    if not any(s.label == 1 for s in test):
        warnings.warn(f"the test set of {category} has no defect images: AUROC is undefined", stacklevel=3)
    return CategoryData(source, category, train, test, root=root, notes=notes or {})
