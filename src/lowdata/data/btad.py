"""BTAD, the beanTech Anomaly Detection data set: three industrial products, categories ``01``, ``02``, ``03``.

``<root>/<category>/train/ok/*`` (normal training images),
``<root>/<category>/test/ok/*`` (normal test images), ``<root>/<category>/test/ko/*`` (defective ones),
``<root>/<category>/ground_truth/ko/<stem>.png`` (binary defect masks; ``.bmp`` is read too).

Images are ``.bmp`` (01, 03) or ``.png`` (02). ``ok`` images get the defect type ``good``, ``ko`` images ``ko``
(BTAD names no defect types). Other folders of ``test`` are not read.

Where it comes from: https://github.com/pankajmishra000/VT-ADL (Mishra et al., ISIE 2021; the archive
http://avires.dimi.uniud.it/papers/btad/btad.zip); licence CC BY-SA 4.0.
"""

from __future__ import annotations

from pathlib import Path

from .dataset import CategoryData
from .layout import Archive, Match, defects, expect, finish, first_file, normals, open_category

LABEL = "BTAD"
ARCHIVE = Archive("https://avires.dimi.uniud.it/papers/btad/btad.zip",
                  "sha256:461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is a BTAD category (``train/ok`` and ``test``)."""
    return expect(folder, "train/ok", "test")


def load_btad(root: str | Path, category: str) -> CategoryData:
    """One BTAD category (see the module docstring): ``train/ok`` for training, ``test/ok`` (label 0) and
    ``test/ko`` (label 1, with its mask from ``ground_truth/ko`` where there is one).

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, a folder of the layout is missing, or there are no training
        or no test images.
    """
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, "train/ok")
    test, missing = [], []
    if (test_dir / "ok").is_dir():
        test += normals(test_dir / "ok")
    if (test_dir / "ko").is_dir():
        masks = folder / "ground_truth" / "ko"
        test += defects(test_dir / "ko", "ko", lambda p: (first_file(masks, p.stem, (".png", ".bmp")),
                                                          masks / f"{p.stem}.png"), root, missing)
    return finish("btad", category, root, train, train_dir, test, test_dir, missing)
