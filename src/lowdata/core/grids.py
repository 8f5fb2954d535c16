"""Feature maps of several grids brought to one: what every maps detector works on, aligned at once
(:func:`align_levels`) or on read (:class:`AlignedLevels`, over the feature packs' unaligned levels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .errors import LowdataError


def align_levels(maps: Sequence[np.ndarray]) -> np.ndarray:
    """``(n, H, W, sum c)``: each level's ``(n, h, w, c)`` map brought to the finest grid (nearest
    neighbour: cell ``i`` reads cell ``floor((i + 1/2) h / H)``, i.e. plain repetition for a factor 2)."""
    if any(m.ndim != 4 for m in maps):
        raise LowdataError(f"expected (n, h, w, c) maps, got shapes {[m.shape for m in maps]}")
    if len(maps) == 1 and maps[0].dtype == np.float32:  # already one grid: nothing to align or copy
        return maps[0]
    n = maps[0].shape[0]
    H = max(m.shape[1] for m in maps)
    W = max(m.shape[2] for m in maps)
    out = np.empty((n, H, W, sum(m.shape[3] for m in maps)), np.float32)
    c0 = 0
    for m in maps:
        h, w, c = m.shape[1:]
        dst = out[..., c0:c0 + c]
        if H % h == 0 and W % w == 0:  # whole factors: broadcast each cell over its block, one pass
            dst.reshape(n, h, H // h, w, W // w, c)[...] = m[:, :, None, :, None, :]
        else:
            rows = ((np.arange(H) + 0.5) * h / H).astype(int)
            cols = ((np.arange(W) + 0.5) * w / W).astype(int)
            dst[...] = m[:, rows][:, :, cols]
        c0 += c
    return out


def _source_cells(h: int, w: int, H: int, W: int) -> np.ndarray:
    """For each cell of the ``H x W`` grid (raster order), the cell of an ``h x w`` grid it reads (the rule of
    :func:`align_levels`), in that grid's raster order."""
    rows = ((np.arange(H) + 0.5) * h / H).astype(np.intp)
    cols = ((np.arange(W) + 0.5) * w / W).astype(np.intp)
    return (rows[:, None] * w + cols[None, :]).reshape(-1)


class AlignedLevels:
    """``n`` images' per-level ``(n, h, w, c)`` maps, read as if they were the ``(n, H, W, sum c)`` array of
    :func:`align_levels`: the alignment is done on read, for the rows (and grid locations) asked for, so the
    levels are stored once, unaligned (in memory or memory-mapped from a feature pack).

    ``a[rows]`` (an int, a slice or an array of rows) gives aligned ``(k, H, W, D)`` maps; :meth:`locations`
    a block of grid locations of some rows, ``(k, j1 - j0, D)``, what PaDiM's Gaussians read."""

    def __init__(self, levels: Sequence[np.ndarray]):
        levels = list(levels)
        if not levels or any(np.ndim(m) != 4 or len(m) != len(levels[0]) for m in levels):
            raise LowdataError(f"expected per-level (n, h, w, c) maps of as many images, got shapes "
                               f"{[np.shape(m) for m in levels]}")
        self.levels = levels
        self.H = max(m.shape[1] for m in levels)
        self.W = max(m.shape[2] for m in levels)
        self.D = sum(m.shape[3] for m in levels)
        self.dtype = np.result_type(*[m.dtype for m in levels])
        # per level: its maps as (n, h * w, c), and the cell each aligned location reads (None: the same grid)
        self._flat = [m.reshape(len(m), m.shape[1] * m.shape[2], m.shape[3]) for m in levels]
        self._cells = [None if m.shape[1:3] == (self.H, self.W) else _source_cells(m.shape[1], m.shape[2], self.H,
                                                                                     self.W) for m in levels]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.levels[0]), self.H, self.W, self.D)

    ndim = 4

    def __len__(self) -> int:
        return len(self.levels[0])

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[np.array([rows])][0]
        return align_levels([np.asarray(m[rows]) for m in self.levels])

    def locations(self, rows, j0: int, j1: int, out: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), j1 - j0, D)``: the aligned grid locations ``j0..j1-1`` (raster order) of ``rows``
        (a slice or an array of rows), written into ``out`` when given."""
        k = len(range(len(self))[rows]) if isinstance(rows, slice) else len(rows)
        if out is None:
            out = np.empty((k, j1 - j0, self.D), self.dtype)
        c0 = 0
        for flat, cells in zip(self._flat, self._cells):
            c = flat.shape[2]
            if cells is None:
                out[:, :, c0:c0 + c] = flat[rows, j0:j1]
            else:  # the coarser grid's cells this block reads: one contiguous run, then repeated
                want = cells[j0:j1]
                a, b = int(want.min()), int(want.max()) + 1
                out[:, :, c0:c0 + c] = flat[rows, a:b][:, want - a]
            c0 += c
        return out


@dataclass
class MapRows:
    """The rows ``rows`` of ``(N, H, W, D)`` aligned maps, or of the concatenation of several such parts (the
    study's pool: the feature packs of the originals, then of each copy; in memory or memory-mapped), not
    copied: read a chunk of rows at a time, or (PaDiM) a block of grid locations of every row. A part is an
    ``(N, H, W, D)`` array or an :class:`~lowdata.core.grids.AlignedLevels` (levels aligned on read)."""

    maps: "np.ndarray | AlignedLevels | Sequence"
    rows: np.ndarray

    def __post_init__(self):
        self.parts = [self.maps] if isinstance(self.maps, (np.ndarray, AlignedLevels)) else list(self.maps)
        if not self.parts or any(np.ndim(p) != 4 or tuple(np.shape(p)[1:]) != tuple(np.shape(self.parts[0])[1:])
                                 for p in self.parts):
            raise LowdataError(f"expected (N, H, W, D) aligned maps, got shapes {[np.shape(p) for p in self.parts]}")
        self.rows = np.asarray(self.rows, dtype=np.intp)
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, picks: np.ndarray) -> "MapRows":
        """The rows at positions ``picks`` of this one (no copy)."""
        return MapRows(self.parts, self.rows[np.asarray(picks, dtype=np.intp)])

    def chunks(self, chunk: int = 256) -> Iterator[np.ndarray]:
        for i in range(0, len(self.rows), chunk):
            rows = self.rows[i:i + chunk]
            part = np.searchsorted(self._starts, rows, side="right") - 1
            out = None
            for p in np.unique(part):  # one read per part
                pos = np.flatnonzero(part == p)
                got = np.asarray(self.parts[p][rows[pos] - self._starts[p]])
                if out is None:
                    out = np.empty((len(rows),) + got.shape[1:], got.dtype)
                out[pos] = got
            yield out
