"""MVTec 3D-AD, its RGB images only: ten objects scanned in 2D and 3D.

``<root>/<category>/train/good/rgb/*.png`` (normal training images),
``<root>/<category>/test/<good|defect_type>/rgb/*.png`` (test images),
``<root>/<category>/test/<defect_type>/gt/<same name>.png`` (binary defect masks, named as their image).

The point clouds (``xyz/*.tiff``) are not read, and not warned about: only the ``rgb`` folders are listed.
``validation/good`` is not read either.

Where it comes from: https://www.mvtec.com/company/research/datasets/mvtec-3d-ad; licence CC BY-NC-SA 4.0
(non-commercial use).
"""

from __future__ import annotations

from pathlib import Path

from .dataset import NORMAL, CategoryData
from .layout import Archive, Match, defects, existing, expect, finish, normals, open_category

LABEL = "MVTec 3D-AD"
#: only an MD5 is published for this archive
ARCHIVE = Archive("https://www.mydrive.ch/shares/45920/dd1eb345346df066c63b5c95676b961b/download/"
                  "428824485-1643285832/mvtec_3d_anomaly_detection.tar.xz", "md5:d8bb2800fbf3ac88e798da6ae10dc819")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is an MVTec 3D-AD category (``train/good/rgb`` and ``test``)."""
    return expect(folder, "train/good/rgb", "test")


def load_mvtec3d(root: str | Path, category: str) -> CategoryData:
    """One MVTec 3D-AD category (see the module docstring): the RGB images of ``train/good`` for training; of
    every ``test/<type>``, labelled 0 for ``good`` and 1 otherwise, with its ``gt`` mask where there is one.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, a folder of the layout is missing, or there are no training
        or no test images.
    """
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, f"train/{NORMAL}/rgb")
    test, missing = [], []
    for sub in sorted(p for p in test_dir.iterdir() if (p / "rgb").is_dir()):
        if sub.name == NORMAL:
            test += normals(sub / "rgb")
        else:
            test += defects(sub / "rgb", sub.name, lambda p, sub=sub: existing(sub / "gt" / p.name), root, missing)
    return finish("mvtec3d", category, root, train, train_dir, test, test_dir, missing)
