"""Seeded augmented copies of an image under a policy (:mod:`lowdata.data.augment`): copy ``c`` depends only on
``(seed, content hash, c)`` and the policy (:func:`copy_seed`), so copies can be cached; imgaug is imported only
through :mod:`lowdata.data.imgaug_compat`, and only when a copy is made."""

from __future__ import annotations

import hashlib
import operator
from typing import Any

import numpy as np

from ..core.errors import LowdataError
from .augment import DIGEST_VERSION, AugmentPolicy


def augmenter(policy: AugmentPolicy) -> "iaa.Sequential":
    """A fresh, unseeded imgaug pipeline applying every enabled transform of ``policy`` to each image.

    Order: horizontal flip, vertical flip, rot90 (size kept), one affine (translate, rotate, zoom;
    bilinear, padding ``policy.fill``), add, multiply. No-op transforms are left out.
    """
    from .imgaug_compat import iaa  # lazy: imgaug takes 2 s to import (scipy, scikit-image), and only copies need it

    steps = []
    if policy.flip_horizontal:
        steps.append(iaa.Fliplr(0.5))
    if policy.flip_vertical:
        steps.append(iaa.Flipud(0.5))
    if policy.rot90:
        steps.append(iaa.Rot90([0, 1, 2, 3], keep_size=True))
    tx, ty = policy.translate_px
    if tx or ty or policy._enabled("rotate_deg") or policy._enabled("zoom"):
        steps.append(iaa.Affine(
            translate_px={"x": (-tx, tx), "y": (-ty, ty)},
            rotate=policy.rotate_deg if policy._enabled("rotate_deg") else 0.0,
            scale=policy.zoom if policy._enabled("zoom") else 1.0,
            mode=policy.fill,
            order=1,
        ))
    if policy._enabled("add"):
        steps.append(iaa.Add(policy.add))
    if policy._enabled("multiply"):
        steps.append(iaa.Multiply(policy.multiply))
    return iaa.Sequential(steps)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise LowdataError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise LowdataError(f"{name} must be an integer, got {value!r}") from None


def copy_seed(seed: int, content_hash: str, copy: int) -> int:
    """Seed of augmented copy ``copy`` of the image with ``content_hash``: in ``[0, 2**31)``, from SHA-256."""
    seed, copy = _as_int("seed", seed), _as_int("copy", copy)
    if copy < 0:
        raise LowdataError(f"copy index must be >= 0, got {copy}")
    if not isinstance(content_hash, str) or not content_hash:
        raise LowdataError(f"content_hash must be a non-empty string, got {content_hash!r}")
    h = hashlib.sha256(f"{DIGEST_VERSION}|seed={seed}|image={content_hash}|copy={copy}".encode())
    return int.from_bytes(h.digest()[:4], "big") & 0x7FFFFFFF


def augment_image(image: np.ndarray, policy: AugmentPolicy, *, seed: int, content_hash: str,
                  copy: int) -> np.ndarray:
    """Augmented copy ``copy`` of an ``(H, W, 3)`` uint8 image: same shape and dtype, and the same
    pixels for the same arguments whatever was augmented before (a fresh pipeline seeded with
    :func:`copy_seed`; imgaug's global random state is not used)."""
    if not isinstance(image, np.ndarray):
        raise LowdataError(f"expected an image array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise LowdataError(f"expected an (H, W, 3) uint8 image, got shape {image.shape} and dtype {image.dtype}")
    if not isinstance(policy, AugmentPolicy):
        raise LowdataError(f"expected an AugmentPolicy, got {policy!r}")
    s = copy_seed(seed, content_hash, copy)
    if policy.is_identity():
        return image.copy()
    aug = augmenter(policy)
    aug.seed_(s)
    out = aug(image=np.ascontiguousarray(image).copy())
    if out.shape != image.shape or out.dtype != np.uint8:  # pragma: no cover - imgaug contract
        raise LowdataError(f"augmentation changed the image from {image.shape} to {out.shape} {out.dtype}")
    return np.ascontiguousarray(out)
