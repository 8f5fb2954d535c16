"""On-disk embedding cache: each image is encoded once per backbone.

Layout: ``<root>/embeddings/<backbone key>/<k[:2]>/<k>.npz`` where the backbone key names the
backbone, its input size and the digest of its weights (:attr:`Backbone.key`), and ``k`` is the
entry key: the SHA-256 of the image file's bytes (or of a pixel array), followed for augmented copies
by the augmentation policy's digest, the seed and the copy index (:func:`entry_key`).

Each entry is an uncompressed ``.npz`` holding, for every level, the pooled vector
(``pooled_<level>``, float32, global average over the map) and the spatial map (``spatial_<level>``,
float32, ``(h, w, c)``). ``np.load`` reads members lazily, so reading pooled vectors does not read
the maps.

Writes are atomic (:func:`lowdata.atomic.atomic_path`: a temporary file in the entry's folder, renamed
into place), so a reader never sees half a file, a crash leaves at most a stray ``.tmp`` file,
and two processes writing the same entry at once both succeed (identical content; the last rename
wins). An entry that cannot be read is reported and encoded again, never silently used.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path

DEFAULT_CACHE_ENV = "LOWDATA_CACHE"


def default_cache_root() -> Path:
    """``$LOWDATA_CACHE``, else ``data/cache`` in the current folder."""
    return Path(os.environ.get(DEFAULT_CACHE_ENV, "data/cache"))


def entry_key(content_hash: str, policy_digest: str | None = None, seed: int | None = None,
              copy: int | None = None) -> str:
    """Key of an original image, or of augmented copy ``copy`` made with ``policy_digest`` and ``seed``."""
    if policy_digest is None:
        return content_hash
    return f"{content_hash}-aug{policy_digest[:16]}-s{int(seed)}-c{int(copy)}"


class EmbeddingCache:
    def __init__(self, root: str | Path, backbone_key: str, levels: tuple[str, ...]):
        self.root = Path(root)
        self.dir = self.root / "embeddings" / backbone_key
        self.levels = tuple(levels)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def _read(self, key: str, kind: str) -> list[np.ndarray] | None:
        path = self.path(key)
        try:
            with np.load(path) as z:
                return [z[f"{kind}_{level}"] for level in self.levels]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            warnings.warn(f"unreadable cache entry {path} ({exc}); it will be encoded again", stacklevel=3)
            return None

    def read_pooled(self, key: str) -> list[np.ndarray] | None:
        return self._read(key, "pooled")

    def read_spatial(self, key: str) -> list[np.ndarray] | None:
        return self._read(key, "spatial")

    def write(self, key: str, maps: list[np.ndarray]) -> list[np.ndarray]:
        """Store one image's per-level ``(h, w, c)`` maps; returns the pooled vectors."""
        pooled = [m.mean(axis=(0, 1), dtype=np.float64).astype(np.float32) for m in maps]
        arrays = {}
        for level, m, p in zip(self.levels, maps, pooled):
            arrays[f"pooled_{level}"] = p
            arrays[f"spatial_{level}"] = np.asarray(m, dtype=np.float32)
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return pooled
