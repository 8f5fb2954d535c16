"""Synthetic defects made from good images: what the automatic augmentation search tells apart from good parts.

No real defect is ever used to choose a policy (:mod:`lowdata.autoaug`). Instead each held-out good image
gets a few synthetic defects, local changes of the kinds inspection looks for. Each generator changes one
region of the image and returns the changed image and the region's mask. Every size is relative to the
image side ``s`` (the backbone's input size, at which they are made):

``patch`` (CutPaste, Li et al. 2021)
    a rectangle of 0.5 to 2 % of the image area (aspect 1/3 to 3) is cut from one place and pasted at
    another, its brightness changed by a factor in [0.8, 1.2];
``scar`` (CutPaste-scar)
    a thin stroke, 1 to 3 % of ``s`` wide and 8 to 20 % long, at a random angle, painted in a random
    colour;
``noise``
    an ellipse of radii 3 to 7 % of ``s`` whose pixels get Gaussian noise of standard deviation 20 to 50
    grey levels (a rough, contaminated or scratched area);
``blob``
    a soft ellipse of radii 3 to 8 % of ``s`` (Gaussian edge), blended at 30 to 70 % with a dark or bright
    random colour (a stain, a burn, a missing coating).

Regions are centred in the middle 80 % of the image. Defect ``v`` of generator ``g`` of an image depends
only on ``(seed, content hash, g, v)`` and :data:`SYNTHETIC_VERSION` (:func:`defect_seed`), so its
features can be cached (:func:`defect_key`).

**Grades.** A defect at strength ``a`` in (0, 1] is the good image moved a share ``a`` of the way to the
defective one, pixel by pixel (``rint(good + a (defect - good))``): the same region, from barely visible
(``a = 0.25``) to the generator's own (``a = 1``). Full-strength defects are easy for every candidate policy on
many categories (their AUROC saturates at 1); fainter ones keep a ranking (:mod:`lowdata.autoaug.search`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..core.errors import LowdataError

SYNTHETIC_VERSION = "lowdata-synthetic-v2"
GENERATORS = ("patch", "scar", "noise", "blob")


def check_generators(names: Sequence[str]) -> tuple[str, ...]:
    """The generators named (at least one, each of :data:`GENERATORS`), else one clear error."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(names)
    bad = [n for n in names if n not in GENERATORS]
    if bad:
        raise LowdataError(f"unknown synthetic defect {bad[0]!r}; choose from {', '.join(GENERATORS)}")
    if not names:
        raise LowdataError(f"no synthetic defect generator given; choose from {', '.join(GENERATORS)}")
    return tuple(dict.fromkeys(names))


def defect_seed(seed: int, content_hash: str, generator: str, variant: int) -> list[int]:
    """The seed sequence of defect ``variant`` of ``generator`` on the image with ``content_hash``."""
    h = hashlib.sha256(f"{SYNTHETIC_VERSION}|seed={int(seed)}|image={content_hash}|{generator}|v={int(variant)}".encode())
    return [int.from_bytes(h.digest()[i:i + 4], "big") for i in (0, 4, 8, 12)]


def defect_key(content_hash: str, generator: str, seed: int, variant: int, strength: float = 1.0) -> str:
    """Cache key of a synthetic defect's features (the image's hash, the generator, the version, seed, variant,
    and its strength when it is not 1)."""
    tag = hashlib.sha256(SYNTHETIC_VERSION.encode()).hexdigest()[:8]
    grade = "" if strength == 1.0 else f"-a{float(strength):.4g}"
    return f"{content_hash}-syn{generator}{tag}-s{int(seed)}-v{int(variant)}{grade}"


def check_grades(grades: Sequence[float]) -> tuple[float, ...]:
    """The defect strengths (each in (0, 1]; full strength 1 always among them, first), else one clear error."""
    if isinstance(grades, str):
        grades = [g.strip() for g in grades.split(",") if g.strip()]
    out = []
    for g in grades:
        try:
            a = float(g)
        except (TypeError, ValueError):
            raise LowdataError(f"a defect strength must be a number in (0, 1], got {g!r}") from None
        if not 0 < a <= 1:
            raise LowdataError(f"a defect strength must be a number in (0, 1], got {g!r}")
        out.append(a)
    return tuple(dict.fromkeys([1.0] + sorted(out, reverse=True)))


def graded(good: np.ndarray, defect: np.ndarray, strength: float) -> np.ndarray:
    """``defect`` at ``strength``: the good image moved that share of the way to it (1: ``defect`` itself)."""
    if strength == 1.0:
        return defect
    out = good.astype(np.float64) + float(strength) * (defect.astype(np.float64) - good)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _centre(rng: np.random.Generator, h: int, w: int) -> tuple[float, float]:
    return rng.uniform(0.1 * h, 0.9 * h), rng.uniform(0.1 * w, 0.9 * w)


def _ellipse(rng, h: int, w: int, lo: float, hi: float):
    """Normalised squared radius ``q`` (1 on the edge) of a random rotated ellipse, per pixel."""
    s = min(h, w)
    cy, cx = _centre(rng, h, w)
    ry, rx = rng.uniform(lo * s, hi * s, size=2)
    ry, rx = max(ry, 1.5), max(rx, 1.5)
    a = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = y - cy, x - cx
    u, v = dy * np.cos(a) + dx * np.sin(a), -dy * np.sin(a) + dx * np.cos(a)
    return (u / ry) ** 2 + (v / rx) ** 2


def _patch(img: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    area = rng.uniform(0.005, 0.02) * h * w
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3)))
    ph = int(np.clip(round(np.sqrt(area * aspect)), 2, h - 1))
    pw = int(np.clip(round(np.sqrt(area / aspect)), 2, w - 1))
    sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
    cy, cx = _centre(rng, h, w)
    ty = int(np.clip(round(cy - ph / 2), 0, h - ph))
    tx = int(np.clip(round(cx - pw / 2), 0, w - pw))
    piece = img[sy:sy + ph, sx:sx + pw].astype(np.float64) * rng.uniform(0.8, 1.2)
    out = img.copy()
    out[ty:ty + ph, tx:tx + pw] = np.clip(np.rint(piece), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    mask[ty:ty + ph, tx:tx + pw] = True
    return out, mask


def _scar(img: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    s = min(h, w)
    width = max(1.0, rng.uniform(0.01, 0.03) * s)
    length = rng.uniform(0.08, 0.20) * s
    cy, cx = _centre(rng, h, w)
    a = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = y - cy, x - cx
    along, across = dy * np.cos(a) + dx * np.sin(a), -dy * np.sin(a) + dx * np.cos(a)
    mask = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
    if not mask.any():
        mask[int(cy), int(cx)] = True
    out = img.copy()
    out[mask] = rng.integers(0, 256, size=3).astype(np.uint8)
    return out, mask


def _noise(img: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    mask = _ellipse(rng, h, w, 0.03, 0.07) <= 1.0
    sd = rng.uniform(20, 50)
    out = img.astype(np.float64)
    out[mask] += rng.normal(0, sd, size=(int(mask.sum()), img.shape[2]))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _blob(img: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    q = _ellipse(rng, h, w, 0.03, 0.08)
    alpha = rng.uniform(0.3, 0.7) * np.exp(-np.maximum(q - 1.0, 0.0) * 4.0) * (q <= 2.0)
    dark = rng.random() < 0.5
    colour = rng.integers(0, 60, size=3) if dark else rng.integers(196, 256, size=3)
    out = img.astype(np.float64) * (1 - alpha[..., None]) + colour[None, None, :] * alpha[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), q <= 1.0


_MAKERS = {"patch": _patch, "scar": _scar, "noise": _noise, "blob": _blob}


def make_defect(image: np.ndarray, generator: str, *, seed: int, content_hash: str,
                variant: int) -> tuple[np.ndarray, np.ndarray]:
    """``(defective image, region mask)``: defect ``variant`` of ``generator`` on an ``(H, W, 3)`` uint8 image,
    the same for the same arguments."""
    if generator not in _MAKERS:
        check_generators([generator])
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or min(image.shape[:2]) < 8:
        raise LowdataError(f"expected an (H, W, 3) uint8 image of at least 8 x 8 pixels, got "
                           f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    rng = np.random.default_rng(defect_seed(seed, content_hash, generator, variant))
    out, mask = _MAKERS[generator](np.ascontiguousarray(image), rng)
    return np.ascontiguousarray(out), mask


@dataclass
class SyntheticDefect:
    """A callable image source for :func:`lowdata.features.encode.encode`: defect ``variant`` of ``generator``
    on an image, made at the backbone's input size (``prep``). ``path``: a file, or an image array."""

    path: "Path | np.ndarray"
    generator: str
    seed: int
    content_hash: str
    variant: int
    prep: object  # lowdata.features.base.Preprocessing (duck-typed: this module sits below features)
    strength: float = 1.0  # its grade (see the module docstring)

    def __call__(self) -> np.ndarray:
        from .images import read_image

        img = self.path if isinstance(self.path, np.ndarray) else read_image(self.path)
        img = self.prep.apply(img)
        out = make_defect(img, self.generator, seed=self.seed, content_hash=self.content_hash, variant=self.variant)[0]
        return graded(img, out, self.strength)


def defect_sources(paths: Sequence, hashes: Sequence[str], generators: Sequence[str], variants: int, seed: int,
                   prep, grades: Sequence[float] = (1.0,)) -> tuple[list[SyntheticDefect], list[str], list[int]]:
    """Every defect of every image: ``(sources, cache keys, index of the image each is made from)``, image by
    image, then generator, then variant, then strength (``grades``; each source's ``strength``)."""
    sources, keys, owner = [], [], []
    for i, (p, h) in enumerate(zip(paths, hashes)):
        for g in generators:
            for v in range(variants):
                for a in grades:
                    sources.append(SyntheticDefect(p if isinstance(p, np.ndarray) else Path(p), g, seed, h, v, prep,
                                                   float(a)))
                    keys.append(defect_key(h, g, seed, v, a))
                    owner.append(i)
    return sources, keys, owner


def defect_examples(image: np.ndarray, *, content_hash: str = "example", seed: int = 0,
                    generators: Sequence[str] = GENERATORS, variants: int = 2, title: str | None = None) -> Figure:
    """A figure: the good image, then each generator's defects with their region outlined in red."""
    generators = check_generators(generators)
    cols = 1 + len(generators) * variants
    fig = Figure(figsize=(1.9 * cols, 2.3), layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False)[0]
    axes[0].imshow(image)
    axes[0].set_title("good image", fontsize=9)
    k = 1
    for g in generators:
        for v in range(variants):
            out, mask = make_defect(image, g, seed=seed, content_hash=content_hash, variant=v)
            axes[k].imshow(out)
            axes[k].contour(mask.astype(float), levels=[0.5], colors="red", linewidths=0.8)
            axes[k].set_title(f"{g} {v + 1}", fontsize=9)
            k += 1
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
