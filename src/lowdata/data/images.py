"""Reading image files into uint8 RGB arrays, and listing the images of a folder.

Every image becomes an ``(H, W, 3)`` uint8 RGB array: grayscale (MVTec grid, screw, zipper; ELPV)
is repeated to 3 channels, alpha is dropped, 16-bit images are scaled to 8 bits (``v * 255 / 65535``,
rounded). A missing, corrupt or unreadable file raises :class:`LowdataError` naming the file.

* **EXIF orientation** (phones, many industrial cameras store the sensor's pixels and a tag saying how
  to turn them): the tag is applied (Pillow's ``ImageOps.exif_transpose``), so an image is read as it
  is shown. Its size (:func:`image_size`) is the shown size too.
* **Several frames** (an animated GIF, a multi-page TIFF): the first is read, and a warning names the file.
* **Pixel limit**: an image of more than :data:`MAX_PIXELS` pixels (default 100 million, e.g.
  10000 x 10000; ``$LOWDATA_MAX_PIXELS`` changes it) is refused before it is decoded, naming the file
  and its pixel count: a small file can hold a huge image (a "decompression bomb": 14000 x 14000 in
  190 KB of PNG) that would take gigabytes to decode.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.atomic import os_error_text
from ..core.errors import LowdataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAX_PIXELS_ENV = "LOWDATA_MAX_PIXELS"
EXIF_ORIENTATION = 0x0112


def _max_pixels() -> int:
    text = os.environ.get(MAX_PIXELS_ENV, "")
    try:
        return int(float(text)) if text.strip() else 100_000_000
    except ValueError:
        raise LowdataError(f"{MAX_PIXELS_ENV}={text!r} is not a number of pixels") from None


MAX_PIXELS = _max_pixels()
# Pillow refuses images over twice its own limit before we can see their size; keep its limit above ours
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)


def _too_big(path, pixels: int, size: tuple[int, int] | None = None) -> LowdataError:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return LowdataError(f"image {path} is {dims}{pixels:,} pixels, over the limit of {MAX_PIXELS:,} "
                        f"(a small file can decode to a huge image); set {MAX_PIXELS_ENV} to allow larger images")


@contextmanager
def open_image(path: str | Path):
    """``PIL.Image.open`` with lowdata's checks: the pixel limit, and every failure as a one-line error
    naming the file. The image is not decoded yet (``img.load()`` does that)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit, checked below
            img = Image.open(path)
    except FileNotFoundError:
        raise LowdataError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise LowdataError(f"expected an image file, found a folder: {path}") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(path, int(found.group(1)) if found else MAX_PIXELS + 1) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise LowdataError(f"cannot read image {path}: {exc}") from None
    with img:
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise _too_big(path, w * h, (w, h))
        try:
            yield img
        except LowdataError as exc:
            raise LowdataError(f"cannot read image {path}: {exc}") from None
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise LowdataError(f"cannot read image {path}: {exc}") from None


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1: as stored; 2-8: mirrored and/or turned), 1 when absent or invalid."""
    try:
        o = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: the pixels are read as stored
        return 1
    return o if isinstance(o, int) and 1 <= o <= 8 else 1


def file_orientation(data: bytes, name: str = "") -> int:
    """The EXIF orientation of an image file's bytes; parsed only when the file can hold EXIF data."""
    if b"Exif" not in data and b"eXIf" not in data and not name.lower().endswith((".tif", ".tiff")):
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return orientation(img)
    except Exception:  # not an image: read_image will say so, with the file's name
        return 1


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
    """Decode one image file to an ``(H, W, 3)`` uint8 RGB array, turned as its EXIF orientation says. Of an
    animated GIF or a multi-page TIFF the first frame is read, with a warning naming the file."""
    with open_image(path) as img:
        frames = getattr(img, "n_frames", 1)
        if isinstance(frames, int) and frames > 1 and img.format != "MPO":  # MPO: a camera JPEG and its preview
            warnings.warn(f"{path} holds {frames} frames (an animated or multi-page image): only the first is "
                          "read", stacklevel=2)
        img.load()
        if orientation(img) != 1:
            img = ImageOps.exif_transpose(img)
        return to_rgb8(img)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as shown (EXIF orientation applied), from the file's header."""
    with open_image(path) as img:
        w, h = img.size
        return (h, w) if orientation(img) in (5, 6, 7, 8) else (w, h)


def resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size x size`` (bilinear, antialiased when shrinking), as the paper: no other change."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def _why_skipped(p: Path) -> str | None:
    """Why the folder entry ``p`` is not an image to read (``None``: it is one)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return "dangling symlink" if p.is_symlink() else "vanished"
    except OSError as exc:
        return f"unreadable: {os_error_text(exc)}"
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not searched"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        return "not an image file"
    if not os.access(p, os.R_OK):
        return "unreadable: permission denied"
    return None


def list_images(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` (sorted by name). Every other entry (other files, folders, dangling
    symlinks, unreadable or special files) is skipped with one warning that names it and says why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LowdataError(f"folder not found: {folder}")
    images, skipped = [], []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise LowdataError(f"cannot list the folder {folder}: {os_error_text(exc)}") from None
    for p in entries:
        why = _why_skipped(p)
        if why is None:
            images.append(p)
        else:
            skipped.append(f"{p.name} ({why})")
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} of the {len(entries)} entries in {folder}, which are not images to "
                      f"read: {shown}", stacklevel=2)
    return images
