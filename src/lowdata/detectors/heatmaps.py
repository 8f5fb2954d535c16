"""Heatmaps at image size from anomaly maps on the feature grid."""

from __future__ import annotations

import numpy as np
from PIL import Image


def upsample_maps(maps: np.ndarray, size: int | tuple[int, int], sigma: float = 4.0) -> np.ndarray:
    """Bilinear upsampling of ``(n, H, W)`` maps to ``size`` and Gaussian smoothing (``sigma`` pixels)."""
    from scipy.ndimage import gaussian_filter  # lazy: 0.2 s to import, and only heatmaps need it

    h, w = (size, size) if isinstance(size, int) else size
    out = np.empty((len(maps), h, w), np.float32)
    for i, m in enumerate(maps):
        up = np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
        out[i] = gaussian_filter(up, sigma) if sigma > 0 else up
    return out
