"""Content digests: of files (weights, archives), of image bytes and of pixel arrays."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=16)
def weights_digest(path: str) -> str:
    """SHA-256 of a weights file, computed once per process (weights are named by content)."""
    return file_hash(path)


def bytes_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:40]


def array_hash(arr: np.ndarray) -> str:
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()[:40]
