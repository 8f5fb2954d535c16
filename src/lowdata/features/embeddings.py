"""What an encoding gives: :class:`Embeddings` (the images' pooled vectors, their maps on demand) and its
:class:`EncodeStats`; and reading them back from the cache by key (:func:`read_embeddings`, :func:`map_rows`),
which needs no backbone: a worker fitting detectors reads what another worker encoded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.errors import LowdataError
from ..core.grids import AlignedLevels, MapRows
from .cache import DamagedEntry, EmbeddingCache


@dataclass
class EncodeStats:
    images: int
    cached: int
    encoded: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.encoded / self.seconds if self.encoded and self.seconds > 0 else float("nan")


@dataclass
class Embeddings:
    """Pooled vectors of ``n`` images (one ``(n, c)`` array per level); spatial maps on demand.

    Attributes
    ----------
    keys : list of str
        The images' cache keys, in order.
    levels : tuple of str
        The backbone's levels.
    pooled : list of ndarray
        Per level, the ``(n, c)`` pooled vectors.
    cache : EmbeddingCache
        The cache that holds the images' maps (:class:`~lowdata.features.cache.EmbeddingCache`).
    stats : EncodeStats
        How many images were found in the cache and how many encoded, in how many seconds.
    """

    keys: list[str]
    levels: tuple[str, ...]
    pooled: list[np.ndarray]
    cache: EmbeddingCache
    stats: EncodeStats

    def __len__(self) -> int:
        return len(self.keys)

    def pooled_concat(self) -> np.ndarray:
        """``(n, sum of channels)``: the levels' pooled vectors side by side (the KNN input).

        Returns
        -------
        ndarray of shape (n, sum of channels)
            The pooled vectors, level after level.
        """
        return np.concatenate(self.pooled, axis=1)

    def subset(self, indices: Sequence[int]) -> "Embeddings":
        """The embeddings of the images at ``indices`` (in that order).

        Parameters
        ----------
        indices : sequence of int
            Positions of images in these embeddings.

        Returns
        -------
        Embeddings
            Those images' embeddings (same cache and stats).
        """
        idx = np.asarray(indices, dtype=int)
        return Embeddings([self.keys[i] for i in idx], self.levels, [p[idx] for p in self.pooled], self.cache,
                          self.stats)

    @staticmethod
    def concat(parts: Sequence["Embeddings"]) -> "Embeddings":
        """Several embeddings of the same backbone, one after the other.

        Parameters
        ----------
        parts : sequence of Embeddings
            Embeddings of one backbone and one cache.

        Returns
        -------
        Embeddings
            Their images in order, with their stats summed.

        Raises
        ------
        lowdata.LowdataError
            If the parts come from different backbones or caches.
        """
        first = parts[0]
        if any(p.cache.dir != first.cache.dir or p.levels != first.levels for p in parts):
            raise LowdataError("cannot join embeddings of different backbones or caches")
        keys = [k for p in parts for k in p.keys]
        pooled = [np.concatenate([p.pooled[j] for p in parts]) for j in range(len(first.levels))]
        stats = EncodeStats(*(sum(getattr(p.stats, f) for p in parts) for f in ("images", "cached", "encoded",
                                                                                  "seconds")))
        return Embeddings(keys, first.levels, pooled, first.cache, stats)

    def iter_spatial(self, chunk: int = 64):
        """Per-level spatial maps, ``chunk`` images at a time (memory stays bounded for any ``n``).

        Parameters
        ----------
        chunk : int, default=64
            Images per chunk.

        Yields
        ------
        list of ndarray
            Per level, the ``(b, h, w, c)`` float32 maps of the next ``b <= chunk`` images.
        """
        for i in range(0, len(self.keys), chunk):
            yield self.spatial(range(i, min(i + chunk, len(self.keys))))

    def spatial(self, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        """Per level, the ``(n, h, w, c)`` float32 maps of the given images (all by default).

        Parameters
        ----------
        indices : sequence of int or None, default=None
            Positions of images in these embeddings (``None``: every image).

        Returns
        -------
        list of ndarray
            Per level, the ``(n, h, w, c)`` float32 maps.

        Raises
        ------
        lowdata.LowdataError
            If an image's cache entry was damaged or removed since its pooled vectors were read.
        """
        keys = self.keys if indices is None else [self.keys[i] for i in indices]
        per_image = []
        for k in keys:
            try:
                maps = self.cache.read_spatial(k)
            except DamagedEntry as exc:
                raise LowdataError(f"{exc}, after its pooled vectors were read: run again and it will be "
                                   "encoded anew") from None
            if maps is None:
                raise LowdataError(f"cache entry {self.cache.path(k)} was removed after it was read (by another "
                                   "process?): run again and it will be encoded anew")
            per_image.append(maps)
        return [np.stack([m[j] for m in per_image]) for j in range(len(self.levels))]

    def map_rows(self):
        """Every image's maps as :class:`~lowdata.core.grids.MapRows` (see :func:`map_rows`).

        Returns
        -------
        MapRows
            The maps of every image, memory-mapped from the feature packs and aligned on read.
        """
        return map_rows(self.cache, self.keys)


def map_rows(cache: EmbeddingCache, keys: Sequence[str]):
    """The maps of ``keys``, in that order, as :class:`~lowdata.core.grids.MapRows` over their feature
    packs (memory-mapped, aligned on read; nothing copied): what PaDiM fits on and scores. Maps that are lost
    (a pack gone or damaged since the images were encoded) are an error naming the file."""
    parts, index, rows, inline = [], {}, np.empty(len(keys), np.intp), []
    for i, k in enumerate(keys):
        try:
            found = cache.locate(k)
        except DamagedEntry as exc:
            raise LowdataError(f"{exc}: run again and the images will be encoded anew") from None
        if isinstance(found, list):  # an older entry's inline maps
            inline.append((i, found))
            continue
        pack, row = found
        if pack.path.name not in index:
            index[pack.path.name] = (len(parts), sum(len(p) for p in parts))
            parts.append(pack.aligned())
        rows[i] = index[pack.path.name][1] + row
    if inline:
        start = sum(len(p) for p in parts)
        parts.append(AlignedLevels([np.stack([m[j] for _, m in inline]) for j in range(len(cache.levels))]))
        for t, (i, _) in enumerate(inline):
            rows[i] = start + t
    if not parts:
        raise LowdataError("no images to read maps of")
    return MapRows(parts, rows)


def read_embeddings(cache: EmbeddingCache, keys: Sequence[str]) -> Embeddings:
    """Embeddings of images already in the cache, by key (no backbone needed: a worker fitting detectors
    reads what another worker encoded). A missing entry is an error naming it."""
    t0 = time.perf_counter()
    pooled = []
    for k in keys:
        try:
            p = cache.read_pooled(k)
        except DamagedEntry as exc:
            raise LowdataError(f"{exc}: encode the images again (it will be replaced)") from None
        if p is None:
            raise LowdataError(f"cache entry {cache.path(k)} is missing: encode the images first (with a cache "
                               "folder shared by every worker)")
        pooled.append(p)
    if not pooled:
        raise LowdataError("no keys to read")
    stacked = [np.stack([p[j] for p in pooled]) for j in range(len(cache.levels))]
    return Embeddings(list(keys), cache.levels, stacked, cache,
                      EncodeStats(len(keys), len(keys), 0, time.perf_counter() - t0))
