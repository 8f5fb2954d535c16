"""Feature packs: each map on disk once, unaligned, aligned on read; checked on read, rebuilt when damaged."""

import multiprocessing as mp
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from lowdata.core.errors import LowdataError
from lowdata.core.grids import AlignedLevels, align_levels
from lowdata.data.sources import load_category
from lowdata.detectors.inputs import MapRows, stack_maps
from lowdata.detectors.location_blocks import LocationBlocks
from lowdata.detectors.padim import PaDiM
from lowdata.experiments.study import run_study
from lowdata.experiments.design import StudyConfig
from lowdata.features import packs as P
from lowdata.features.cache import EmbeddingCache
from lowdata.features.encode import encode
from lowdata.features.embeddings import map_rows

LEVELS = ("fine", "mid", "coarse")


def _maps(rng, n):
    # grids of 6x6, 3x3 (a whole factor) and 4x4 (not a whole factor: nearest neighbour by cell centres)
    return [[rng.normal(size=s).astype(np.float32) for s in ((6, 6, 3), (3, 3, 2), (4, 4, 2))] for _ in range(n)]


def _cache(root, n=7, seed=0, label="test/widget"):
    rng = np.random.default_rng(seed)
    cache = EmbeddingCache(root, "bb-test", LEVELS)
    keys = [f"{seed:02d}{i:062d}" for i in range(n)]
    maps = _maps(rng, n)
    sink = P.PackWriter(cache.packs, LEVELS, "bb-test", label)
    for k, m in zip(keys, maps):
        sink.add(k, m)
    path = sink.close()
    for row, (k, m) in enumerate(zip(keys, maps)):
        cache.write_entry(k, [x.mean(axis=(0, 1)) for x in m], path.name, row)
    aligned = align_levels([np.stack([m[j] for m in maps]) for j in range(3)])
    return cache, keys, aligned, path


def test_maps_are_stored_once_unaligned_and_read_aligned(tmp_path):
    cache, keys, aligned, path = _cache(tmp_path)
    # the file holds the unaligned maps (36*3 + 9*2 + 16*2 floats a row), not the aligned ones (36 * 7)
    pack = P.Pack.open(path)
    assert len(pack) == 7 and pack.label == "test/widget" and pack.keys == keys
    assert path.stat().st_size < 7 * 36 * 7 * 4
    assert 7 * (36 * 3 + 9 * 2 + 16 * 2) * 4 < path.stat().st_size
    rows = map_rows(cache, keys[::-1])
    np.testing.assert_array_equal(np.concatenate(list(rows.chunks(3))), aligned[::-1])
    np.testing.assert_array_equal(stack_maps(rows), aligned[::-1])
    # a block of grid locations of some rows, across a row boundary of the grid, as PaDiM reads it
    al = pack.aligned()
    flat = aligned.reshape(7, 36, 7)
    for j0, j1 in ((0, 36), (5, 14), (17, 18), (30, 36)):
        np.testing.assert_array_equal(al.locations(np.array([4, 0, 2]), j0, j1), flat[[4, 0, 2], j0:j1])
    blocks = LocationBlocks([al, flat], np.array([9, 3, 1, 12]))
    np.testing.assert_array_equal(blocks(7, 20), np.swapaxes(np.concatenate([flat, flat])[[9, 3, 1, 12], 7:20], 0, 1))
    # PaDiM on the packs' rows is PaDiM on the aligned array, to the bit
    picks = np.array([1, 2, 4, 5, 6])
    a = PaDiM().fit(MapRows([al], picks)).anomaly_score(rows)
    b = PaDiM().fit(aligned[picks]).anomaly_score(aligned[::-1])
    np.testing.assert_array_equal(a, b)
    assert isinstance(al, AlignedLevels) and al.shape == (7, 6, 6, 7)


@pytest.mark.parametrize("damage", ["zeros", "random", "truncate", "footer"])
def test_a_damaged_pack_is_named_and_its_images_are_not_read(tmp_path, damage):
    cache, keys, aligned, path = _cache(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "zeros":
        data[100:400] = bytes(300)
    elif damage == "random":
        data[100:400] = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-40:-20] = b"x" * 20
    path.write_bytes(bytes(data))
    fresh = EmbeddingCache(tmp_path, "bb-test", LEVELS)
    with pytest.raises(LowdataError, match=f"the feature pack {path} is damaged"):
        map_rows(fresh, keys)
    with pytest.warns(UserWarning, match=f"the feature pack {path} is damaged .*: it is removed and its images are "
                                         "encoded again"):
        assert not fresh.maps_ok(keys[0], set())
    assert not path.exists()
    with pytest.warns(UserWarning, match=f"the feature pack {path} is gone: its images are encoded again"):
        assert not fresh.maps_ok(keys[1], set())  # the pack is gone: its other images are encoded again too


def test_an_entry_must_match_its_row(tmp_path):
    cache, keys, _, path = _cache(tmp_path)
    cache.write_entry(keys[0], [np.zeros(3, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)],
                      path.name, 3)  # points to another image's row
    with pytest.raises(LowdataError, match=f"does not hold the maps of cache entry .*{keys[0]}.npz at row 3"):
        map_rows(EmbeddingCache(tmp_path, "bb-test", LEVELS), keys)
    fresh = EmbeddingCache(tmp_path, "bb-test", LEVELS)
    with pytest.warns(UserWarning, match="at row 3: the image is encoded again"):
        assert not fresh.maps_ok(keys[0], set())
    assert path.exists() and fresh.maps_ok(keys[1], set())  # the pack is sound: it stays, its other images too


@pytest.mark.parametrize("name", ["../../../x.pack", "a\x00b.pack", "0123456789abcdef0123.pack/..", "\x1b[31m.pack",
                                  ".hidden.pack", "0123456789ABCDEF0123.pack"])
def test_an_entry_pointing_outside_the_packs_is_damaged_not_followed(tmp_path, name):
    cache, keys, _, _ = _cache(tmp_path)
    name = name.encode().decode("unicode_escape")
    cache.write_entry(keys[0], [np.zeros(3, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)], name, 0)
    fresh = EmbeddingCache(tmp_path, "bb-test", LEVELS)
    with pytest.raises(LowdataError, match="is damaged \\(its pack pointer is not a pack's name and a row\\)"):
        map_rows(fresh, keys)
    from lowdata.features.encode import _cached_pooled

    damaged = []
    assert _cached_pooled(fresh, keys[0], "x", True, set(), damaged) is None
    assert len(damaged) == 1 and "is damaged (its pack pointer is not a pack's name and a row)" in damaged[0]


def test_an_interrupted_encoding_keeps_what_it_encoded(lite0_small, elpv_images, tmp_path):
    """An unreadable image in the middle of a run stops it; the images encoded before it are kept (their pack
    closed), and the next run encodes only the rest."""
    images = list(elpv_images[0][:6])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    with pytest.raises(LowdataError, match="bad.png"):
        encode(lite0_small, images[:3] + [bad] + images[3:], cache, batch_size=3, progress=False)
    done = encode(lite0_small, images, cache, batch_size=3, progress=False)
    assert done.stats.cached == 3 and done.stats.encoded == 3
    assert sum(len(P.Pack.open(p)) for p in cache.packs.glob("*.pack")) == 6  # no map twice
    assert not list(cache.packs.glob(".*.tmp"))


def _study(data, bb, root, out):
    cache = EmbeddingCache(root, bb.key, bb.levels)
    config = StudyConfig(methods=["knn", "padim"], sizes=[3, 6], reps=2, factors=[0, 1], seed=2, pixel_size=32)
    return run_study(data, bb, cache, config, out, progress=False)


@pytest.mark.parametrize("damage", ["zeros", "random", "truncate"])
def test_a_study_rerun_on_a_damaged_pack_rebuilds_it_and_gives_the_same_numbers(tiny_mvtec, lite0_small, tmp_path,
                                                                                    damage):
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    root = tmp_path / "cache"
    before = _study(data, lite0_small, root, tmp_path / "a.csv")
    packs = sorted((root / "maps").rglob("*.pack"), key=lambda p: p.stat().st_mtime_ns)
    test_pack = [p for p in packs if len(P.Pack.open(p)) == len(data.test)][0]
    raw = bytearray(test_pack.read_bytes())
    third = len(raw) // 3
    if damage == "zeros":
        raw[:third] = bytes(third)
    elif damage == "random":
        raw[:third] = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8).tobytes()
    else:
        raw = raw[:2 * third]
    test_pack.write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        after = _study(data, lite0_small, root, tmp_path / "b.csv")
    said = [str(w.message) for w in seen if "feature pack" in str(w.message)]
    assert len(said) == 1 and str(test_pack) in said[0] and "encoded again" in said[0]
    cols = ["method", "n_train", "replicate", "aug_factor", "auroc", "pixel_auroc", "aupro"]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert P.Pack.open(test_pack).check()  # rebuilt whole, under the same name (the same images in order)


def _read_after_the_cache_lets_go(root, out):
    cache, keys, aligned, _ = _cache(root)
    rows = map_rows(cache, keys)  # a pool of maps reading the pack, as a study's or a fitness check's test set
    for pack in list(cache._open.values()):  # what the cache does to its oldest pack past 256 open ones
        pack.close()
    cache._open.clear()
    out.put(bool(np.array_equal(stack_maps(rows), aligned)))


def test_maps_stay_readable_after_the_cache_lets_go_of_their_pack(tmp_path):
    """Closing a pack's memory map under a pool still reading it unmapped the memory (NumPy's views do not hold the
    map): the process died of a segmentation fault. Run in a child, so that such a death is a failure here."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_read_after_the_cache_lets_go, args=(str(tmp_path), out))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, f"the reader died (exit code {child.exitcode})"
    assert out.get(timeout=5)


def _encode_in_child(root, images, out):
    from lowdata.features.backbones import load_backbone

    bb = load_backbone("efficientnet-lite0", input_size=96)
    emb = encode(bb, images, EmbeddingCache(root, bb.key, bb.levels), batch_size=2, progress=False)
    out.put(float(np.asarray(emb.pooled_concat(), np.float64).sum()))


def test_two_processes_encoding_the_same_images_both_succeed(elpv_images, tmp_path, lite0_small):
    images = [str(p) for p in elpv_images[0][:6]]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_encode_in_child, args=(str(tmp_path), images, out)) for _ in range(2)]
    for p in procs:
        p.start()
    sums = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sums[0] == sums[1]
    cache = EmbeddingCache(tmp_path, lite0_small.key, lite0_small.levels)
    rows = map_rows(cache, [p for p in encode(lite0_small, images, cache, progress=False).keys])
    assert len(rows) == 6 and not list(cache.packs.glob(".*.tmp"))


def test_pooled_only_encoding_keeps_no_maps_and_a_maps_reader_encodes_again(lite0_small, elpv_images, tmp_path):
    images = list(elpv_images[0][:4])
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    pooled = encode(lite0_small, images, cache, progress=False, maps=False)
    assert not list(cache.packs.glob("*.pack")) and len(list(cache.dir.rglob("*.npz"))) == 4  # no disk for maps
    again = encode(lite0_small, images, cache, progress=False, maps=False)
    assert again.stats.cached == 4
    with_maps = encode(lite0_small, images, cache, progress=False)  # a detector of maps: encoded again, quietly
    assert with_maps.stats.encoded == 4
    np.testing.assert_array_equal(with_maps.pooled_concat(), pooled.pooled_concat())
    assert len(map_rows(cache, with_maps.keys)) == 4


def test_a_full_disk_while_writing_a_pack_is_one_line_and_leaves_nothing_half_written(lite0_small, elpv_images,
                                                                                     tmp_path, monkeypatch):
    import errno

    images = list(elpv_images[0][:6])
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    real_add, calls = P.PackWriter.add, []

    class Full:  # a file on a disk that fills up: part of the row is written, then ENOSPC
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[:1000])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    def add(self, key, maps):
        calls.append(key)
        if len(calls) != 4:  # the disk is full at the fourth image
            return real_add(self, key, maps)
        f, self._f = self._f, Full(self._f)
        try:
            return real_add(self, key, maps)
        finally:
            self._f = f

    monkeypatch.setattr(P.PackWriter, "add", add)
    with pytest.raises(LowdataError, match=rf"cannot write {cache.packs}/\.pack-.*\.tmp: no space left on the device"):
        encode(lite0_small, images, cache, batch_size=2, progress=False)
    monkeypatch.undo()
    assert not list(cache.packs.glob(".*.tmp"))
    # the images encoded but the one whose row failed are kept, in a whole pack (the half row cut away)
    kept = [P.Pack.open(p).check() for p in cache.packs.glob("*.pack")]
    assert [len(p) for p in kept] == [5] and calls[3] not in kept[0].keys
    assert encode(lite0_small, images, cache, batch_size=2, progress=False).stats.cached == 5


def test_a_read_only_cache_folder_is_one_line(lite0_small, elpv_images, tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    real = Path.mkdir

    def mkdir(self, *a, **k):  # a read-only file system under tmp_path/ro (root may write anywhere: simulated)
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    cache = EmbeddingCache(tmp_path / "ro" / "cache", lite0_small.key, lite0_small.levels)
    with pytest.raises(LowdataError, match=rf"^cannot create the folder {cache.root}: read-only file system$"):
        encode(lite0_small, list(elpv_images[0][:2]), cache, progress=False)


def test_a_pack_half_written_by_a_killed_process_is_never_read_and_is_pruned(lite0_small, elpv_images, tmp_path):
    """kill -9 in the middle of encoding: the open pack stays a temporary file (never read); the next run encodes
    what was not closed, and `lowdata cache prune` removes the leftover once no run uses the cache."""
    import signal
    import subprocess
    import sys

    from lowdata.cli import main

    images = [str(p) for p in elpv_images[0][:12]]
    root = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", "import sys\n"
                              "from lowdata.features import packs\n"
                              "from lowdata.features.backbones import load_backbone\n"
                              "from lowdata.features.cache import EmbeddingCache\n"
                              "from lowdata.features.encode import encode\n"
                              "packs.PACK_ROWS = 4\n"
                              "real = packs.PackWriter.add\n"
                              "def add(self, key, maps, n=[0]):\n"
                              "    n[0] += 1\n"
                              "    if n[0] == 6:\n"
                              "        print('in the middle', flush=True)\n"
                              "        import time; time.sleep(60)\n"
                              "    return real(self, key, maps)\n"
                              "packs.PackWriter.add = add\n"
                              "bb = load_backbone('efficientnet-lite0', input_size=96)\n"
                              f"encode(bb, {images!r}, EmbeddingCache({str(root)!r}, bb.key, bb.levels), batch_size=2,"
                              " progress=False)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "in the middle"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    cache = EmbeddingCache(root, lite0_small.key, lite0_small.levels)
    left = list(cache.packs.glob(".pack-*.tmp"))
    assert len(left) == 1 and [len(P.Pack.open(p)) for p in cache.packs.glob("*.pack")] == [4]
    again = encode(lite0_small, images, cache, batch_size=2, progress=False)
    assert again.stats.cached == 4 and again.stats.encoded == 8
    results = tmp_path / "results"
    results.mkdir()
    pd.DataFrame({"source": ["elpv"], "category": ["poly"], "backbone": [lite0_small.key]}).to_parquet(
        results / "study.parquet")  # a table that needs another category: these packs are not needed
    assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 0
    assert not list(cache.packs.glob(".pack-*.tmp")) and not list(cache.packs.glob("*.pack"))
