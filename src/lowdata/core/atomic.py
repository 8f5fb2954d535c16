"""Atomic file writes: nothing half written, ever; and one clear line when the disk says no.

``with atomic_path(target) as tmp:`` gives a temporary path in the target's own folder; write it,
and on a clean exit it is renamed over ``target`` (``os.replace``, atomic on one file system). On an
error the temporary file is removed and ``target`` is untouched. Readers see the old file or the
new one, and two writers of the same target both succeed (the last rename wins). The file gets the
mode ``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``, so that
a shared cache or a model folder can be read by other users.

An operating-system error while writing (no space left on the device, a read-only file system,
permission denied) becomes a :class:`~lowdata.core.errors.LowdataError` naming the target and the cause
(:func:`writing`), so every writer of lowdata reports it the same way.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import LowdataError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# read once, at import: changing the umask for a moment is not safe while other threads create files
_UMASK = _read_umask()


def default_file_mode() -> int:
    """``0o666`` less the process's umask (as read when this module was imported)."""
    return 0o666 & ~_UMASK


_CAUSES = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


def os_error_text(exc: OSError) -> str:
    """The cause of an operating-system error in a few words (``no space left on the device``...)."""
    return _CAUSES.get(exc.errno, exc.strerror or str(exc))


@contextmanager
def writing(target: str | Path, what: str = "write"):
    """Turn an ``OSError`` raised inside into ``LowdataError('cannot write TARGET: CAUSE')``."""
    try:
        yield
    except LowdataError:
        raise
    except OSError as exc:
        raise LowdataError(f"cannot {what} {target}: {os_error_text(exc)}") from None


def make_dirs(folder: str | Path) -> Path:
    """``mkdir -p`` with a clear error (a file in the way, a read-only disk, no permission)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LowdataError(f"{folder} exists and is not a folder")
    with writing(folder, "create the folder"):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_new_file(path: str | Path, option: str, force: bool = False) -> Path:
    """The one rule of every file a command writes at a user's word (``--out``, ``--csv``, ``--write``): an
    existing file is replaced only with ``--force``; a folder never. Checked before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise LowdataError(f"{option} {path} is a folder: give a file name")
    if os.path.lexists(path) and not force:
        raise LowdataError(f"{option} {path} exists: give another file, or --force to replace it")
    return path


@contextmanager
def atomic_path(target: str | Path):
    target = Path(target)
    make_dirs(target.parent)
    with writing(target):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:24]}-", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            if os.path.exists(tmp):
                os.chmod(tmp, default_file_mode())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
