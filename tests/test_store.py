"""The feature store: aligned maps of a category's images, memory-mapped, rebuilt when its images change."""

import multiprocessing as mp
import time

import numpy as np
import pytest

from lowdata.core.errors import LowdataError
from lowdata.core.grids import align_levels
from lowdata.features.cache import EmbeddingCache
from lowdata.features.store import FeatureStore, keys_digest

LEVELS = ("fine", "coarse")


def _cache(root, n=5, seed=0):
    """A cache with ``n`` entries of two levels (4x4x3 and 2x2x2 maps); returns it, the keys, the maps."""
    rng = np.random.default_rng(seed)
    cache = EmbeddingCache(root, "bb-test", LEVELS)
    keys, maps = [], []
    for i in range(n):
        m = [rng.normal(size=(4, 4, 3)).astype(np.float32), rng.normal(size=(2, 2, 2)).astype(np.float32)]
        key = f"{seed:02d}{i:062d}"
        cache.write(key, m)
        keys.append(key)
        maps.append(m)
    aligned = align_levels([np.stack([m[j] for m in maps]) for j in range(2)])
    return cache, keys, aligned


def test_store_holds_the_aligned_maps_and_is_read_again_without_a_rebuild(tmp_path):
    cache, keys, aligned = _cache(tmp_path)
    store = FeatureStore(cache, "mvtec", "bottle", "ab" * 32, 0)
    got = store.maps("train", keys, progress=False)
    np.testing.assert_array_equal(got, aligned)
    assert isinstance(got, np.memmap) and not got.flags.writeable
    path = store.path("train", keys)
    assert path.name == f"train-{keys_digest(keys)}.npy" and path.parent.name == f"mvtec-bottle-{'ab' * 8}-s0"
    stamp = path.stat().st_mtime_ns
    again = FeatureStore(cache, "mvtec", "bottle", "ab" * 32, 0).maps("train", keys, progress=False)
    np.testing.assert_array_equal(again, aligned)
    assert path.stat().st_mtime_ns == stamp  # opened, not built again
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary or lock file left


def test_changed_images_make_the_store_stale(tmp_path, capsys):
    cache, keys, aligned = _cache(tmp_path)
    store = FeatureStore(cache, "mvtec", "bottle", "cd" * 32, 1)
    store.maps("train", keys, progress=False)
    old = store.path("train", keys)
    # one image replaced by another: other keys, so another file; the old one is said stale and removed
    _, other_keys, other = _cache(tmp_path, n=1, seed=7)
    keys2 = keys[:4] + other_keys
    got = store.maps("train", keys2, progress=False)
    assert "its images changed" in capsys.readouterr().err
    np.testing.assert_array_equal(got[:4], aligned[:4])
    np.testing.assert_array_equal(got[4], other[0])
    assert not old.exists() and store.path("train", keys2).exists()


def test_a_damaged_store_is_rebuilt_and_a_missing_entry_is_named(tmp_path):
    cache, keys, aligned = _cache(tmp_path)
    store = FeatureStore(cache, "elpv", "mono", "ef" * 32, 0)
    path = store.path("test", keys)
    store.maps("test", keys, progress=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut in half (a disk that filled up, a copy that stopped)
    with pytest.warns(UserWarning, match="is damaged"):
        got = store.maps("test", keys, progress=False)
    np.testing.assert_array_equal(got, aligned)
    cache.path(keys[2]).unlink()
    with pytest.raises(LowdataError, match=f"cache entry .*{keys[2]}.npz is missing"):
        store.maps("train", keys, progress=False)
    assert not store.path("train", keys).exists()  # nothing half-built is left where a reader would look


def _build_in_child(root, keys, out):
    cache = EmbeddingCache(root, "bb-test", LEVELS)
    store = FeatureStore(cache, "mvtec", "bottle", "01" * 32, 0)
    read = store._read
    store._read = lambda key: (time.sleep(0.05), read(key))[1]  # a slow build (2 s): both processes overlap
    maps = store.maps("train", keys, progress=False)
    out.put((float(np.asarray(maps, dtype=np.float64).sum()), len(store.built)))


def test_two_processes_build_the_store_once_and_read_the_same_maps(tmp_path):
    cache, keys, aligned = _cache(tmp_path, n=40)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path), keys, out)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (s0, b0), (s1, b1) = got
    assert s0 == s1 == pytest.approx(float(aligned.astype(np.float64).sum()), rel=1e-12)
    assert b0 + b1 == 1  # one built it, the other waited on its lock and read it
    folder = FeatureStore(cache, "mvtec", "bottle", "01" * 32, 0).dir
    assert [p.name for p in folder.iterdir()] == [f"train-{keys_digest(keys)}.npy"]


def test_a_store_that_does_not_fit_on_the_disk_is_one_clear_error(tmp_path, monkeypatch):
    """A memory-mapped write to a full disk kills the process (SIGBUS): the space is checked first."""
    import collections
    import shutil

    cache, keys, _ = _cache(tmp_path / "cache", 3)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    store = FeatureStore(cache, "mvtec", "widget", "p" * 16, 0)
    with pytest.raises(LowdataError, match="not enough disk for the feature store .* it needs"):
        store.maps("train", keys, progress=False)
    assert not list(store.dir.glob("*.npy"))  # nothing half-written left
