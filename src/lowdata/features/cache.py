"""On-disk embedding cache: each image is encoded once per backbone, and each map is on disk once.

Layout under the cache root (:func:`default_cache_root`):

* ``embeddings/<backbone key>/<k[:2]>/<k>.npz``: one small entry per image, where the backbone key names the
  backbone, its input size and the digest of its weights (:attr:`Backbone.key`), and ``k`` is the entry key:
  the SHA-256 of the image file's bytes (or of a pixel array), followed for augmented copies by the
  augmentation policy's digest, the seed and the copy index (:func:`entry_key`). An entry holds, for every
  level, the pooled vector (``pooled_<level>``, float32, the global average of the map), and where the
  image's maps are: ``pack`` (a file name) and ``row`` (``pack`` empty: the maps were not kept, because only
  detectors of pooled vectors read this image; ``encode(..., maps=False)``).
* ``maps/<backbone key>/<digest>.pack``: the spatial maps, unaligned, a few hundred images per file, with a
  CRC-32 per row (:mod:`lowdata.features.packs`).

Entries are written atomically (a temporary file renamed into place) after the pack they point to, so a
reader never sees half a file and an entry never points to a pack not yet written; two processes writing
the same entry both succeed. Every array of an entry is read and checked whenever the entry is read
(present, float32, finite, every member's CRC right): a damaged entry raises :class:`DamagedEntry`, and
:func:`lowdata.features.encode.encode` says so and encodes the image again. Its maps are read from the pack,
which is checked whole the first time a process opens it.

Entries written by lowdata before feature packs hold their maps inline (``spatial_<level>``); they are
read as they are.
"""

from __future__ import annotations

import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, make_dirs
from ..core.errors import LowdataError
from ..core.locks import register_use
from .packs import PACK_NAME, DamagedPack, Pack, PackWriter, packs_dir

DEFAULT_CACHE_ENV = "LOWDATA_CACHE"


def default_cache_root() -> Path:
    """``$LOWDATA_CACHE``; else ``data/cache`` in a lowdata checkout (the current folder holds its
    ``pyproject.toml``); else the platform's user cache folder (:func:`cache_root_reason` says which and why)."""
    return cache_root_reason()[0]


def cache_root_reason() -> tuple[Path, str]:
    """The default cache folder and why it is the one."""
    env = os.environ.get(DEFAULT_CACHE_ENV)
    if env:
        return Path(env), f"${DEFAULT_CACHE_ENV} is set"
    if _is_checkout(Path.cwd()):
        return Path("data/cache"), "the current folder is a lowdata checkout"
    import platformdirs

    return Path(platformdirs.user_cache_dir("lowdata")), ("the platform's user cache folder (not in a lowdata "
                                                          f"checkout; set ${DEFAULT_CACHE_ENV} to choose another)")


def _is_checkout(folder: Path) -> bool:
    try:
        text = (folder / "pyproject.toml").read_text(errors="replace")
    except OSError:
        return False
    return (folder / "src" / "lowdata").is_dir() and 'name = "lowdata"' in text


def entry_key(content_hash: str, policy_digest: str | None = None, seed: int | None = None,
              copy: int | None = None) -> str:
    """Key of an original image, or of augmented copy ``copy`` made with ``policy_digest`` and ``seed``."""
    if policy_digest is None:
        return content_hash
    return f"{content_hash}-aug{policy_digest[:16]}-s{int(seed)}-c{int(copy)}"


class DamagedEntry(LowdataError):
    """A cache entry that exists but cannot be used (truncated, bad CRC, wrong arrays, non-finite values), or
    whose maps are lost (its pack is gone or damaged)."""


class PackDamaged(DamagedEntry):
    """The pack an entry points to is damaged (its bytes are not what was written): it is removed."""


class PackGone(DamagedEntry):
    """The pack an entry points to is not there (removed by ``lowdata cache``, or by hand)."""


class NoMaps(DamagedEntry):
    """An entry of pooled vectors only: its image was encoded for a detector of pooled vectors, its maps not
    kept (``encode(..., maps=False)``); a detector of maps has it encoded again."""


@dataclass
class Entry:
    pooled: list[np.ndarray]
    pack: str | None  # the pack's file name (None: maps inline, an entry of an older lowdata)
    row: int
    spatial: list[np.ndarray] | None  # inline maps (older entries only)


class EmbeddingCache:
    def __init__(self, root: str | Path, backbone_key: str, levels: tuple[str, ...]):
        self.root = Path(root)
        self.dir = self.root / "embeddings" / backbone_key
        self.packs = packs_dir(self.root, backbone_key)
        self.levels = tuple(levels)
        self._open: dict[str, Pack] = {}  # pack name -> the pack, opened and checked
        self._where: dict[str, tuple[str, int]] = {}  # key -> (pack name, row), as read from its entry
        self._registered = False

    def __getstate__(self):  # sent to workers without its open packs
        state = dict(self.__dict__)
        state["_open"], state["_where"], state["_registered"] = {}, {}, False
        return state

    def _use(self, create: bool = False) -> None:
        """This process uses the cache (``lowdata cache prune`` waits for it; see :mod:`lowdata.features.manage`);
        ``create``: the cache folder is made first (before anything is written in it)."""
        if self._registered:
            return
        if create:
            make_dirs(self.root)
        if self.root.is_dir():
            self._registered = True
            register_use(self.root, self.root / ".admin.lock")

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def pack_path(self, name: str) -> Path:
        return self.packs / name

    # ------------------------------------------------------------------------------------------ read
    def read(self, key: str) -> Entry | None:
        """The entry of ``key``, every array read and checked; ``None`` when there is none; :class:`DamagedEntry`
        (naming the file and what is wrong) when it is damaged."""
        path = self.path(key)
        self._use()
        try:  # the file opened here, not by np.load, which leaves it open when the zip cannot be read
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise DamagedEntry(f"cache entry {path} is damaged ({type(exc).__name__}: {exc})") from None
        pooled, spatial = [], []
        inline = "pack" not in arrays
        for level in self.levels:
            p = arrays.get(f"pooled_{level}")
            m = arrays.get(f"spatial_{level}") if inline else None
            if p is None or (inline and m is None):
                raise DamagedEntry(f"cache entry {path} is damaged (it lacks the arrays of {level})")
            if p.dtype != np.float32 or p.ndim != 1 or not np.isfinite(p).all():
                raise DamagedEntry(f"cache entry {path} is damaged ({level}: pooled {p.dtype}{p.shape}"
                                   f"{'' if p.dtype != np.float32 or p.ndim != 1 else ', non-finite'})")
            if inline:
                if m.dtype != np.float32 or m.ndim != 3 or m.shape[2] != len(p) or not np.isfinite(m).all():
                    raise DamagedEntry(f"cache entry {path} is damaged ({level}: map {m.dtype}{m.shape})")
                spatial.append(m)
            pooled.append(p)
        if inline:
            return Entry(pooled, None, -1, spatial)
        pack, row = arrays["pack"], arrays.get("row")
        if pack.dtype.kind != "U" or pack.ndim != 0 or row is None or row.ndim != 0 or row.dtype.kind != "i" \
                or (str(pack) and not PACK_NAME.fullmatch(str(pack))):
            raise DamagedEntry(f"cache entry {path} is damaged (its pack pointer is not a pack's name and a row)")
        self._where[key] = (str(pack), int(row))
        return Entry(pooled, str(pack), int(row), None)

    def read_pooled(self, key: str) -> list[np.ndarray] | None:
        entry = self.read(key)
        return None if entry is None else entry.pooled

    def pack(self, name: str) -> Pack:
        """The pack ``name``, opened and checked once (``FileNotFoundError``, or :class:`DamagedPack`)."""
        pack = self._open.get(name)
        path = self.pack_path(name)
        if pack is not None:
            try:
                st = path.stat()
                if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == pack.identity[1:]:
                    return pack
            except FileNotFoundError:
                pass
            del self._open[name]
        pack = Pack.open(path).check()
        _touch(path)
        if len(self._open) >= 256:  # bounded: each open pack holds a file descriptor
            self._open.pop(next(iter(self._open))).close()
        self._open[name] = pack
        return pack

    def locate(self, key: str) -> tuple[Pack, int] | list[np.ndarray]:
        """Where the maps of ``key`` are: ``(pack, row)``, or the inline maps of an older entry.
        :class:`DamagedEntry` when they are lost (no entry, the pack gone or damaged, the row not this key's)."""
        where = self._where.get(key)
        if where is None:
            entry = self.read(key)
            if entry is None:
                raise DamagedEntry(f"cache entry {self.path(key)} is missing")
            if entry.pack is None:
                return entry.spatial
            where = (entry.pack, entry.row)
        name, row = where
        if not name:
            raise NoMaps(f"cache entry {self.path(key)} holds pooled vectors only (its maps were not kept)")
        try:
            pack = self.pack(name)
        except FileNotFoundError:
            raise PackGone(f"the feature pack {self.pack_path(name)} is gone") from None
        except DamagedPack as exc:
            raise PackDamaged(str(exc)) from None
        if pack.levels != list(self.levels):
            raise DamagedEntry(f"the feature pack {pack.path} holds the levels {pack.levels}, not {list(self.levels)}")
        if not 0 <= row < len(pack) or pack.keys[row] != key:
            raise DamagedEntry(f"the feature pack {pack.path} does not hold the maps of cache entry "
                               f"{self.path(key)} at row {row}")
        return pack, row

    def read_spatial(self, key: str) -> list[np.ndarray] | None:
        """Per level, the ``(h, w, c)`` maps of ``key``; ``None`` when it has no entry."""
        try:
            found = self.locate(key)
        except DamagedEntry:
            if not self.path(key).exists():
                return None
            raise
        if isinstance(found, list):
            return found
        pack, row = found
        return pack.row(row)

    def maps_ok(self, key: str, warned: set | None = None) -> bool:
        """Whether the maps of ``key`` can be read. A damaged pack is said (once per pack: ``warned`` holds the
        packs said) and removed: its images will be encoded again."""
        try:
            self.locate(key)
            return True
        except NoMaps:  # encoded for pooled vectors only: encoded again, with its maps
            return False
        except DamagedEntry as exc:
            damaged = isinstance(exc, PackDamaged)  # only a pack whose bytes are wrong is removed
            name = self._where.get(key, ("", 0))[0]
            said = str(self.pack_path(name)) if isinstance(exc, (PackDamaged, PackGone)) else str(exc)
            if warned is not None and said not in warned:
                warned.add(said)
                then = ("it is removed and its images are encoded again" if damaged else
                        "its images are encoded again" if isinstance(exc, PackGone) else "the image is encoded again")
                warnings.warn(f"{exc}: {then}", stacklevel=3)
            if damaged:
                self.discard(name)
            return False

    def discard(self, name: str) -> None:
        """A damaged pack removed (its entries then point to nothing: their images are encoded again)."""
        pack = self._open.pop(name, None)
        if pack is not None:
            pack.close()
        self.pack_path(name).unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ write
    def write_entry(self, key: str, pooled: list[np.ndarray], pack: str, row: int) -> None:
        self._use(create=True)
        arrays = {f"pooled_{level}": np.asarray(p, dtype=np.float32) for level, p in zip(self.levels, pooled)}
        arrays["pack"], arrays["row"] = np.array(pack), np.array(int(row), dtype=np.int64)
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        self._where[key] = (pack, int(row))

    def writer(self, label: str | None = None) -> PackWriter:
        """A new pack of this backbone's maps (``label``: what is encoded, e.g. ``elpv/mono``)."""
        self._use(create=True)  # registered before anything is written (a prune running now is waited for)
        return PackWriter(self.packs, self.levels, self.dir.name, label)

    def write(self, key: str, maps: list[np.ndarray], label: str | None = None) -> list[np.ndarray]:
        """Store one image's per-level ``(h, w, c)`` maps (a pack of one row, and its entry); returns the pooled
        vectors. :func:`lowdata.features.encode.encode` writes many at a time (:class:`PackSink`)."""
        sink = PackSink(self, label)
        try:
            pooled = sink.put(key, maps)
        finally:
            sink.close()
        return pooled


def _touch(path: Path) -> None:
    """The pack's access time set to now (what ``lowdata cache`` shows as last used), its modification time kept."""
    try:
        st = path.stat()
        os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
    except OSError:  # a read-only cache: not recorded
        pass


def pooled_of(maps: list[np.ndarray]) -> list[np.ndarray]:
    """Per level, the map's global average (float64 sums, stored as float32)."""
    return [m.mean(axis=(0, 1), dtype=np.float64).astype(np.float32) for m in maps]


class PackSink:
    """Where encoding puts maps: rows of a pack, closed every few hundred images (or seconds) and at the end,
    and then the entries pointing to it. Used from one thread."""

    def __init__(self, cache: EmbeddingCache, label: str | None = None, maps: bool = True):
        self.cache, self.label, self.maps = cache, label, maps
        self._writer: PackWriter | None = None
        self._pending: list[tuple[str, list[np.ndarray]]] = []

    def put(self, key: str, maps: list[np.ndarray]) -> list[np.ndarray]:
        pooled = pooled_of(maps)
        if not self.maps:  # pooled vectors only: the entry alone
            self.cache.write_entry(key, pooled, "", -1)
            return pooled
        if self._writer is None:
            self._writer = self.cache.writer(self.label)
        self._writer.add(key, maps)
        self._pending.append((key, pooled))
        if self._writer.due():
            self.flush()
        return pooled

    def flush(self) -> None:
        writer, pending = self._writer, self._pending
        self._writer, self._pending = None, []
        if writer is None:
            return
        path = writer.close()
        if path is None:
            return
        for row, (key, pooled) in enumerate(pending):
            try:
                self.cache.write_entry(key, pooled, path.name, row)
            except BaseException:
                if row == 0:  # no entry points to it: the pack goes too
                    path.unlink(missing_ok=True)
                raise

    def close(self) -> None:
        self.flush()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        self._writer, self._pending = None, []
