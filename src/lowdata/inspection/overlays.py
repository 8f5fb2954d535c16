"""Heatmap overlays of scored images: what ``lowdata score`` writes for a model whose detector gives maps.

:func:`plan_overlays` decides the files (``<stem>.heatmap.png``) and checks that writing them loses
nothing of the user's; :func:`heatmap_overlay` draws one image under its heatmap.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..core.atomic import atomic_path, make_dirs
from ..core.errors import LowdataError
from ..detectors.heatmaps import upsample_maps
from .inputs import samefile

OVERLAY_SUFFIX = ".heatmap.png"
OVERLAY_MANIFEST = ".lowdata-heatmaps.json"


def overlay_names(paths: Sequence[Path]) -> list[str]:
    """``<stem>.heatmap.png`` per image (a name no input image has); where two images share a stem
    (000.png in two folders), the folder's name goes in front of every name."""
    clash = len({p.stem for p in paths}) < len(paths)
    names, seen = [], Counter()
    for path in paths:
        stem = f"{path.parent.name}-{path.stem}" if clash else path.stem
        seen[stem] += 1
        names.append(f"{stem}{OVERLAY_SUFFIX}" if seen[stem] == 1 else f"{stem}-{seen[stem]}{OVERLAY_SUFFIX}")
    return names


def plan_overlays(out_dir: str | Path, paths: Sequence[Path], write: bool = True) -> list[Path]:
    """The overlay files of ``paths`` in ``out_dir``, after checking that writing them loses nothing: the
    folder is not a file and holds none of the images, and no target is a file lowdata did not write
    (the folder's manifest lists those it wrote). With ``write``, the folder is made and the manifest
    updated, before any overlay is written; without it, this is only the check."""
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise LowdataError(f"the heatmap folder {out_dir} is a file, not a folder: give a folder for the overlays")
    inside = [p for p in paths if samefile(Path(p).parent, out_dir)]
    if inside:
        raise LowdataError(f"the heatmap folder {out_dir} holds images being scored ({Path(inside[0]).name}"
                           + (f" and {len(inside) - 1} more" if len(inside) > 1 else "")
                           + "): give another folder, so that no image of yours sits among the overlays")
    names = overlay_names([Path(p) for p in paths])
    manifest = out_dir / OVERLAY_MANIFEST
    ours: set[str] = set()
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text()).get("written", [])
            ours = {n for n in listed if isinstance(n, str)}
        except (OSError, ValueError, AttributeError):
            ours = set()
    foreign = [n for n in names if os.path.lexists(out_dir / n) and n not in ours]
    if foreign:
        raise LowdataError(f"{out_dir / foreign[0]} exists and was not written by lowdata score: not replacing it"
                           + (f" (nor {len(foreign) - 1} more)" if len(foreign) > 1 else "")
                           + "; give another heatmap folder")
    if not write:
        return [out_dir / n for n in names]
    make_dirs(out_dir)
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps({"written": sorted(ours | set(names))}, indent=0) + "\n")
    return [out_dir / n for n in names]


def heatmap_overlay(image: np.ndarray, grid_map: np.ndarray, threshold: float, *, sigma: float,
                    title: str = "", width_in: float = 5.0):
    """An image under its heatmap: colours from half the threshold (transparent below) to 1.5 times it,
    smoothed by ``sigma`` pixels of the image (the detector's :meth:`~lowdata.detectors.base.Detector.smoothing`);
    the outline marks where the *unsmoothed* map (bilinear) is above the threshold, the same test as the image's
    verdict (its score is the map's largest value). ``grid_map``: ``(h, w)`` anomaly scores on the feature
    grid."""
    H, W = image.shape[:2]
    raw = upsample_maps(np.asarray(grid_map, np.float32)[None], (H, W), sigma=0)[0].astype(np.float64)
    smooth = upsample_maps(np.asarray(grid_map, np.float32)[None], (H, W), sigma=sigma)[0].astype(np.float64)
    lo, hi = 0.5 * threshold, 1.5 * threshold
    cmap = colormaps["jet"]
    fig = Figure(figsize=(width_in, width_in * H / W + 0.5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(image)
    alpha = np.clip((smooth - lo) / (threshold - lo), 0, 1) * 0.55 if threshold > lo else 0.55
    im = ax.imshow(smooth, cmap=cmap, norm=Normalize(lo, hi), alpha=alpha)
    if raw.max() > threshold:
        ax.contour(raw, levels=[threshold], colors="white", linewidths=1.2)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"Mahalanobis distance (threshold {threshold:.4g})")
    return fig
