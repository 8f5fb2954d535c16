"""Atomic file writes: nothing half written, ever.

``with atomic_path(target) as tmp:`` gives a temporary path in the target's own folder; write it,
and on a clean exit it is renamed over ``target`` (``os.replace``, atomic on one file system). On an
error the temporary file is removed and ``target`` is untouched. Readers see the old file or the
new one, and two writers of the same target both succeed (the last rename wins).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path):
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:24]}-", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
