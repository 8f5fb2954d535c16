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
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
from tqdm import tqdm

from .base import Backbone
from .cache import DamagedEntry, EmbeddingCache, PackSink, default_cache_root
from .embeddings import Embeddings, EncodeStats
from ..core.atomic import os_error_text
from ..core.digests import array_hash, bytes_hash
from ..core.errors import LowdataError, printable
from ..data.images import file_orientation, read_image

ImageSource = Union[str, Path, np.ndarray, Callable[[], np.ndarray]]


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
    disk for maps), and cached images are not checked for lost maps.

    Parameters
    ----------
    backbone : Backbone
        The backbone that computes missing features.
    sources : sequence of str, Path, ndarray or callable
        Image files, ``(H, W, 3)`` uint8 RGB arrays, or callables that return one (e.g. augmented copies:
        these need ``keys``).
    cache : EmbeddingCache
        The backbone's cache (:func:`cache_for`).
    keys : sequence of str or None, default=None
        The images' cache keys (``None``: the content hash of each file or array).
    batch_size : int, default=16
        Images per forward pass of the backbone (at least 1).
    progress : bool, default=True
        Show a progress bar while images are encoded.
    desc : str, default='encoding'
        The progress bar's description.
    workers : int, default=2
        Threads that read, decode and resize images.
    label : str or None, default=None
        What is encoded, recorded in the packs (``elpv/mono``: what ``lowdata cache`` lists).
    maps : bool, default=True
        Keep and check the spatial maps (``False``: pooled vectors only).

    Returns
    -------
    Embeddings
        The pooled vectors of every image of ``sources``, in order; ``stats`` counts the cached and encoded
        ones.

    Raises
    ------
    lowdata.LowdataError
        If ``batch_size`` is below 1, ``keys`` and ``sources`` differ in length, an image cannot be read or
        is not an RGB image, or the backbone gives non-finite features.
    """
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


def cache_for(backbone: Backbone, root: str | Path | None = None) -> EmbeddingCache:
    """The cache of this backbone's features under ``root`` (default: ``$LOWDATA_CACHE`` or data/cache).

    Parameters
    ----------
    backbone : Backbone
        The backbone (its ``key`` names the cache folder, its ``levels`` the levels kept).
    root : str or Path or None, default=None
        The cache's root folder (``None``: ``$LOWDATA_CACHE``, else data/cache).

    Returns
    -------
    EmbeddingCache
        The backbone's cache.
    """
    return EmbeddingCache(default_cache_root() if root is None else root, backbone.key, backbone.levels)
