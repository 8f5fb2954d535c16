"""Feature maps of several grids brought to one: what every maps detector, and the feature store, work on."""

from __future__ import annotations

from typing import Sequence

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
