"""How a bank's training samples are read: :class:`LocationBlocks`, ``(n, L, d)`` samples a block of locations
at a time from an array or the rows of several (memory-mapped feature packs, aligned on read), never copied
whole; and :class:`GramSums`, their running sums, so that a nested series of training sets is fitted by adding
the new samples only."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import LowdataError
from ..core.grids import AlignedLevels
from .covariance import BLOCK, BLOCK_BYTES


class LocationBlocks:
    """``n`` samples ``(n, L, d)`` read a block of locations at a time: an array, or the rows ``rows`` of the
    concatenation of one or more parts (in memory or memory-mapped: the feature packs of the study's
    originals and copies), never copied whole. A part is an ``(N_i, L, d)`` array or an
    :class:`~lowdata.core.grids.AlignedLevels` (levels stored unaligned, aligned on read; ``L = H * W``)."""

    def __init__(self, X: "np.ndarray | AlignedLevels | Sequence", rows: np.ndarray | None = None):
        parts = [X] if isinstance(X, (np.ndarray, AlignedLevels)) else list(X)
        shapes = [self._shape(p) for p in parts]
        if not parts or any(s is None or s[1:] != shapes[0][1:] for s in shapes):
            raise LowdataError(f"expected samples shaped (n, locations, features), got {[np.shape(p) for p in parts]}")
        if rows is None and len(parts) > 1:
            rows = np.arange(sum(s[0] for s in shapes))
        self.parts, self.dtype = parts, np.result_type(*[p.dtype for p in parts])
        self.L, self.d = shapes[0][1], shapes[0][2]
        if rows is None:
            self.n, self._where = shapes[0][0], None
        else:
            rows = np.asarray(rows, dtype=np.intp)
            starts = np.cumsum([0] + [s[0] for s in shapes])
            if len(rows) and (rows.min() < 0 or rows.max() >= starts[-1]):
                raise LowdataError(f"rows {rows.min()}..{rows.max()} of {starts[-1]} samples")
            part = np.searchsorted(starts, rows, side="right") - 1
            self.n = len(rows)
            # per part: the rows read from it and where they go in a block (one fancy read per part)
            self._where = [(p, rows[part == p] - starts[p], np.flatnonzero(part == p)) for p in np.unique(part)]
        self._buf = None

    @staticmethod
    def _shape(p) -> tuple[int, int, int] | None:
        if isinstance(p, AlignedLevels):
            n, H, W, D = p.shape
            return (n, H * W, D)
        return tuple(np.shape(p)) if np.ndim(p) == 3 else None

    def __call__(self, j0: int, j1: int) -> np.ndarray:
        """``(j1 - j0, n, d)``, location-major and C-contiguous (each location's ``n x d`` samples are one
        matrix for BLAS: the float32 Gram of 550 x 592 runs 4x faster than on the sample-major view):
        every sample at locations ``j0..j1-1``, in a buffer of this object's (the previous block's values
        are overwritten: use a block before asking for the next)."""
        l = j1 - j0
        if self._buf is None or self._buf.shape[0] != l:
            self._buf = np.empty((l, self.n, self.d), self.dtype)  # reused block after block
        out = self._buf
        if self._where is None:
            out[...] = np.swapaxes(self._read(self.parts[0], slice(None), j0, j1), 0, 1)
        else:  # part by part: the rows of each in one read
            for p, rows, pos in self._where:
                block = self._read(self.parts[p], rows, j0, j1)  # (k, l, d)
                if len(pos) == self.n:  # every row from this part, in order
                    out[...] = np.swapaxes(block, 0, 1)
                else:
                    out[:, pos] = np.swapaxes(block, 0, 1)
        return out

    @staticmethod
    def _read(part, rows, j0: int, j1: int) -> np.ndarray:
        if isinstance(part, AlignedLevels):
            return part.locations(rows, j0, j1)
        return part[rows, j0:j1]

    def block_size(self) -> int:
        """Locations per block: the block of every sample stays under :data:`BLOCK_BYTES` (float32)."""
        return int(max(1, min(BLOCK, BLOCK_BYTES // max(1, self.n * self.d * 4))))


class GramSums:
    """Running sums of a bank's samples, so that a nested series of training sets (each the previous plus
    some samples: the study's ``--subsets nested``) is fitted by adding the new samples only.

    Per location, about the shift ``c`` (the first samples' mean: the sums do not cancel): ``n``, ``sum (x -
    c)``, the float64 sum of the float32 Gram products ``(x - c)(x - c)^T``, and for Ledoit-Wolf's
    ``sum_k |x_k - mean|^4``, with ``a_k = |x_k - c|^2``: ``sum a_k``, ``sum a_k^2`` and ``sum a_k (x_k - c)``
    (the fourth moments about the final mean follow from these and the Gram sums, exactly in exact
    arithmetic). Memory: ``L d^2`` float64 (1.6 GB for 576 x 592), besides the fitted bank."""

    def __init__(self):
        self.n = 0

    def add(self, src: LocationBlocks) -> "GramSums":
        L, d = src.L, src.d
        if self.n == 0:
            self.L, self.d = L, d
            self.c = np.empty((L, d))
            self.s1, self.t = np.zeros((L, d)), np.zeros((L, d))
            self.gram = np.zeros((L, d, d))
            self.a1, self.a2 = np.zeros(L), np.zeros(L)
        elif (L, d) != (self.L, self.d):
            raise LowdataError(f"samples of {L} locations x {d} features added to sums of {self.L} x {self.d}")
        step, g = src.block_size(), None
        for j0 in range(0, L, step):
            j1 = min(j0 + step, L)
            xt = src(j0, j1)
            if self.n == 0:
                self.c[j0:j1] = xt.mean(axis=1, dtype=np.float64)
            if xt.dtype == np.float32:
                xt -= self.c[j0:j1].astype(np.float32)[:, None, :]
            else:
                xt = (xt - self.c[j0:j1][:, None, :]).astype(np.float32)
            if g is None or g.shape[0] != j1 - j0:
                g = np.empty((j1 - j0, d, d), np.float32)
            self.gram[j0:j1] += np.matmul(np.swapaxes(xt, 1, 2), xt, out=g)
            self.s1[j0:j1] += xt.sum(axis=1, dtype=np.float64)
            a = np.einsum("lnd,lnd->ln", xt, xt, dtype=np.float64)
            self.a1[j0:j1] += a.sum(axis=1)
            self.a2[j0:j1] += (a ** 2).sum(axis=1)
            self.t[j0:j1] += np.einsum("ln,lnd->ld", a, xt.astype(np.float64))
        self.n += src.n
        return self
