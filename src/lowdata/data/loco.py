"""MVTec LOCO AD: five scenes with structural anomalies (scratches, dents) and logical ones (a missing or
misplaced part, a wrong count).

``<root>/<category>/train/good/*.png`` (normal training images; ``validation/good`` is not read),
``<root>/<category>/test/good/*.png``, ``test/logical_anomalies/*.png``, ``test/structural_anomalies/*.png``,
``<root>/<category>/ground_truth/<kind>/<stem>/000.png, 001.png, ...`` (one mask per defect of the image).

An image's several masks are merged (their union) for the pixel metrics: its :class:`~lowdata.data.dataset.Sample`
points to all of them (``mask_path`` a tuple). Its defect type is its kind, ``logical_anomalies`` or
``structural_anomalies``, so the two can be reported apart. A mask pixel is a defect above 127 (the masks'
defect values are near 255).

Where it comes from: https://www.mvtec.com/company/research/datasets/mvtec-loco; licence CC BY-NC-SA 4.0
(non-commercial use).
"""

from __future__ import annotations

from pathlib import Path

from .dataset import NORMAL, CategoryData
from .images import list_images
from .layout import Archive, Match, defects, expect, finish, normals, open_category

LABEL = "MVTec LOCO AD"
ARCHIVE = Archive("https://www.mydrive.ch/shares/48237/1b9106ccdfbb09a0c414bd49fe44a14a/download/"
                  "430647091-1646842701/mvtec_loco_anomaly_detection.tar.xz",
                  "sha256:9e7c84dba550fd2e59d8e9e231c929c45ba737b6b6a6d3814100f54d63aae687")
KINDS = ("logical_anomalies", "structural_anomalies")
#: what the pixel metrics of a LOCO category are (its own sPRO metric is not implemented)
PIXEL_NOTE = "pixel AUROC and AUPRO on each image's masks merged into one (not MVTec LOCO's own sPRO)"


def detect(folder: Path) -> Match:
    """Whether ``folder`` is an MVTec LOCO AD category (``train/good``, and ``test`` with a kind's folder)."""
    found = expect(folder, "train/good", "test")
    if found.missing is None and not any((folder / "test" / k).is_dir() for k in KINDS):
        return Match(f"missing test/{KINDS[0]}/ or test/{KINDS[1]}/", found.found)
    return found


def load_loco(root: str | Path, category: str) -> CategoryData:
    """One MVTec LOCO AD category (see the module docstring).

    Raises
    ------
    lowdata.LowdataError
        If ``root`` or the category is missing, a folder of the layout is missing, or there are no training
        or no test images.
    """
    root, folder, train, train_dir, test_dir = open_category(root, category, LABEL, f"train/{NORMAL}")
    test, missing = [], []
    if (test_dir / NORMAL).is_dir():
        test += normals(test_dir / NORMAL)

    def masks_of(p, kind):  # every mask of the image: ground_truth/<kind>/<stem>/000.png, 001.png, ...
        where = folder / "ground_truth" / kind / p.stem
        return (tuple(list_images(where)) if where.is_dir() else ()), where

    for kind in KINDS:
        if (test_dir / kind).is_dir():
            test += defects(test_dir / kind, kind, lambda p, kind=kind: masks_of(p, kind), root, missing)
    return finish("loco", category, root, train, train_dir, test, test_dir, missing,
                  notes={"pixel_metrics": PIXEL_NOTE})
