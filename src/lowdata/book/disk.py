"""Before ``lowdata book``: the disk the category studies' maps need, against the cache's free space."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import LowdataError
from ..data.sources import load_category
from ..features import manage
from ..features.backbones import default_input_size
from ..features.cache import default_cache_root

#: (stride, channels) of each level (known without loading the model: TensorFlow stays out of this process)
LEVEL_GRIDS = {"efficientnet-lite0": ((16, 80), (32, 192), (32, 320)), "efficientnet-lite1": ((16, 80), (32, 192), (32, 320)),
               "efficientnet-lite2": ((16, 88), (32, 208), (32, 352)), "efficientnet-b4": ((16, 112), (32, 272), (32, 448)),
               "dinov2-vits14": ((14, 384), (14, 384), (14, 384))}


def needed_bytes(targets, backbone: str, input_size: int | None, root: Path, aug, views: int = 0,
                 others: tuple = (), others_aug=None) -> int:
    """Bytes of maps the studies of ``targets`` (:class:`~lowdata.data.roots.Target`: source, category, root) add to the cache at ``root``:
    every training image at the largest augmentation factor of ``aug`` plus the test images and their ``views``
    test-time views, less those already there, and a margin for the other chapters' images. ``others``: the
    backbone chapter's other backbones whose maps it keeps (for detectors of maps), at ``others_aug``."""
    runs = [(backbone, aug, views)] + [(b, others_aug, 0) for b in others]
    need = 0
    for source, category, data in targets:
        try:
            d = load_category(source, category, root=data)  # once for every backbone
        except LowdataError:
            continue
        for name, factors, k in runs:
            size = int(input_size or default_input_size(name))
            row = sum((-(-size // stride)) ** 2 * c for stride, c in LEVEL_GRIDS.get(name, LEVEL_GRIDS["efficientnet-b4"])) * 4
            factor = max(int(f) for f in str(factors).split(",") if f.strip().isdigit()) if factors is not None else 0
            images = len(d.train) * (1 + factor) + len(d.test) * (1 + k)
            have = manage.labelled_images(root, name, f"{source}/{category}", size) if root.is_dir() else 0
            need += max(0, images - have) * row
    return int(need * 1.15) + (256 << 20)  # other chapters' images (synthetic defects, other policies), results


def check_disk(targets, backbone: str, input_size: int | None, cache_dir, aug, say=print, views: int = 0,
               others: tuple = (), others_aug=None) -> None:
    """Says (``say``) what the run needs and what is free; refused in one line when it does not fit (``others``,
    ``others_aug``: as :func:`needed_bytes`)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()
    need = needed_bytes(targets, backbone, input_size, root, aug, views, others, others_aug)
    free = manage.free_bytes(root)
    also = f"; the maps of {', '.join(others)} for the backbone chapter included" if others else ""
    say(f"disk: this run needs about {need / 1e9:.1f} GB in {root} ({free / 1e9:.1f} GB free there{also})")
    if free < need:
        raise LowdataError(f"not enough disk for this run: it needs about {need / 1e9:.1f} GB in {root} and "
                           f"{free / 1e9:.1f} GB are free: free some (`lowdata cache prune`), or point --cache or "
                           "LOWDATA_CACHE to a larger disk")
