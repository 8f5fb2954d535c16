"""The book's figures of images: augmented copies of images (:func:`preview_grid`, also ``lowdata augment-preview``), and
Figure 2's PaDiM heatmaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..core.digests import array_hash
from ..core.errors import LowdataError
from ..data.augment import AugmentPolicy, describe, policy_for
from ..data.copies import augment_image
from ..data.dataset import load_masks
from ..data.images import read_image, resize_rgb
from ..data.sources import load_category
from ..detectors.registry import make_detector
from ..features.backbones import load_backbone
from ..features.encode import cache_for, encode
from ..metrics import image_auroc


def preview_grid(images: list[np.ndarray], policy: AugmentPolicy, *, copies: int = 5, seed: int = 0,
                 titles: list[str] | None = None):
    """A matplotlib Figure to check a policy by eye: one row per image, the original then ``copies``
    augmented copies ``1..copies``, numbered as in the study (copy ``c`` is exactly what :func:`augment_image` makes with this ``seed``)."""
    images = list(images)
    if not images:
        raise LowdataError("preview_grid needs at least one image")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 0:
        raise LowdataError(f"copies must be >= 0, got {copies}")
    if titles is not None and len(titles) != len(images):
        raise LowdataError(f"got {len(titles)} titles for {len(images)} images")
    rows = [[img] + [augment_image(img, policy, seed=seed, content_hash=array_hash(img), copy=c)
                     for c in range(1, copies + 1)] for img in images]
    fig = Figure(figsize=(1.8 * (copies + 1), 1.8 * len(images) + 0.6), layout="constrained")
    axes = fig.subplots(len(images), copies + 1, squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            ax = axes[i, j]
            ax.imshow(img)
            ax.set_axis_off()
            if j == 0:
                ax.set_title(titles[i] if titles is not None else "original", fontsize=8)
            elif i == 0:
                ax.set_title(f"copy {j}", fontsize=8)
    fig.suptitle(f"{policy.name}: {describe(policy)}", fontsize=9)
    return fig


def augmentation_preview(source: str, category: str, root: str | Path | None = None, images: int = 3,
                         copies: int = 5, size: int = 380, seed: int = 0):
    """A grid of augmented copies of a few training images of the category (its policy), as a Figure."""

    data = load_category(source, category, root=root)
    picks = sorted(np.random.default_rng(seed).choice(len(data.train), size=min(images, len(data.train)),
                                                      replace=False))
    imgs = [resize_rgb(read_image(data.train[i].path), size) for i in picks]
    return preview_grid(imgs, policy_for(category), copies=copies, seed=seed,
                        titles=[data.train[i].path.name for i in picks])


def example_images(data, anomalous: int, good: int, seed: int) -> list[int]:
    """Test images to show: ``anomalous`` defective ones drawn with ``seed``, one per defect type in turn, then
    ``good`` good ones."""
    labels = data.test_labels
    rng = np.random.default_rng(seed)
    bad = [i for i in range(len(data.test)) if labels[i]]
    by_kind: dict[str, list[int]] = {}
    for i in rng.permutation(bad):
        by_kind.setdefault(data.test[i].defect_type, []).append(int(i))
    picks: list[int] = []
    while len(picks) < min(anomalous, len(bad)):  # round robin over defect types
        for kind in sorted(by_kind):
            if by_kind[kind] and len(picks) < anomalous:
                picks.append(by_kind[kind].pop(0))
    goods = [int(i) for i in rng.permutation([i for i in range(len(data.test)) if not labels[i]])[:good]]
    return picks + goods


def padim_examples(source: str, category: str, root: str | Path | None, backbone: str, input_size: int | None = None,
                   cache_dir: str | Path | None = None, anomalous: int = 4, good: int = 1, seed: int = 0,
                   progress: bool = False) -> dict:
    """Figure 2's material: PaDiM (Ledoit-Wolf) fitted on the category's whole training set, and
    heatmaps of ``anomalous`` defective and ``good`` normal test images drawn with ``seed`` (one per
    defect type first). Returns images, heatmaps, masks (or None), titles and the image AUROC."""

    data = load_category(source, category, root=root)
    bb = load_backbone(backbone, input_size)
    cache = cache_for(bb, cache_dir)
    train = encode(bb, [s.path for s in data.train], cache, progress=progress, desc=f"{category} train",
                   label=f"{data.source}/{data.category}")
    test = encode(bb, [s.path for s in data.test], cache, progress=progress, desc=f"{category} test",
                  label=f"{data.source}/{data.category}")
    det = make_detector("padim").fit(train)
    scores, maps = det.scores_and_maps(test)
    labels = data.test_labels
    chosen = example_images(data, anomalous, good, seed)
    size = 256
    heat = det.heatmaps(size=size, maps=maps[chosen])
    images = [resize_rgb(read_image(data.test[i].path), size) for i in chosen]
    masks = None
    if any(data.test[i].mask_path is not None for i in chosen):
        masks = load_masks([data.test[i] for i in chosen], (size, size))
    titles = [f"{data.test[i].defect_type} ({scores[i]:.0f})" for i in chosen]
    return {"images": images, "heatmaps": heat, "masks": masks, "titles": titles,
            "auroc": image_auroc(labels, scores), "threshold_note": f"score = max of the map; "
            f"good test images score {np.median(scores[labels == 0]):.0f} (median)"}
