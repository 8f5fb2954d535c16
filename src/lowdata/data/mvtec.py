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

from pathlib import Path

from .dataset import NORMAL, CategoryData
from .layout import Archive, Match, check_root, defects, existing, expect, finish, normals, open_category

LABEL = "MVTec AD"
ARCHIVE = Archive("https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
                  "420938113-1629952094/mvtec_anomaly_detection.tar.xz",
                  "sha256:cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d")
MVTEC_CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
    "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = tuple(c for c in MVTEC_CATEGORIES if c not in TEXTURES)


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
    root = check_root(root)
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
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, f"train/{NORMAL}")
    test, missing = [], []
    for sub in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        if sub.name == NORMAL:
            test += normals(sub)
        else:
            masks = folder / "ground_truth" / sub.name
            test += defects(sub, sub.name, lambda p, masks=masks: existing(masks / f"{p.stem}_mask.png"), root, missing)
    return finish("mvtec", category, root, train, train_dir, test, test_dir, missing)
