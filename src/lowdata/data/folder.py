"""A user's own parts: one folder of good images and one of bad ones, masks optional.

``<root>/good/*`` (normal images), ``<root>/bad/*`` (defective images), optionally
``<root>/masks/<stem>.png`` (a bad image's binary mask, named as its image). The category is the folder's
name; ``root`` may be that folder itself or the folder above it (``<root>/<category>/good``...).

Split (deterministic): the good images, sorted by name, are numbered 0, 1, 2, ...; every 4th one (index % 4
== 3) goes to the test set with every bad image, the others to the training set. So 12 good and 5 bad images
give 9 training images and 3 + 5 test images. A bad image without a mask is warned about only when there is
a ``masks`` folder.

Where it comes from: your own camera; its licence is yours.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import LowdataError
from .dataset import CategoryData, Sample
from .images import list_images
from .layout import Match, check_root, expect, finish, need_dir

LABEL = "folder"
TEST_EVERY = 4


def detect(folder: Path) -> Match:
    """Whether ``folder`` holds ``good`` and ``bad``."""
    return expect(folder, "good", "bad")


def load_folder(root: str | Path, category: str) -> CategoryData:
    """A folder of good and bad images (see the module docstring).

    Raises
    ------
    lowdata.LowdataError
        If neither ``root/category`` nor ``root`` (named ``category``) holds ``good``, ``bad`` is missing, or
        there are no training or no test images.
    """
    root = check_root(root)
    folder = root / category
    if not (folder / "good").is_dir() and root.name == category:
        folder = root
    if not folder.is_dir():
        raise LowdataError(f"unknown category {category!r}: no folder {folder} (nor is {root} itself named "
                           f"{category!r})")
    good_dir = need_dir(folder / "good", folder, "folder (good/, bad/)")
    bad_dir = need_dir(folder / "bad", folder, "folder (good/, bad/)")
    train, test, missing = [], [], []
    for i, p in enumerate(list_images(good_dir)):
        (test if i % TEST_EVERY == TEST_EVERY - 1 else train).append(Sample(p, 0))
    masks = folder / "masks"
    for p in list_images(bad_dir):
        mask = masks / f"{p.stem}.png"
        if not mask.is_file():
            if masks.is_dir():
                missing.append(str(mask.relative_to(folder.parent)))
            mask = None
        test.append(Sample(p, 1, "bad", mask))
    return finish("folder", category, folder.parent, train, good_dir, test, folder, missing,
                  notes={"test_every": TEST_EVERY})
