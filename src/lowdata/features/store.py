"""The feature store: a set of images' aligned maps in one memory-mapped ``.npy`` file.

The embedding cache holds one ``.npz`` per image; reading and aligning the maps of a study's training
pool from it (2299 entries for bottle with ten copies) takes seconds each time. The store keeps, per
(source, category, backbone, input size, augmentation policy, seed) and kind (``train``: the originals
then every copy; ``test``), the aligned ``(n, H, W, D)`` float32 maps of the images, in the order of
their cache keys, as one ``.npy`` file opened memory-mapped: reading it again costs no more than opening
it, and the operating system pages in what a fit touches (a pool larger than memory works too).

Layout: ``<cache root>/store/<backbone key>/<source>-<category>-<policy digest[:16]>-s<seed>/<kind>-<keys
digest>.npy``. The file name holds the digest of the keys it was built from (each key is the SHA-256 of
an image file, or of its copy's policy, seed and index), so a file always matches its name: when an
image changes, or another number of copies is asked for, the digest differs, the old file is said to be
stale, removed, and a new one built from the cache.

Writes are atomic (a temporary file renamed into place), so a half-written store is never read; two
processes that need the same store build it once (the second waits on ``<file>.lock`` and then reads
what the first built). A store file that cannot be opened (truncated, not a ``.npy`` of the expected
shape) is said and rebuilt. Its values are not checked again on each read: they were checked (finite,
right shapes, CRCs) when read from the cache.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..core.atomic import atomic_path, make_dirs, writing
from ..core.errors import LowdataError
from ..core.locks import exclusive_lock
from ..core.grids import align_levels
from .cache import DamagedEntry, EmbeddingCache

#: how long a process waits for another one building the same store (seconds)
BUILD_WAIT = 3600.0


def keys_digest(keys: Sequence[str]) -> str:
    """The first 16 hex digits of the SHA-256 of the keys, in order."""
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _reserve(tmp: Path, path: Path) -> None:
    """The blocks of a new store file, allocated now: a disk that fills up meanwhile is an error here, not a
    crash of the process at the first write into the memory map (file systems that cannot allocate ahead
    are left as they are)."""
    try:
        with open(tmp, "rb+") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise LowdataError(f"not enough disk for the feature store {path} (free some, or point LOWDATA_CACHE "
                               "elsewhere)") from None
    except AttributeError:  # no posix_fallocate on this platform
        pass


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in str(name))


class FeatureStore:
    """Aligned maps of a category's images for one backbone, memory-mapped (see the module docstring)."""

    def __init__(self, cache: EmbeddingCache, source: str, category: str, policy_digest: str, seed: int):
        self.cache = cache
        self.dir = (Path(cache.root) / "store" / cache.dir.name
                    / f"{_safe(source)}-{_safe(category)}-{policy_digest[:16]}-s{int(seed)}")
        self.built: list[Path] = []  # the files this object built (not found ready)

    def path(self, kind: str, keys: Sequence[str]) -> Path:
        return self.dir / f"{_safe(kind)}-{keys_digest(keys)}.npy"

    def maps(self, kind: str, keys: Sequence[str], progress: bool = True) -> np.ndarray:
        """The ``(len(keys), H, W, D)`` aligned maps of ``keys`` (read-only, memory-mapped), built from the
        cache when missing or stale."""
        if not keys:
            raise LowdataError(f"the feature store of {self.dir.name} needs at least one image ({kind})")
        path = self.path(kind, keys)
        found = self._open(path, len(keys))
        if found is not None:
            return found
        make_dirs(self.dir)
        with exclusive_lock(path.with_name(path.name + ".lock"), f"the feature store {path}", wait=BUILD_WAIT):
            found = self._open(path, len(keys))  # built by another process while this one waited
            if found is not None:
                return found
            stale = sorted(p for p in self.dir.glob(f"{_safe(kind)}-*.npy") if p != path)
            if stale:
                print(f"feature store {self.dir.name}/{kind}: its images changed since {stale[0].name} was built "
                      "(other source images, or another number of copies): building it again", file=sys.stderr)
            self._build(path, keys, progress)
            self.built.append(path)
            for p in stale:
                p.unlink(missing_ok=True)
        found = self._open(path, len(keys))
        if found is None:
            raise LowdataError(f"the feature store {path} was removed as soon as it was built (by another process?)")
        return found

    @staticmethod
    def _open(path: Path, n: int) -> np.ndarray | None:
        try:
            maps = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            warnings.warn(f"the feature store {path} is damaged ({type(exc).__name__}: {exc}): building it again",
                          stacklevel=3)
            return None
        if maps.dtype != np.float32 or maps.ndim != 4 or len(maps) != n:
            warnings.warn(f"the feature store {path} holds {maps.dtype}{maps.shape}, not {n} float32 maps: "
                          "building it again", stacklevel=3)
            return None
        return maps

    def _build(self, path: Path, keys: Sequence[str], progress: bool) -> None:
        first = self._read(keys[0])
        shape = (len(keys),) + first.shape[1:]
        bar = tqdm(total=len(keys), desc=f"feature store {path.parent.name}/{path.stem.split('-')[0]}", unit="map",
                   leave=False, disable=not progress, mininterval=0.1 if sys.stderr.isatty() else 10.0)
        need = int(np.prod(shape)) * 4
        free = shutil.disk_usage(self.dir).free
        if free < need + (64 << 20):  # a memory-mapped write to a full disk kills the process: say it before
            raise LowdataError(f"not enough disk for the feature store {path}: it needs {need / 1e9:.1f} GB, "
                               f"{free / 1e9:.1f} GB are free there (free some, or point LOWDATA_CACHE elsewhere)")
        with bar, atomic_path(path) as tmp, writing(path):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            _reserve(tmp, path)
            out[0] = first[0]
            bar.update(1)
            for i in range(1, len(keys)):
                m = self._read(keys[i])
                if m.shape[1:] != shape[1:]:
                    raise LowdataError(f"cache entry {self.cache.path(keys[i])} has maps {m.shape[1:]}, the others "
                                       f"{shape[1:]}")
                out[i] = m[0]
                bar.update(1)
            out.flush()
            del out
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())

    def _read(self, key: str) -> np.ndarray:
        try:
            maps = self.cache.read_spatial(key)
        except DamagedEntry as exc:
            raise LowdataError(f"{exc}: encode the images again (it will be replaced)") from None
        if maps is None:
            raise LowdataError(f"cache entry {self.cache.path(key)} is missing: encode the images first")
        return align_levels([m[None] for m in maps])
