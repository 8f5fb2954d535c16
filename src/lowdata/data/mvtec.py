"""Folders in the MVTec AD layout.

``<root>/<category>/train/good/*.png`` (normal training images),
``<root>/<category>/test/<good|defect_type>/*.png`` (test images),
``<root>/<category>/ground_truth/<defect_type>/<stem>_mask.png`` (binary defect masks).

The same layout serves a user's own data: a category folder with ``train/good`` and ``test``; detection
(:func:`lowdata.data.sources.detect_sources`) falls back on it when no more specific layout matches.

Where it comes from: https://www.mvtec.com/company/research/datasets/mvtec-ad (``lowdata download mvtec``);
licence CC BY-NC-SA 4.0 (non-commercial use).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .dataset import NORMAL, CategoryData, Sample
from ..core.errors import LowdataError
from .images import list_images
from .layout import Archive, Match, expect

ARCHIVE = Archive("https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
                  "420938113-1629952094/mvtec_anomaly_detection.tar.xz",
                  "sha256:cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d")
MVTEC_CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
    "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = tuple(c for c in MVTEC_CATEGORIES if c not in TEXTURES)


def _check_root(root: Path) -> None:
    if not root.exists():
        raise LowdataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise LowdataError(f"data root is not a folder: {root}")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is a category in the MVTec AD layout (``train/good`` and ``test``)."""
    return expect(folder, "train/good", "test")


def list_categories(root: str | Path) -> list[str]:
    """Categories under ``root``: sub-folders that have ``train/good``.

    Parameters
    ----------
    root : str or Path
        A folder in the MVTec AD layout.

    Returns
    -------
    list of str
        The categories' names, sorted.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    _check_root(root)
    return sorted(p.name for p in root.iterdir() if (p / "train" / NORMAL).is_dir())


def load_mvtec(root: str | Path, category: str) -> CategoryData:
    """One category of a folder in the MVTec AD layout (see the module docstring): ``train/good`` images for
    training; every image of ``test``, labelled 0 in ``test/good`` and 1 elsewhere, with its mask from
    ``ground_truth`` where there is one (a defect image without one is warned about).

    Parameters
    ----------
    root : str or Path
        A folder in the MVTec AD layout.
    category : str
        A category folder under ``root``.

    Returns
    -------
    CategoryData
        The category's training and test images (source ``mvtec``).

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category folder does not exist, the category is not in the MVTec AD layout, or it
        has no training or no test images.
    """
    root = Path(root)
    _check_root(root)
    folder = root / category
    if not folder.is_dir():
        found = list_categories(root)
        raise LowdataError(
            f"unknown category {category!r}: no folder {folder}. "
            + (f"Categories in {root}: {', '.join(found)}" if found else f"{root} holds no category "
               "in the MVTec AD layout (<category>/train/good)")
        )
    train_dir = folder / "train" / NORMAL
    if not train_dir.is_dir():
        raise LowdataError(f"{folder} is not in the MVTec AD layout: missing {train_dir}")
    train = [Sample(p, 0) for p in list_images(train_dir)]
    if not train:
        raise LowdataError(f"no training images in {train_dir}")

    test_dir = folder / "test"
    if not test_dir.is_dir():
        raise LowdataError(f"{folder} is not in the MVTec AD layout: missing {test_dir}")
    test, missing_masks = [], []
    for sub in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for p in list_images(sub):
            if sub.name == NORMAL:
                test.append(Sample(p, 0))
                continue
            mask = folder / "ground_truth" / sub.name / f"{p.stem}_mask.png"
            if not mask.is_file():
                missing_masks.append(str(mask.relative_to(root)))
                mask = None
            test.append(Sample(p, 1, sub.name, mask))
    if not test:
        raise LowdataError(f"no test images in {test_dir}")
    if missing_masks:
        warnings.warn(
            f"{len(missing_masks)} defect image(s) of {category} have no mask (pixel metrics skip them), "
            f"e.g. {missing_masks[0]}", stacklevel=2,
        )
    if not any(s.label == 1 for s in test):
        warnings.warn(f"the test set of {category} has no defect images: AUROC is undefined", stacklevel=2)
    return CategoryData("mvtec", category, train, test, root=root)
