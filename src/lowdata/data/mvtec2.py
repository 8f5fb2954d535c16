"""MVTec AD 2: eight objects under harder conditions (lighting, transparency, overlap), public test set only.

``<root>/<category>/train/good/*.png`` (normal training images),
``<root>/<category>/validation/good/*.png`` (normal validation images: not read, they are meant for choosing
a threshold), ``<root>/<category>/test_public/good/*.png`` and ``test_public/bad/*.png`` (labelled test
images), ``<root>/<category>/test_public/ground_truth/bad/<stem>_mask.png`` (binary defect masks).
``test_private`` and ``test_private_mixed`` carry no labels and are not read.

Defective images get the defect type ``bad`` (the public test set names no defect types).

Where it comes from: https://www.mvtec.com/company/research/datasets/mvtec-ad-2; licence CC BY-NC-SA 4.0
(non-commercial use).
"""

from __future__ import annotations

from pathlib import Path

from .dataset import CategoryData
from .layout import Match, defects, existing, expect, finish, normals, open_category

LABEL = "MVTec AD 2"
#: no public archive: where to get it
MANUAL = ("MVTec AD 2 is downloaded after a form at https://www.mvtec.com/company/research/datasets/mvtec-ad-2: "
          "extract it and give its folder (the one holding the category folders) as --data")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is an MVTec AD 2 category (``train/good`` and ``test_public``)."""
    return expect(folder, "train/good", "test_public")


def load_mvtec2(root: str | Path, category: str) -> CategoryData:
    """One MVTec AD 2 category (see the module docstring): ``train/good`` for training, ``test_public/good``
    (label 0) and ``test_public/bad`` (label 1, with its mask where there is one).

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, a folder of the layout is missing, or there are no training
        or no test images.
    """
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, "train/good", "test_public")
    test, missing = [], []
    if (test_dir / "good").is_dir():
        test += normals(test_dir / "good")
    if (test_dir / "bad").is_dir():
        masks = test_dir / "ground_truth" / "bad"
        test += defects(test_dir / "bad", "bad", lambda p: existing(masks / f"{p.stem}_mask.png"), root, missing)
    return finish("mvtec2", category, root, train, train_dir, test, test_dir, missing)
