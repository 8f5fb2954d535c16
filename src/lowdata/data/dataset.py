"""What a category of an inspection data set holds: normal training images and a labelled test set.

Every source (:mod:`lowdata.data.mvtec` for any folder in the MVTec AD layout, :mod:`lowdata.data.elpv`
for the ELPV solar cells, and the others of :data:`lowdata.data.sources.SOURCES`) returns a
:class:`CategoryData`; :func:`lowdata.data.sources.load_category` picks the source.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import LowdataError

NORMAL = "good"


@dataclass(frozen=True)
class Sample:
    """One image: ``label`` 0 normal, 1 anomalous; ``defect_type`` ``'good'`` for normal images.

    Parameters
    ----------
    path : Path
        The image file.
    label : int
        0 normal, 1 anomalous.
    defect_type : str, default='good'
        The defect's type (its test folder), ``'good'`` for normal images.
    mask_path : Path or tuple of Path or None, default=None
        Its ground-truth mask, if it has one; several masks (MVTec LOCO AD: one per defect) are a tuple,
        merged (their union) by :func:`load_mask`.
    """

    path: Path
    label: int
    defect_type: str = NORMAL
    mask_path: Path | tuple[Path, ...] | None = None

    @property
    def mask_files(self) -> tuple[Path, ...]:
        """Its mask files: none, one, or several (merged)."""
        if self.mask_path is None:
            return ()
        return tuple(self.mask_path) if isinstance(self.mask_path, tuple) else (self.mask_path,)


@dataclass
class CategoryData:
    """What a category of an inspection data set holds: normal training images and a labelled test set.

    Parameters
    ----------
    source : str
        The data source (``elpv``, ``mvtec``).
    category : str
        The category's name.
    train : list of Sample
        The normal training images.
    test : list of Sample
        The labelled test images.
    root : Path or None, default=None
        The folder the images were found under.
    notes : dict, default={}
        What the loader records about the labels and the split (ELPV's options).
    """

    source: str
    category: str
    train: list[Sample]
    test: list[Sample]
    root: Path | None = None
    notes: dict = field(default_factory=dict)

    @property
    def test_labels(self) -> np.ndarray:
        """The test images' labels (0 normal, 1 anomalous), an int64 array in the order of ``test``."""
        return np.array([s.label for s in self.test], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Images per split and defect type, e.g. ``{'train/good': 209, 'test/broken_large': 20}``.

        Returns
        -------
        dict of str to int
            ``train/good`` and ``test/<defect type>`` -> number of images.
        """
        out: dict[str, int] = {"train/good": len(self.train)}
        for s in self.test:
            out[f"test/{s.defect_type}"] = out.get(f"test/{s.defect_type}", 0) + 1
        return out


def _read_one(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    try:
        with Image.open(path) as m:
            size = m.size
            m = m.convert("L")
            if m.size != (shape[1], shape[0]):
                m = m.resize((shape[1], shape[0]), Image.NEAREST)
            return np.asarray(m) > 127, size
    except (OSError, ValueError) as exc:
        raise LowdataError(f"cannot read mask {path}: {exc}") from None


def _read_mask(sample: Sample, shape: tuple[int, int]) -> tuple[np.ndarray, list[tuple[Path, tuple[int, int]]]]:
    """The union of the sample's masks at ``shape``, and each mask file with its own size."""
    out, sizes = np.zeros(shape, dtype=bool), []
    for path in sample.mask_files:
        mask, size = _read_one(path, shape)
        out |= mask
        sizes.append((path, size))
    return out, sizes


def load_mask(sample: Sample, shape: tuple[int, int]) -> np.ndarray:
    """The sample's ground-truth mask as a bool array of ``shape`` (all False for normal images).

    Parameters
    ----------
    sample : Sample
        An image.
    shape : tuple of int
        ``(h, w)``: the mask is resized to it (nearest neighbour).

    Returns
    -------
    ndarray of shape (h, w)
        True on the defect's pixels (on any of its masks' where it has several).

    Raises
    ------
    lowdata.LowdataError
        If the mask file cannot be read.
    """
    if sample.mask_path is None:
        return np.zeros(shape, dtype=bool)
    return _read_mask(sample, shape)[0]


def load_masks(samples: list[Sample], shape: tuple[int, int]) -> np.ndarray:
    """The samples' masks (:func:`load_mask`) as one ``(n, h, w)`` bool array. A mask of another size than its
    image (a 77 x 77 mask for a 128 x 128 image) is stretched to the image like the others, and one warning
    names how many and the first pair: the pixel metrics then rest on a mask that was not drawn on that image.

    Parameters
    ----------
    samples : list of Sample
        Images.
    shape : tuple of int
        ``(h, w)``: every mask is resized to it (nearest neighbour).

    Returns
    -------
    ndarray of shape (n, h, w)
        True on the defects' pixels.

    Raises
    ------
    lowdata.LowdataError
        If a mask file cannot be read.
    """
    from .images import image_size

    out, odd = [], []
    for s in samples:
        if s.mask_path is None:
            out.append(np.zeros(shape, dtype=bool))
            continue
        mask, sizes = _read_mask(s, shape)
        out.append(mask)
        for path, size in sizes:
            if size != image_size(s.path):
                odd.append((s, path, size, image_size(s.path)))
    if odd:
        s, path, (mw, mh), (iw, ih) = odd[0]
        warnings.warn(f"{len(odd)} of the {sum(len(x.mask_files) for x in samples)} masks differ in size from "
                      f"their images (the mask {path} is {mw}x{mh}, its image {s.path} {iw}x{ih}): each is "
                      "stretched to its image for the pixel metrics, which may then be wrong; check the masks",
                      stacklevel=2)
    return np.stack(out) if out else np.zeros((0, *shape), dtype=bool)
