"""The legacy .pth reader, against a file written by hand in PyTorch's legacy layout, and the real one."""
import pickle
import struct

import numpy as np
import pytest

from lowdata.features.efficientnet_lite import weights_path
from lowdata.core.errors import LowdataError
from lowdata.features.torch_legacy import LEGACY_MAGIC, load_legacy_state_dict


def write_legacy(path, tensors: dict):
    """Write ``{name: (base array, offset, shape, strides in elements)}`` like torch.save (legacy)."""
    import io

    buf = io.BytesIO()
    storages = {}
    # Build the pickle stream manually with GLOBAL opcodes for torch classes.
    p = pickle._Pickler(buf, protocol=2)

    def save_global_ref(module, name):
        p.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    for key, (base, _, _, _) in tensors.items():
        storages[key] = base
    # The state dict pickle: OrderedDict() then SETITEMS of (name, _rebuild_tensor_v2(storage, ...)).
    p.write(pickle.PROTO + bytes([2]))
    save_global_ref("collections", "OrderedDict")
    p.write(pickle.EMPTY_TUPLE + pickle.REDUCE)
    p.write(pickle.MARK)
    type_names = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}
    for name, (_, offset, shape, stride) in tensors.items():
        key = name
        p.save(name)
        save_global_ref("torch._utils", "_rebuild_tensor_v2")
        p.write(pickle.MARK)
        # persistent id tuple
        p.write(pickle.MARK)
        p.save("storage")
        save_global_ref("torch", type_names[storages[key].dtype])
        p.save(key)
        p.save("cpu")
        p.save(int(storages[key].size))
        p.save(None)
        p.write(pickle.TUPLE)
        p.write(pickle.BINPERSID)
        p.save(int(offset))
        p.save(tuple(shape))
        p.save(tuple(stride))
        p.save(False)
        save_global_ref("collections", "OrderedDict")
        p.write(pickle.EMPTY_TUPLE + pickle.REDUCE)
        p.write(pickle.TUPLE + pickle.REDUCE)
    p.write(pickle.SETITEMS + pickle.STOP)
    with open(path, "wb") as f:
        pickle.dump(LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, f, protocol=2)
        f.write(buf.getvalue())
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for k in keys:
            f.write(struct.pack("<q", storages[k].size))
            f.write(storages[k].astype(storages[k].dtype.newbyteorder("<")).tobytes())


def test_reads_hand_written_legacy_file_with_strides_and_offsets(tmp_path):
    base = np.arange(24, dtype=np.float32)
    path = tmp_path / "w.pth"
    write_legacy(path, {
        "contiguous": (base, 0, (2, 3, 4), (12, 4, 1)),
        "transposed": (np.arange(6, dtype=np.float32), 0, (3, 2), (1, 3)),
        "offset": (np.arange(10, dtype=np.float32) * 2, 4, (3,), (1,)),
        "scalar": (np.array([7], dtype=np.int64), 0, (), ()),
    })
    sd = load_legacy_state_dict(path)
    assert list(sd) == ["contiguous", "transposed", "offset", "scalar"]
    np.testing.assert_array_equal(sd["contiguous"], base.reshape(2, 3, 4))
    np.testing.assert_array_equal(sd["transposed"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    np.testing.assert_array_equal(sd["offset"], [8.0, 10.0, 12.0])
    assert sd["scalar"] == 7 and sd["scalar"].dtype == np.int64


def test_real_lite0_state_dict():
    sd = load_legacy_state_dict(weights_path("efficientnet-lite0"))
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert all(np.isfinite(v).all() for v in sd.values())
    # batch-norm variances are never negative and almost all positive (a few channels are dead in
    # the original weights): the bytes were read at the right offsets
    var = np.concatenate([v for k, v in sd.items() if k.endswith("running_var")])
    assert (var >= 0).all() and (var > 0).mean() > 0.99


def test_truncated_and_foreign_files_name_the_file(tmp_path):
    src = weights_path("efficientnet-lite0").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(src[: len(src) // 2])
    with pytest.raises(LowdataError, match="cut.pth"):
        load_legacy_state_dict(cut)
    other = tmp_path / "other.pth"
    other.write_bytes(b"PK\x03\x04 not a legacy file")
    with pytest.raises(LowdataError, match="other.pth"):
        load_legacy_state_dict(other)
