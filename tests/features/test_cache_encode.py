"""Embedding cache and encoding: encoded once, read back exactly, atomic, safe with two processes."""
import errno
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import MVTEC_ROOT, REPO, requires_mvtec, write_png
from lowdata.features.cache import EmbeddingCache, entry_key
from lowdata.features.encode import cache_for, encode, load_for, source_key
from lowdata.core.errors import LowdataError


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(1)
    return [write_png(tmp_path / "img" / f"{i}.png", rng.integers(0, 255, (50 + i, 60, 3), dtype=np.uint8))
            for i in range(7)]


def test_encode_matches_forward_and_second_run_reads_cache(lite0_small, images, tmp_path, monkeypatch):
    cache = cache_for(lite0_small, tmp_path / "cache")
    emb = encode(lite0_small, images, cache, batch_size=3, progress=False)
    assert (emb.stats.images, emb.stats.cached, emb.stats.encoded) == (7, 0, 7)
    direct = lite0_small.forward(np.stack([load_for(lite0_small, p) for p in images]))
    for level, maps in enumerate(direct):
        np.testing.assert_allclose(emb.pooled[level], maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    spatial = emb.spatial([0, 6])
    np.testing.assert_allclose(spatial[0], direct[0][[0, 6]], rtol=1e-5, atol=1e-6)
    assert emb.pooled_concat().shape == (7, 80 + 192 + 320)

    monkeypatch.setattr(lite0_small, "forward", lambda batch: pytest.fail("the backbone ran on cached images"))
    again = encode(lite0_small, images, cache, progress=False)
    assert (again.stats.cached, again.stats.encoded) == (7, 0)
    np.testing.assert_array_equal(again.pooled_concat(), emb.pooled_concat())


def test_arrays_and_duplicates(lite0_small, images, tmp_path):
    cache = cache_for(lite0_small, tmp_path / "cache")
    arr = load_for(lite0_small, images[0])
    emb = encode(lite0_small, [arr, images[1], arr], cache, progress=False)
    assert emb.stats.encoded == 2  # the same array twice is encoded once
    np.testing.assert_array_equal(emb.pooled[0][0], emb.pooled[0][2])
    assert emb.keys[0] == source_key(arr) != source_key(images[0])


def test_keys_separate_backbones_and_augmented_copies(lite0_small, tmp_path):
    key = entry_key("abc", "policydigest0123456789", seed=3, copy=2)
    assert key == "abc-augpolicydigest0123-s3-c2" and entry_key("abc") == "abc"
    a = EmbeddingCache(tmp_path, lite0_small.key, lite0_small.levels)
    assert "efficientnet-lite0-96px-" in str(a.dir) and lite0_small.weights_digest[:16] in str(a.dir)


def test_failed_write_leaves_nothing_and_keeps_old_entries(lite0_small, images, tmp_path, monkeypatch):
    cache = cache_for(lite0_small, tmp_path / "cache")
    encode(lite0_small, images[:2], cache, progress=False)
    before = sorted(p.name for p in cache.dir.rglob("*"))

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(LowdataError, match=r"cannot write .*\.npz: no space left on the device"):
        encode(lite0_small, images[2:4], cache, progress=False)
    after = sorted(p.name for p in cache.dir.rglob("*"))
    assert [n for n in after if n.endswith(".npz")] == [n for n in before if n.endswith(".npz")]
    assert not [n for n in after if n.endswith(".tmp")]


def test_unreadable_image_is_named_and_finished_batches_are_kept(lite0_small, images, tmp_path):
    bad = images[5]
    bad.write_bytes(b"\x89PNG broken")
    cache = cache_for(lite0_small, tmp_path / "cache")
    with pytest.raises(LowdataError, match=f"cannot read image .*{bad.name}"):
        encode(lite0_small, images, cache, batch_size=2, progress=False)
    kept = encode(lite0_small, images[:4], cache, progress=False)
    assert kept.stats.cached == 4


def test_corrupt_entry_is_reported_and_encoded_again(lite0_small, images, tmp_path):
    cache = cache_for(lite0_small, tmp_path / "cache")
    first = encode(lite0_small, images[:1], cache, progress=False)
    cache.path(first.keys[0]).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"cache entry was damaged and is encoded again \(replaced\); "
                                         r"cache entry .* is damaged "):
        again = encode(lite0_small, images[:1], cache, progress=False)
    assert again.stats.encoded == 1
    np.testing.assert_allclose(again.pooled[2], first.pooled[2])


def test_two_processes_encoding_the_same_images_at_once(images, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from lowdata.features.backbones import load_backbone
        from lowdata.features.encode import cache_for, encode
        bb = load_backbone("efficientnet-lite0", 64)
        paths = {[str(p) for p in images]!r}
        emb = encode(bb, paths, cache_for(bb, {str(tmp_path / 'shared')!r}), batch_size=2, progress=False)
        print(emb.pooled_concat().sum())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    sums = [float(o[0].strip().splitlines()[-1]) for o in outs]
    assert sums[0] == pytest.approx(sums[1], rel=1e-6)
    files = list((tmp_path / "shared").rglob("*"))
    assert len([f for f in files if f.suffix == ".npz"]) == 7 and not [f for f in files if f.suffix == ".tmp"]


@requires_mvtec
def test_real_bottle_images_encode(lite0_small, tmp_path):
    paths = sorted((MVTEC_ROOT / "bottle" / "test" / "broken_large").glob("*.png"))[:3]
    emb = encode(lite0_small, paths, cache_for(lite0_small, tmp_path), progress=False)
    assert emb.pooled_concat().shape == (3, 592) and np.isfinite(emb.pooled_concat()).all()
    assert not np.allclose(emb.pooled[0][0], emb.pooled[0][1])
