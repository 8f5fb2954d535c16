"""What a category of an inspection data set holds: normal training images and a labelled test set.

Both sources (:mod:`lowdata.mvtec` for any folder in the MVTec AD layout, :mod:`lowdata.elpv` for
the ELPV solar cells) return a :class:`CategoryData`; :func:`load_category` picks the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import LowdataError

NORMAL = "good"


@dataclass(frozen=True)
class Sample:
    """One image: ``label`` 0 normal, 1 anomalous; ``defect_type`` ``'good'`` for normal images."""

    path: Path
    label: int
    defect_type: str = NORMAL
    mask_path: Path | None = None


@dataclass
class CategoryData:
    source: str
    category: str
    train: list[Sample]
    test: list[Sample]
    root: Path | None = None
    notes: dict = field(default_factory=dict)

    @property
    def test_labels(self) -> np.ndarray:
        return np.array([s.label for s in self.test], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Images per split and defect type, e.g. ``{'train/good': 209, 'test/broken_large': 20}``."""
        out: dict[str, int] = {"train/good": len(self.train)}
        for s in self.test:
            out[f"test/{s.defect_type}"] = out.get(f"test/{s.defect_type}", 0) + 1
        return out


def load_mask(sample: Sample, shape: tuple[int, int]) -> np.ndarray:
    """The sample's ground-truth mask as a bool array of ``shape`` (all False for normal images)."""
    if sample.mask_path is None:
        return np.zeros(shape, dtype=bool)
    try:
        with Image.open(sample.mask_path) as m:
            m = m.convert("L")
            if m.size != (shape[1], shape[0]):
                m = m.resize((shape[1], shape[0]), Image.NEAREST)
            return np.asarray(m) > 127
    except (OSError, ValueError) as exc:
        raise LowdataError(f"cannot read mask {sample.mask_path}: {exc}") from None


def load_category(source: str, category: str, root: str | Path | None = None, **options) -> CategoryData:
    """``source`` is ``'elpv'`` (categories mono, poly) or ``'mvtec'`` (any MVTec-layout ``root``)."""
    if source == "elpv":
        from .elpv import load_elpv

        return load_elpv(category, **options)
    if source == "mvtec":
        from .mvtec import load_mvtec

        if root is None:
            raise LowdataError("an MVTec-layout data set needs its root folder (--data ROOT)")
        return load_mvtec(root, category, **options)
    raise LowdataError(f"unknown data source {source!r}; known: elpv, mvtec")


def available_categories(data_root: str | Path | None = None, elpv: bool = True,
                         categories: list[str] | None = None) -> list[tuple[str, str]]:
    """(source, category) pairs: ELPV mono and poly (unless ``elpv`` is false) and every category in the
    MVTec layout under ``data_root``; ``categories`` keeps only those named (an unknown name is an error)."""
    from .elpv import ELPV_CATEGORIES
    from .mvtec import list_categories

    targets = [("elpv", c) for c in ELPV_CATEGORIES] if elpv else []
    if data_root is not None:
        found = list_categories(data_root)
        if not found:
            raise LowdataError(f"no category in the MVTec AD layout (<category>/train/good) under {data_root}")
        targets += [("mvtec", c) for c in found]
    if categories:
        known = {c for _, c in targets}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise LowdataError(f"unknown category {', '.join(map(repr, unknown))}; "
                               f"available: {', '.join(sorted(known))}")
        targets = [t for t in targets if t[1] in categories]
    if not targets:
        raise LowdataError("nothing to run: give an MVTec-layout root (--data ROOT) or keep the ELPV data")
    return targets
