"""Atomic file writes: nothing half written, ever.

``with atomic_path(target) as tmp:`` gives a temporary path in the target's own folder; write it,
and on a clean exit it is renamed over ``target`` (``os.replace``, atomic on one file system). On an
error the temporary file is removed and ``target`` is untouched. Readers see the old file or the
new one, and two writers of the same target both succeed (the last rename wins). The file gets the
mode ``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``, so that
a shared cache or a model folder can be read by other users.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# read once, at import: changing the umask for a moment is not safe while other threads create files
_UMASK = _read_umask()


def default_file_mode() -> int:
    """``0o666`` less the process's umask (as read when this module was imported)."""
    return 0o666 & ~_UMASK


@contextmanager
def atomic_path(target: str | Path):
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
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
