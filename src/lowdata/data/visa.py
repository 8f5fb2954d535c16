"""VisA, the Visual Anomaly data set: twelve objects (candle, capsules, pcb1...), in one of two layouts.

* **Converted** (the MVTec-like layout of the authors' conversion script):
  ``<root>/<category>/train/good/*``, ``<root>/<category>/test/good/*`` and ``test/bad/*``,
  ``<root>/<category>/ground_truth/bad/<stem>.png`` (masks named as their image, no ``_mask`` suffix).
* **Original**, read through the split file ``<root>/split_csv/1cls.csv`` (columns ``object,split,label,
  image,mask``; ``split`` ``train`` or ``test``, ``label`` ``normal`` or ``anomaly``; paths relative to the root,
  such as ``candle/Data/Images/Anomaly/000.JPG`` and ``candle/Data/Masks/Anomaly/000.png``). The images are
  ``.JPG``, upper case. A category is an ``object`` of the file; a file it names that does not exist is an
  error naming it.

Defective images get the defect type ``bad`` (the one-class split names no defect types).

Where it comes from: https://github.com/amazon-science/spot-diff (Zou et al., ECCV 2022); licence CC BY 4.0
by the authors' LICENSE-DATASET (anomalib's VisA module says CC BY-NC-SA 4.0: check the authors' repository).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..core.errors import LowdataError
from .dataset import CategoryData, Sample
from .layout import Archive, Match, check_root, defects, existing, expect, finish, normals, open_category

LABEL = "VisA"
#: only an MD5 is published for this archive
ARCHIVE = Archive("https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
                  "md5:ef908989b6dc701fc218f643c127a4de")
SPLIT_CSV = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is a VisA category: converted (``train/good``, ``test/bad``, ``ground_truth/bad``
    without ``_mask`` files) or original (``Data/Images``, with ``split_csv/1cls.csv`` beside it)."""
    if (folder.parent / SPLIT_CSV).is_file() and not (folder / "train").is_dir():
        return expect(folder, "Data/Images")
    found = expect(folder, "train/good", "test/bad", "ground_truth/bad")
    if found.missing is None and any((folder / "ground_truth" / "bad").glob("*_mask.png")):
        return Match("masks named <stem>_mask.png (VisA's are <stem>.png)", found.found)
    return found


def _read_split(root: Path, category: str) -> list[dict]:
    path = root / SPLIT_CSV
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LowdataError(f"cannot read the VisA split file {path}: {exc}") from None
    if rows and any(c not in rows[0] for c in COLUMNS):
        raise LowdataError(f"the VisA split file {path} lacks a column of {', '.join(COLUMNS)}")
    mine = [r for r in rows if r["object"] == category]
    if not mine:
        objects = sorted({r["object"] for r in rows})
        raise LowdataError(f"unknown category {category!r}: no object of that name in {path}"
                           + (f" (objects: {', '.join(objects)})" if objects else ""))
    return mine


def _original(root: Path, category: str) -> CategoryData:
    split = root / SPLIT_CSV
    train, test, missing = [], [], []
    for line, row in enumerate(_read_split(root, category), 2):
        image = root / row["image"]
        if not image.is_file():
            raise LowdataError(f"{split} line {line}: image not found: {image}")
        if row["label"] not in ("normal", "anomaly") or row["split"] not in ("train", "test"):
            raise LowdataError(f"{split} line {line}: label must be normal or anomaly and split train or test, "
                               f"not {row['label']!r}, {row['split']!r}")
        if row["label"] == "normal":
            (train if row["split"] == "train" else test).append(Sample(image, 0))
            continue
        if row["split"] == "train":
            raise LowdataError(f"{split} line {line}: an anomaly in the training split ({image})")
        mask = root / row["mask"] if (row["mask"] or "").strip() else None
        if mask is None:
            missing.append(row["image"])
        elif not mask.is_file():
            raise LowdataError(f"{split} line {line}: mask not found: {mask}")
        test.append(Sample(image, 1, "bad", mask))
    return finish("visa", category, root, train, split, test, split, missing, notes={"split": str(split)})


def load_visa(root: str | Path, category: str) -> CategoryData:
    """One VisA category in either layout (see the module docstring): the original one when the root has
    ``split_csv/1cls.csv`` and the category has no ``train`` folder, else the converted one.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, the split file names a file that does not exist, a folder of
        the layout is missing, or there are no training or no test images.
    """
    root = check_root(root)
    if (root / SPLIT_CSV).is_file() and not (root / category / "train").is_dir():
        return _original(root, category)
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, "train/good")
    test, missing = [], []
    if (test_dir / "bad").is_dir():
        masks = folder / "ground_truth" / "bad"
        test += defects(test_dir / "bad", "bad", lambda p: existing(masks / f"{p.stem}.png"), root, missing)
    if (test_dir / "good").is_dir():
        test += normals(test_dir / "good")
    return finish("visa", category, root, train, train_dir, test, test_dir, missing)
