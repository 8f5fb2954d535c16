"""Feature packs: the one home of the spatial maps, a few hundred images per file, checksummed.

An image's cache entry (:mod:`lowdata.features.cache`) holds its pooled vectors and points to a row of a
pack; the pack holds the maps of every level, **unaligned** (as the backbone gives them: 0.48 MB an image
for Lite0 at 380 px, against 1.36 MB aligned to the finest grid), and detectors read them aligned on the
fly (:class:`lowdata.core.grids.AlignedLevels`). A study's pool of maps is a list of packs memory-mapped
side by side, so PaDiM reads blocks of grid locations of thousands of images without holding them in
memory, and each map is on disk once.

Layout: ``<cache root>/maps/<backbone key>/<digest of the keys>.pack``. A file is the rows (one per image:
every level's ``(h, w, c)`` float32 map, level after level), then a JSON footer (the format, the backbone
key, the levels and their shapes, the keys of the rows, the CRC-32 of every row, a label naming what was
encoded, e.g. ``elpv/mono``), then the footer's length and CRC-32 and the magic ``LDPACK01``.

Integrity: a pack is checked when a process first opens it (every row against its CRC-32, about 0.3 s a GB;
remembered by file identity, size and modification time), and an entry's key must be the one its row holds.
A damaged pack (truncated, bad footer, a row that does not match its CRC) is said in one line naming it and
removed; its images are encoded again where they are needed (:func:`lowdata.features.encode.encode`).

Writes: :class:`PackWriter` appends rows to a temporary file in the pack's folder and, when closed, writes
the footer, syncs and renames it into place; the entries pointing to it are written after. Encoding closes
a pack every :data:`PACK_ROWS` images, or after :data:`PACK_SECONDS` seconds once it holds
:data:`PACK_MIN_ROWS`, and when it stops for any reason (an error, Ctrl-C), so an interrupted run keeps what it
encoded (a ``kill -9`` loses at most the open pack's work: 10 s, or 64 images on a slow machine). Two processes encoding the same images write packs of the same name with the same
rows: the last rename wins and every entry stays valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.atomic import default_file_mode, make_dirs, writing
from ..core.errors import LowdataError
from ..core.grids import AlignedLevels

MAGIC = b"LDPACK01"
#: a pack's file name: the digest of its keys (what an entry may point to; nothing else is opened)
PACK_NAME = re.compile(r"[0-9a-f]{20}\.pack")
FORMAT = "lowdata-pack-1"
SUFFIX = ".pack"
#: a pack is closed after this many images, or this many seconds of encoding, whichever comes first
PACK_ROWS = 256
PACK_SECONDS = 10.0
#: ...but not before this many images (a slow machine would otherwise make many small packs, each a file
#: descriptor when a study maps them)
PACK_MIN_ROWS = 64
_TRAILER = struct.Struct("<QI8s")  # the footer's length and CRC-32, the magic
_MAX_FOOTER = 64 << 20


class DamagedPack(LowdataError):
    """A feature pack that exists but cannot be trusted (truncated, bad footer, rows not matching their CRC)."""


def keys_digest(keys: Sequence[str], length: int = 20) -> str:
    """The first ``length`` hex digits of the SHA-256 of the keys, in order."""
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode())
        h.update(b"\n")
    return h.hexdigest()[:length]


def packs_dir(root: str | Path, backbone_key: str) -> Path:
    return Path(root) / "maps" / backbone_key


def _crc(row: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(row)).cast("B"))


# file identity -> the rows found bad (checked once per process)
_VERIFIED: dict[tuple, tuple[int, ...]] = {}


def _identity(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Pack:
    """An open pack: its footer and its rows, memory-mapped read-only (see the module docstring)."""

    def __init__(self, path: Path, footer: dict, data: np.ndarray, identity: tuple):
        self.path, self.footer, self.identity = path, footer, identity
        self.keys: list[str] = footer["keys"]
        self.levels: list[str] = footer["levels"]
        self.shapes = [tuple(int(v) for v in s) for s in footer["shapes"]]
        self.label: str = footer.get("label") or ""
        self.backbone: str = footer.get("backbone") or ""
        self._data = data
        self._row_of = {k: i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    # ----------------------------------------------------------------------------------------- open
    @classmethod
    def open(cls, path: str | Path) -> "Pack":
        """The pack at ``path``; :class:`DamagedPack` naming it when it is not a whole pack (``FileNotFoundError``
        when there is none)."""
        path = Path(path)

        def bad(why: str) -> DamagedPack:
            return DamagedPack(f"the feature pack {path} is damaged ({why})")

        identity = _identity(path)
        size = identity[3]
        with open(path, "rb") as f:
            if size < _TRAILER.size:
                raise bad(f"{size} bytes, shorter than its trailer")
            f.seek(size - _TRAILER.size)
            length, footer_crc, magic = _TRAILER.unpack(f.read(_TRAILER.size))
            if magic != MAGIC:
                raise bad("no pack trailer at its end: truncated, or not a pack")
            if length > min(_MAX_FOOTER, size - _TRAILER.size):
                raise bad(f"a footer of {length} bytes")
            f.seek(size - _TRAILER.size - length)
            text = f.read(length)
            if zlib.crc32(text) != footer_crc:
                raise bad("its footer does not match its checksum")
            try:
                footer = json.loads(text.decode())
            except (UnicodeDecodeError, ValueError):
                raise bad("its footer is not JSON") from None
        try:
            ok = (footer.get("format") == FORMAT and isinstance(footer.get("keys"), list)
                  and isinstance(footer.get("crc32"), list) and len(footer["crc32"]) == len(footer["keys"]) > 0
                  and all(isinstance(k, str) for k in footer["keys"])
                  and len(footer.get("shapes", [])) == len(footer.get("levels", [])) > 0
                  and all(len(s) == 3 and all(isinstance(v, int) and 0 < v < 1 << 16 for v in s)
                          for s in footer["shapes"]))
        except (AttributeError, TypeError):
            ok = False
        if not ok:
            raise bad("its footer is not a pack's")
        floats = sum(h * w * c for h, w, c in footer["shapes"])
        n = len(footer["keys"])
        if n * floats * 4 + length + _TRAILER.size != size:
            raise bad(f"{size} bytes, not the {n * floats * 4 + length + _TRAILER.size} of {n} rows and its footer")
        data = np.memmap(path, dtype="<f4", mode="r", shape=(n, floats))
        return cls(path, footer, data, identity)

    def bad_rows(self) -> tuple[int, ...]:
        """The rows whose bytes do not match their CRC-32 (every row read once per process and file)."""
        if self.identity not in _VERIFIED:
            crcs = self.footer["crc32"]
            _VERIFIED[self.identity] = tuple(i for i in range(len(self)) if _crc(self._data[i]) != crcs[i])
        return _VERIFIED[self.identity]

    def check(self) -> "Pack":
        """This pack, every row checked (:class:`DamagedPack` naming it and the bad rows)."""
        bad = self.bad_rows()
        if bad:
            raise DamagedPack(f"the feature pack {self.path} is damaged ({len(bad)} of {len(self)} rows do not match "
                              f"their checksums, the first row {bad[0]})")
        return self

    # ----------------------------------------------------------------------------------------- read
    def row_of(self, key: str) -> int | None:
        return self._row_of.get(key)

    def level_maps(self) -> list[np.ndarray]:
        """Per level, the ``(n, h, w, c)`` maps of every row (views of the memory map, read-only)."""
        out, o = [], 0
        base = np.asarray(self._data)
        for h, w, c in self.shapes:
            out.append(base[:, o:o + h * w * c].reshape(len(self), h, w, c))
            o += h * w * c
        return out

    def aligned(self) -> AlignedLevels:
        """Every row's levels, read aligned to the finest grid."""
        return AlignedLevels(self.level_maps())

    def row(self, r: int) -> list[np.ndarray]:
        """Row ``r``'s per-level ``(h, w, c)`` maps (copies)."""
        return [np.array(m[r]) for m in self.level_maps()]

    def close(self) -> None:
        """Let go of the memory map: it is unmapped (and its file descriptor closed) when the last array reading it
        is gone. Never ``mmap.close()``: NumPy's views do not hold the map's buffer, so closing it under a view
        that is still read (a study's pool of maps, after the cache let go of an old pack) unmaps memory the view
        reads, and the process dies of a segmentation fault (seen in a long fitness check)."""
        self._data = None


class PackWriter:
    """Rows appended to a new pack in ``folder``; :meth:`close` makes it a pack (see the module docstring)."""

    def __init__(self, folder: Path, levels: Sequence[str], backbone_key: str, label: str | None = None):
        self.folder = make_dirs(folder)
        self.levels, self.backbone_key, self.label = list(levels), backbone_key, label or ""
        self.keys: list[str] = []
        self.crcs: list[int] = []
        self.shapes: list[tuple[int, int, int]] | None = None
        self.started = time.monotonic()
        with writing(self.folder / "(a new pack)"):
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".pack-", suffix=".tmp")
        self.tmp = Path(tmp)
        self._f = os.fdopen(fd, "wb")

    def __len__(self) -> int:
        return len(self.keys)

    def due(self) -> bool:
        return len(self.keys) >= PACK_ROWS or (len(self.keys) >= PACK_MIN_ROWS
                                               and time.monotonic() - self.started >= PACK_SECONDS)

    def add(self, key: str, maps: Sequence[np.ndarray]) -> None:
        shapes = [tuple(int(v) for v in m.shape) for m in maps]
        if self.shapes is None:
            if len(shapes) != len(self.levels) or any(len(s) != 3 for s in shapes):
                raise LowdataError(f"a pack row takes one (h, w, c) map per level {self.levels}, got {shapes}")
            self.shapes = shapes
        elif shapes != self.shapes:
            raise LowdataError(f"the maps of {key} are {shapes}, the pack's other rows {self.shapes}")
        row = np.concatenate([np.ascontiguousarray(m, dtype="<f4").reshape(-1) for m in maps])
        good = self._f.tell()
        try:
            with writing(self.tmp):
                self._f.write(memoryview(row).cast("B"))
        except LowdataError:  # a row half written (a full disk): cut back to the rows before it
            try:
                self._f.seek(good)
                self._f.truncate(good)
            except OSError:
                pass
            raise
        self.keys.append(key)
        self.crcs.append(_crc(row))

    def close(self) -> Path | None:
        """The pack, synced and renamed into place (``None`` when no row was added)."""
        try:
            if not self.keys:
                return None
            footer = json.dumps({"format": FORMAT, "backbone": self.backbone_key, "label": self.label,
                                 "levels": self.levels, "shapes": self.shapes, "keys": self.keys, "crc32": self.crcs,
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
            path = self.folder / f"{keys_digest(self.keys)}{SUFFIX}"
            with writing(path):
                self._f.write(footer)
                self._f.write(_TRAILER.pack(len(footer), zlib.crc32(footer), MAGIC))
                self._f.flush()
                os.fsync(self._f.fileno())
                self._f.close()
                os.chmod(self.tmp, default_file_mode())
                os.replace(self.tmp, path)
            return path
        finally:
            self.abort()

    def abort(self) -> None:
        """The temporary file removed (nothing is made of the rows added)."""
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)
