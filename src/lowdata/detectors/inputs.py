"""The feature inputs every detector takes, and reading them.

A feature set (anything with per-level ``pooled`` vectors and ``iter_spatial(chunk)``, such as
:class:`lowdata.features.embeddings.Embeddings`: pooled vectors in memory, spatial maps read from the cache in
chunks), a :class:`MapStream` (maps delivered in chunks), :class:`~lowdata.core.grids.MapRows` (rows of
aligned maps, memory-mapped from the feature packs) or plain arrays: a list with one array per feature level,
``(n, c)`` pooled vectors or ``(n, h, w, c)`` maps (pooled detectors average maps themselves), or a single
array for one level. :func:`pooled_levels` and :func:`spatial_chunks` read any of them, so a detector never
tests which it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from ..core.errors import LowdataError
from ..core.grids import AlignedLevels, MapRows, align_levels

__all__ = ["AlignedLevels", "FeatureSet", "Features", "MapRows", "MapStream", "align_levels", "pooled_levels",
           "spatial_chunks", "stack_maps"]


@runtime_checkable
class FeatureSet(Protocol):
    """What a detector reads from a set of encoded images: per-level ``(n, c)`` pooled vectors, and the
    per-level ``(b, h, w, c)`` spatial maps a chunk at a time (:class:`lowdata.features.embeddings.Embeddings`)."""

    pooled: list

    def iter_spatial(self, chunk: int = 64) -> Iterator[list[np.ndarray]]: ...

    def __len__(self) -> int: ...


@dataclass
class MapStream:
    """``n`` images' maps delivered in chunks, for PaDiM on more maps than fit in memory:
    ``chunks()`` returns an iterable of per-level lists of ``(b, h, w, c)`` arrays."""

    n: int
    chunks: Callable[[], Iterable[Sequence[np.ndarray]]]

    def __len__(self) -> int:
        return self.n


Features = Union[FeatureSet, "MapStream", MapRows, Sequence[np.ndarray], np.ndarray]


def pooled_levels(X: Features) -> list[np.ndarray]:
    """Per level, ``(n, c)`` pooled vectors (maps are averaged over their grid)."""
    if isinstance(X, FeatureSet):
        return list(X.pooled)
    arrays = [X] if isinstance(X, np.ndarray) else list(X)
    if not arrays:
        raise LowdataError("no feature levels given")
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 4:
            a = a.mean(axis=(1, 2), dtype=np.float64)
        if a.ndim != 2:
            raise LowdataError(f"expected (n, c) vectors or (n, h, w, c) maps per level, got shape {a.shape}")
        out.append(a)
    if len({len(a) for a in out}) != 1:
        raise LowdataError(f"levels have different numbers of images: {[len(a) for a in out]}")
    return out


def spatial_chunks(X: Features, chunk: int = 64) -> tuple[int, Iterator[np.ndarray]]:
    """Number of images and an iterator of aligned ``(b, H, W, D)`` chunks."""
    if isinstance(X, FeatureSet):
        return len(X), (align_levels(m) for m in X.iter_spatial(chunk))
    if isinstance(X, MapStream):
        return X.n, (align_levels(m) for m in X.chunks())
    if isinstance(X, AlignedLevels):
        X = MapRows(X, np.arange(len(X)))
    if isinstance(X, MapRows):
        return len(X), X.chunks(chunk)
    arrays = [X] if isinstance(X, np.ndarray) else list(X)
    if not arrays or any(np.ndim(a) != 4 for a in arrays):
        raise LowdataError(f"PaDiM needs (n, h, w, c) maps per level, got shapes {[np.shape(a) for a in arrays]}")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise LowdataError(f"levels have different numbers of images: {[len(a) for a in arrays]}")
    return n, (align_levels([a[i:i + chunk] for a in arrays]) for i in range(0, n, chunk))


def stack_maps(X: Features, chunk: int = 256) -> np.ndarray:
    """Every image's aligned ``(H, W, D)`` map in one ``(n, H, W, D)`` array (what a maps-consuming
    detector trains on from memory)."""
    n, chunks = spatial_chunks(X, chunk)
    return np.concatenate(list(chunks))
