"""Encoding images with a backbone, through the embedding cache.

:func:`encode` takes image files (or uint8 RGB arrays), looks each one up in the cache, and runs
the backbone only on the missing ones: files are read, decoded and resized in worker threads while
the backbone runs on the previous batch, and the maps are written to feature packs (and the entries
pointing to them) by another thread, so the backbone is kept busy. The result holds the pooled vectors of
every image in the given order; the spatial maps are read back from the packs on demand
(:meth:`Embeddings.spatial`, or :func:`map_rows` for many images, memory-mapped and aligned on read).
A cached image whose maps are lost (its pack damaged or gone) is encoded again.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
from tqdm import tqdm

from .base import Backbone
from .cache import DamagedEntry, EmbeddingCache, PackSink, default_cache_root
from ..core.grids import AlignedLevels, MapRows
from ..core.atomic import os_error_text
from ..core.digests import array_hash, bytes_hash
from ..core.errors import LowdataError, printable
from ..data.images import file_orientation, read_image

ImageSource = Union[str, Path, np.ndarray, Callable[[], np.ndarray]]


@dataclass
class EncodeStats:
    images: int
    cached: int
    encoded: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.encoded / self.seconds if self.encoded and self.seconds > 0 else float("nan")


@dataclass
class Embeddings:
    """Pooled vectors of ``n`` images (one ``(n, c)`` array per level); spatial maps on demand."""

    keys: list[str]
    levels: tuple[str, ...]
    pooled: list[np.ndarray]
    cache: EmbeddingCache
    stats: EncodeStats

    def __len__(self) -> int:
        return len(self.keys)

    def pooled_concat(self) -> np.ndarray:
        """``(n, sum of channels)``: the levels' pooled vectors side by side (the KNN input)."""
        return np.concatenate(self.pooled, axis=1)

    def subset(self, indices: Sequence[int]) -> "Embeddings":
        """The embeddings of the images at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=int)
        return Embeddings([self.keys[i] for i in idx], self.levels, [p[idx] for p in self.pooled], self.cache,
                          self.stats)

    @staticmethod
    def concat(parts: Sequence["Embeddings"]) -> "Embeddings":
        """Several embeddings of the same backbone, one after the other."""
        first = parts[0]
        if any(p.cache.dir != first.cache.dir or p.levels != first.levels for p in parts):
            raise LowdataError("cannot join embeddings of different backbones or caches")
        keys = [k for p in parts for k in p.keys]
        pooled = [np.concatenate([p.pooled[j] for p in parts]) for j in range(len(first.levels))]
        stats = EncodeStats(*(sum(getattr(p.stats, f) for p in parts) for f in ("images", "cached", "encoded",
                                                                                  "seconds")))
        return Embeddings(keys, first.levels, pooled, first.cache, stats)

    def iter_spatial(self, chunk: int = 64):
        """Per-level spatial maps, ``chunk`` images at a time (memory stays bounded for any ``n``)."""
        for i in range(0, len(self.keys), chunk):
            yield self.spatial(range(i, min(i + chunk, len(self.keys))))

    def spatial(self, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        """Per level, the ``(n, h, w, c)`` float32 maps of the given images (all by default)."""
        keys = self.keys if indices is None else [self.keys[i] for i in indices]
        per_image = []
        for k in keys:
            try:
                maps = self.cache.read_spatial(k)
            except DamagedEntry as exc:
                raise LowdataError(f"{exc}, after its pooled vectors were read: run again and it will be "
                                   "encoded anew") from None
            if maps is None:
                raise LowdataError(f"cache entry {self.cache.path(k)} was removed after it was read (by another "
                                   "process?): run again and it will be encoded anew")
            per_image.append(maps)
        return [np.stack([m[j] for m in per_image]) for j in range(len(self.levels))]

    def map_rows(self):
        """Every image's maps as :class:`~lowdata.core.grids.MapRows` (see :func:`map_rows`)."""
        return map_rows(self.cache, self.keys)


def map_rows(cache: EmbeddingCache, keys: Sequence[str]):
    """The maps of ``keys``, in that order, as :class:`~lowdata.core.grids.MapRows` over their feature
    packs (memory-mapped, aligned on read; nothing copied): what PaDiM fits on and scores. Maps that are lost
    (a pack gone or damaged since the images were encoded) are an error naming the file."""
    parts, index, rows, inline = [], {}, np.empty(len(keys), np.intp), []
    for i, k in enumerate(keys):
        try:
            found = cache.locate(k)
        except DamagedEntry as exc:
            raise LowdataError(f"{exc}: run again and the images will be encoded anew") from None
        if isinstance(found, list):  # an older entry's inline maps
            inline.append((i, found))
            continue
        pack, row = found
        if pack.path.name not in index:
            index[pack.path.name] = (len(parts), sum(len(p) for p in parts))
            parts.append(pack.aligned())
        rows[i] = index[pack.path.name][1] + row
    if inline:
        start = sum(len(p) for p in parts)
        parts.append(AlignedLevels([np.stack([m[j] for _, m in inline]) for j in range(len(cache.levels))]))
        for t, (i, _) in enumerate(inline):
            rows[i] = start + t
    if not parts:
        raise LowdataError("no images to read maps of")
    return MapRows(parts, rows)


def source_key(source: ImageSource) -> str:
    """Content hash of an image: of the file's bytes, or of the array's pixels. A file whose EXIF
    orientation turns it (2-8) gets ``-exif<o>`` after the hash: its pixels are read turned, and an
    entry that an older lowdata encoded unturned is not taken for it."""
    if isinstance(source, np.ndarray):
        return array_hash(source)
    if callable(source):
        raise LowdataError("images made by a callable need explicit cache keys (encode(..., keys=...))")
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise LowdataError(f"image not found: {source}") from None
    except OSError as exc:
        raise LowdataError(f"cannot read image {source}: {os_error_text(exc)}") from None
    o = file_orientation(data, str(source))
    return bytes_hash(data) + (f"-exif{o}" if o != 1 else "")


def _cached_pooled(cache: EmbeddingCache, key: str, source, maps: bool, warned: set,
                   damaged: list[str]) -> list[np.ndarray] | None:
    """The entry's pooled vectors (``maps``: and its maps readable); a damaged entry (listed in ``damaged``, said
    once for all by :func:`encode`), or lost maps, are treated as missing (encoded again)."""
    try:
        pooled = cache.read_pooled(key)
    except DamagedEntry as exc:
        damaged.append(f"{exc}" + (f" (image {source})" if isinstance(source, (str, Path)) else ""))
        return None
    if pooled is not None and maps and not cache.maps_ok(key, warned):
        return None
    return pooled


def _check_finite(outputs: list[np.ndarray], batch: Sequence[int], sources) -> None:
    for j, i in enumerate(batch):
        if not all(np.isfinite(o[j]).all() for o in outputs):
            what = sources[i] if isinstance(sources[i], (str, Path)) else f"image {i}"
            raise LowdataError(f"the backbone gave non-finite (NaN or infinite) features for {what}: nothing "
                               "is scored from them")


def load_for(backbone: Backbone, source: ImageSource) -> np.ndarray:
    """Read (a path) or make (a callable, e.g. an augmented copy) one image, and prepare it as the backbone
    declares (:attr:`~lowdata.features.base.Backbone.preprocessing`)."""
    if isinstance(source, np.ndarray):
        img = source
    elif callable(source):
        img = source()
    else:
        img = read_image(source)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise LowdataError(f"expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    return backbone.preprocessing.apply(img)


def _lower_priority() -> None:
    """Run image decoding and cache writes at a lower priority than the backbone's threads.

    The backbone's parallel kernels wait for their slowest thread, so a decoder that takes a core
    away for a few milliseconds stalls the whole forward pass; at low priority it runs in the gaps.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def encode(backbone: Backbone, sources: Sequence[ImageSource], cache: EmbeddingCache, *,
           keys: Sequence[str] | None = None, batch_size: int = 16, progress: bool = True,
           desc: str = "encoding", workers: int = 2, label: str | None = None, maps: bool = True) -> Embeddings:
    """Embeddings of ``sources`` (cached where possible). ``keys`` overrides the content-hash keys; ``label``
    names what is encoded in the packs (``elpv/mono``: what ``lowdata cache`` lists); ``maps=False`` when only
    the pooled vectors will be read: the maps of new images are not kept (entries of pooled vectors only, no
    disk for maps), and cached images are not checked for lost maps."""
    t0 = time.perf_counter()
    if batch_size < 1:
        raise LowdataError(f"batch size must be at least 1, got {batch_size}")
    keys = [source_key(s) for s in sources] if keys is None else list(keys)
    if len(keys) != len(sources):
        raise LowdataError(f"{len(keys)} keys for {len(sources)} images")
    warned: set = set()
    damaged: list[str] = []
    pooled: list[list[np.ndarray] | None] = [_cached_pooled(cache, k, s, maps, warned, damaged)
                                             for k, s in zip(keys, sources)]
    if damaged:  # one line for all of them (a bad disk can damage hundreds)
        warnings.warn(f"{len(damaged)} cache entr{'y was' if len(damaged) == 1 else 'ies were'} damaged and "
                      f"{'is' if len(damaged) == 1 else 'are'} encoded again (replaced); "
                      f"{'the first: ' if len(damaged) > 1 else ''}{damaged[0]}", stacklevel=2)
    missing = [i for i, p in enumerate(pooled) if p is None]
    first_of: dict[str, int] = {}  # the same image twice in one call is encoded once
    unique = [i for i in missing if first_of.setdefault(keys[i], i) == i]
    batches = [unique[j:j + batch_size] for j in range(0, len(unique), batch_size)]

    bar = tqdm(total=len(unique), desc=printable(desc), unit="img", disable=not progress or not unique, leave=False,
               mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log gets a line every 10 s, not hundreds
    sink = PackSink(cache, label, maps)
    with bar, ThreadPoolExecutor(max_workers=max(1, workers), initializer=_lower_priority) as loader, \
            ThreadPoolExecutor(max_workers=1, initializer=_lower_priority) as writer:
        def submit(batch):
            return [loader.submit(load_for, backbone, sources[i]) for i in batch]

        writes, checked, done, pending = [], 0, False, []
        try:
            pending = submit(batches[0]) if batches else []
            for b, batch in enumerate(batches):
                images = np.stack([f.result() for f in pending])
                pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
                outputs = backbone.forward(images)
                _check_finite(outputs, batch, sources)
                for j, i in enumerate(batch):
                    writes.append((i, writer.submit(sink.put, keys[i], [o[j] for o in outputs])))
                while checked < len(writes) and writes[checked][1].done():  # a full disk stops the run now
                    writes[checked][1].result()
                    checked += 1
                bar.update(len(batch))
            writer.submit(sink.close).result()  # the last pack, and its entries
            done = True
        finally:
            if not done:  # an error or Ctrl-C: what was encoded is kept (the open pack closed), then it goes on up
                for f in pending:
                    f.cancel()
                try:
                    writer.submit(sink.close).result()
                except Exception:  # the writer's own error (a full disk...) is the one already on its way
                    writer.submit(sink.abort).result()
        for i, fut in writes:
            pooled[i] = fut.result()
    for i in missing:
        if pooled[i] is None:
            pooled[i] = pooled[first_of[keys[i]]]
    levels = backbone.levels
    stacked = [np.stack([p[j] for p in pooled]) if pooled else np.zeros((0, backbone.level_shapes[j][-1]), np.float32)
               for j in range(len(levels))]
    stats = EncodeStats(len(keys), len(keys) - len(missing), len(unique), time.perf_counter() - t0)
    return Embeddings(keys, levels, stacked, cache, stats)


def read_embeddings(cache: EmbeddingCache, keys: Sequence[str]) -> Embeddings:
    """Embeddings of images already in the cache, by key (no backbone needed: a worker fitting detectors
    reads what another worker encoded). A missing entry is an error naming it."""
    t0 = time.perf_counter()
    pooled = []
    for k in keys:
        try:
            p = cache.read_pooled(k)
        except DamagedEntry as exc:
            raise LowdataError(f"{exc}: encode the images again (it will be replaced)") from None
        if p is None:
            raise LowdataError(f"cache entry {cache.path(k)} is missing: encode the images first (with a cache "
                               "folder shared by every worker)")
        pooled.append(p)
    if not pooled:
        raise LowdataError("no keys to read")
    stacked = [np.stack([p[j] for p in pooled]) for j in range(len(cache.levels))]
    return Embeddings(list(keys), cache.levels, stacked, cache,
                      EncodeStats(len(keys), len(keys), 0, time.perf_counter() - t0))


def cache_for(backbone: Backbone, root: str | Path | None = None) -> EmbeddingCache:
    """The cache of this backbone's features under ``root`` (default: ``$LOWDATA_CACHE`` or data/cache)."""
    return EmbeddingCache(default_cache_root() if root is None else root, backbone.key, backbone.levels)
