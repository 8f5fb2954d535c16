"""Exclusive locks on outputs: one writer at a time, and a message naming the other one.

``with exclusive_lock(path, what):`` creates ``path`` atomically (``O_CREAT | O_EXCL``) holding the
pid, host and start time of this process, and removes it on exit. A second process asking for the
same lock stops at once (or after ``wait`` seconds) with an error naming the holder. A lock left by a
process that is gone (same host, dead pid) is taken over with a warning; a lock held on another host
is never taken over: remove it by hand once you know that run has ended.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from .atomic import os_error_text
from .errors import LowdataError


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _holder(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text())
        return info if isinstance(info, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "an unknown process (the lock file is empty or unreadable)"
    text = f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # read from a file: no control characters


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise LowdataError(f"cannot create the lock file {path}: {os_error_text(exc)}") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info) + "\n")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise LowdataError(f"cannot write the lock file {path}: {os_error_text(exc)}") from None
    return True


@contextmanager
def exclusive_lock(path: str | Path, what: str, wait: float = 0.0):
    """Hold the lock file ``path`` while the block runs; ``what`` names the locked thing in messages."""
    path = Path(path)
    deadline = time.monotonic() + wait
    while not _try_create(path):
        info = _holder(path)
        if info is None:  # released meanwhile
            continue
        stale = (info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int)
                 and not _pid_alive(info["pid"]))
        if stale:
            warnings.warn(f"taking over the stale lock {path} of {_describe(info)}, which is no longer running",
                          stacklevel=3)
            path.unlink(missing_ok=True)
            continue
        if time.monotonic() >= deadline:
            raise LowdataError(f"{what} is in use by another lowdata run ({_describe(info)}; lock file {path}). "
                               "Wait for it to finish, or remove the lock file if that run is gone")
        time.sleep(0.2)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- shared use of a folder
_REGISTERED: dict[str, Path] = {}


def register_use(folder: str | Path, admin: str | Path, wait: float = 3600.0) -> None:
    """Say that this process uses ``folder`` (a cache): a file ``<folder>/.users/<host>-<pid>`` removed at exit,
    so that ``lowdata cache prune`` does not remove what this run reads. While an administrative task holds the
    lock ``admin``, wait for it (up to ``wait`` seconds). Once per process and folder; a folder that cannot be
    written (read-only) is used without registering."""
    import atexit

    folder = Path(folder)
    key = str(folder.resolve()) if folder.exists() else str(folder.absolute())
    if key in _REGISTERED:
        return
    marker = folder / ".users" / f"{socket.gethostname()}-{os.getpid()}"
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    except OSError:
        return
    _REGISTERED[key] = marker
    atexit.register(marker.unlink, missing_ok=True)
    admin = Path(admin)
    deadline, said = time.monotonic() + wait, False
    while admin.exists():
        info = _holder(admin)
        if info is None:
            break
        if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) \
                and (info["pid"] == os.getpid() or not _pid_alive(info["pid"])):
            break
        if time.monotonic() >= deadline:
            raise LowdataError(f"{folder} is being pruned or cleared by another lowdata process ({_describe(info)}; "
                               f"lock file {admin}): wait for it to finish")
        if not said:
            warnings.warn(f"waiting for `lowdata cache` ({_describe(info)}) to finish with {folder}", stacklevel=3)
            said = True
        time.sleep(0.2)


def live_users(users: str | Path) -> list[str]:
    """The other live processes registered in ``users`` (stale markers of dead processes removed)."""
    out = []
    users = Path(users)
    for marker in sorted(users.glob("*")) if users.is_dir() else []:
        info = _holder(marker)
        if info is None:
            continue
        pid, host = info.get("pid"), info.get("host")
        if host == socket.gethostname() and isinstance(pid, int):
            if pid == os.getpid():
                continue
            if not _pid_alive(pid):
                marker.unlink(missing_ok=True)
                continue
        out.append(f"{_describe(info)}; its marker {marker}: remove it if that run has ended")
    return out
