"""A category's feature pool: its images' embeddings with augmented copies, as one set of rows.

* :class:`AugmentedCopy`: copy ``c`` of an image, made on demand (a picklable callable source for
  :func:`~lowdata.features.encode.encode`, so workers can make it too);
* :func:`encode_augmented`: the embeddings of copies ``1..f`` of every image, cached by
  :func:`~lowdata.features.cache.entry_key`;
* :class:`FeaturePool`: rows ``0..n-1`` are the originals, then copy 1 of each, copy 2, ...; a detector's
  training set is a set of rows with their copies (:meth:`FeaturePool.rows_with_copies`), taken as pooled
  vectors or as aligned spatial maps, whichever the detector consumes (:meth:`FeaturePool.take`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.grids import MapRows
from ..data.augment import AugmentPolicy
from ..data.copies import augment_image
from ..data.images import read_image
from .base import Backbone, Preprocessing
from .cache import EmbeddingCache, entry_key
from .encode import encode
from .embeddings import Embeddings


@dataclass
class AugmentedCopy:
    """A callable source for :func:`lowdata.features.encode.encode`: copy ``copy`` of an image.

    Images are prepared for the backbone first (``prep``: resized to its input size) and augmented at
    that size, so translations are in pixels of the network's input (Table 4 does not say at which size
    the paper applied them)."""

    path: Path
    policy: AugmentPolicy
    seed: int
    content_hash: str
    copy: int
    prep: Preprocessing

    def __call__(self) -> np.ndarray:
        img = self.prep.apply(read_image(self.path))
        return augment_image(img, self.policy, seed=self.seed, content_hash=self.content_hash, copy=self.copy)


def augmented_copies(backbone: Backbone, paths: Sequence[Path], hashes: Sequence[str], policy: AugmentPolicy,
                     copy: int, seed: int) -> list[AugmentedCopy]:
    """Copy ``copy`` of every image, as sources for :func:`~lowdata.features.encode.encode`."""
    return [AugmentedCopy(Path(p), policy, seed, h, copy, backbone.preprocessing) for p, h in zip(paths, hashes)]


def encode_augmented(backbone: Backbone, paths: Sequence[Path], hashes: Sequence[str], cache: EmbeddingCache,
                     policy: AugmentPolicy, factor: int, seed: int, progress: bool = True,
                     label: str | None = None, maps: bool = True) -> list[Embeddings]:
    """Per copy ``c = 1..factor``, the embeddings of copy ``c`` of every image (in ``paths`` order); ``label``
    names them in the feature packs, ``maps=False`` keeps no maps (see :func:`~lowdata.features.encode.encode`)."""
    sources, keys = [], []
    digest = policy.digest()
    for c in range(1, factor + 1):
        sources += augmented_copies(backbone, paths, hashes, policy, c, seed)
        keys += [entry_key(h, digest, seed, c) for h in hashes]
    if not sources:
        return []
    emb = encode(backbone, sources, cache, keys=keys, progress=progress, desc=f"augmenting x{factor}", label=label,
                 maps=maps)
    n = len(paths)
    return [emb.subset(range(c * n, (c + 1) * n)) for c in range(factor)]


@dataclass
class FeaturePool:
    """Features of a pool of images: rows ``0..n_orig-1`` the originals, then each copy of every one in
    turn (``factor`` copies), as per-level pooled vectors and (when a detector needs them) aligned maps."""

    pooled: list[np.ndarray]  # per level (rows, c), originals then copy 1, copy 2, ...
    # (rows * (1 + f), H, W, D) aligned maps, same order: an array, or MapRows over the feature packs (memory-
    # mapped, aligned on read); None when no detector needs them
    maps: "np.ndarray | MapRows | None"
    n_orig: int
    factor: int

    @property
    def dims(self) -> list[int]:
        """The feature dimension of every level."""
        return [p.shape[1] for p in self.pooled]

    def rows_with_copies(self, rows: np.ndarray, factor: int) -> np.ndarray:
        rows = np.asarray(rows, int)
        return np.concatenate([rows + c * self.n_orig for c in range(factor + 1)])

    def take(self, consumes: str, rows: np.ndarray):
        """The rows as a detector consumes them: ``"maps"`` (aligned spatial maps) or ``"pooled"`` (per-level
        pooled vectors)."""
        if consumes == "maps":
            return self.maps.subset(rows) if isinstance(self.maps, MapRows) else self.maps[rows]
        return [p[rows] for p in self.pooled]
