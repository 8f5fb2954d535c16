"""Reading image files into uint8 RGB arrays, and listing the images of a folder.

Every image becomes an ``(H, W, 3)`` uint8 RGB array: grayscale (MVTec grid, screw, zipper; ELPV)
is repeated to 3 channels, alpha is dropped, 16-bit images are scaled to 8 bits (``v * 255 / 65535``,
rounded). A missing, corrupt or unreadable file raises :class:`LowdataError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import LowdataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to a uint8 RGB array."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if mode == "I" and arr.max(initial=0) > 65535:
            raise LowdataError(f"32-bit integer images are not supported (max value {arr.max():.0f})")
        arr = np.clip(np.rint(arr * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        raise LowdataError("floating-point images are not supported; save them as 8- or 16-bit")
    if mode == "L":
        arr = np.asarray(img, dtype=np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB").convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file to an ``(H, W, 3)`` uint8 RGB array."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb8(img)
    except FileNotFoundError:
        raise LowdataError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise LowdataError(f"expected an image file, found a folder: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise LowdataError(f"cannot read image {path}: {exc}") from None
    except LowdataError as exc:
        raise LowdataError(f"cannot read image {path}: {exc}") from None


def resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size x size`` (bilinear, antialiased when shrinking), as the paper: no other change."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def list_images(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` (sorted by name). Other files are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LowdataError(f"folder not found: {folder}")
    images, skipped = [], []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(p)
        elif p.is_file():
            skipped.append(p.name)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} non-image file(s) in {folder}: {shown}", stacklevel=2)
    return images
