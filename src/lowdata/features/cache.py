"""On-disk embedding cache: each image is encoded once per backbone.

Layout: ``<root>/embeddings/<backbone key>/<k[:2]>/<k>.npz`` where the backbone key names the
backbone, its input size and the digest of its weights (:attr:`Backbone.key`), and ``k`` is the
entry key: the SHA-256 of the image file's bytes (or of a pixel array), followed for augmented copies
by the augmentation policy's digest, the seed and the copy index (:func:`entry_key`).

Each entry is an uncompressed ``.npz`` holding, for every level, the pooled vector
(``pooled_<level>``, float32, global average over the map) and the spatial map (``spatial_<level>``,
float32, ``(h, w, c)``). ``np.load`` reads members lazily, so reading pooled vectors does not read
the maps.

Writes are atomic (:func:`lowdata.core.atomic.atomic_path`: a temporary file in the entry's folder, renamed
into place), so a reader never sees half a file, a crash leaves at most a stray ``.tmp`` file,
and two processes writing the same entry at once both succeed (identical content; the last rename
wins).

Every array of an entry is read and checked whenever the entry is read, its pooled vectors alone
included: each level's pooled vector and map present, float32, of matching channels, finite, and
every member's CRC right. A damaged entry raises :class:`DamagedEntry`; :func:`lowdata.features.encode.encode`
reports it and encodes the image again (the new entry replaces it), so one bad map cannot hide
behind good pooled vectors. Reading every array costs about 2.1 ms an entry instead of 0.35 ms for
the pooled vectors alone (Lite0 at 380 px, warm file cache), so a cache object remembers the entries
it has read whole and found sound (by file size and modification time): reading their pooled vectors
again, as each pass of a study does, loads those alone.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..core.errors import LowdataError

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


class DamagedEntry(LowdataError):
    """A cache entry that exists but cannot be used (truncated, bad CRC, wrong arrays, non-finite values)."""


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


class EmbeddingCache:
    def __init__(self, root: str | Path, backbone_key: str, levels: tuple[str, ...]):
        self.root = Path(root)
        self.dir = self.root / "embeddings" / backbone_key
        self.levels = tuple(levels)
        self._sound: dict[str, tuple[int, int]] = {}  # key -> (mtime_ns, size) of entries read whole and sound

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def read(self, key: str) -> dict[str, list[np.ndarray]] | None:
        """``{"pooled": [...], "spatial": [...]}`` of an entry, every array read and checked; ``None`` when
        there is no entry; :class:`DamagedEntry` (naming the file and what is wrong) when it is damaged."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise DamagedEntry(f"cache entry {path} is damaged ({type(exc).__name__}: {exc})") from None
        pooled, spatial = [], []
        for level in self.levels:
            p, m = arrays.get(f"pooled_{level}"), arrays.get(f"spatial_{level}")
            if p is None or m is None:
                raise DamagedEntry(f"cache entry {path} is damaged (it lacks the arrays of {level})")
            if p.dtype != np.float32 or m.dtype != np.float32 or p.ndim != 1 or m.ndim != 3 or m.shape[2] != len(p):
                raise DamagedEntry(f"cache entry {path} is damaged ({level}: pooled {p.dtype}{p.shape}, map "
                                   f"{m.dtype}{m.shape})")
            if not (np.isfinite(p).all() and np.isfinite(m).all()):
                raise DamagedEntry(f"cache entry {path} is damaged (non-finite values in {level})")
            pooled.append(p)
            spatial.append(m)
        self._sound[key] = _stamp(path)
        return {"pooled": pooled, "spatial": spatial}

    def read_pooled(self, key: str) -> list[np.ndarray] | None:
        path = self.path(key)
        if key in self._sound:
            try:
                if _stamp(path) == self._sound[key]:
                    with np.load(path, allow_pickle=False) as z:
                        return [z[f"pooled_{level}"] for level in self.levels]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                pass  # changed or gone since: read and check it whole
            del self._sound[key]
        entry = self.read(key)
        return None if entry is None else entry["pooled"]

    def read_spatial(self, key: str) -> list[np.ndarray] | None:
        entry = self.read(key)
        return None if entry is None else entry["spatial"]

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
