"""Hostile and careless input (issue 13): each case fails on the code before the fix."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from lowdata import LowdataError
from lowdata.images import image_size, list_images, read_image
from lowdata.model import fit_model, load_model, plan_overlays

from conftest import write_png
from test_model import elpv_images, good_folder  # noqa: F401 (fixtures)


@pytest.fixture
def saved(good_folder, lite0_small, tmp_path):
    model = fit_model(good_folder, "maha-lw", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
    model.save(tmp_path / "model")
    return tmp_path / "model"


def _set(path, section, field, value):
    meta = json.loads((path / "model.json").read_text())
    meta[section][field] = value
    (path / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../etc/passwd", "detector-notes.npz"])
def test_arrays_file_outside_the_folder_is_refused_unread(saved, name):
    _set(saved, "arrays", "file", name)
    with pytest.raises(LowdataError, match=r"arrays.file must be a text matching detector-") as e:
        load_model(saved)
    assert "SHA-256" not in str(e.value) and "bytes" not in str(e.value)


def test_symlink_out_of_the_folder_is_refused(saved, tmp_path):
    npz = next(saved.glob("detector-*.npz"))
    outside = tmp_path / "elsewhere.npz"
    npz.rename(outside)
    npz.symlink_to(outside)
    with pytest.raises(LowdataError, match="symbolic link out of the model folder"):
        load_model(saved)


@pytest.mark.parametrize("section, field, value, match", [
    ("threshold", "value", "abc", r"threshold.value must be a finite number > 0, got 'abc'"),
    ("threshold", "value", float("nan"), r"threshold.value must be a finite number > 0"),
    ("backbone", "input_size", "big", r"backbone.input_size must be a whole number from 32 to 1024"),
    ("backbone", "input_size", 1000000, r"backbone.input_size must be a whole number from 32 to 1024"),
    ("arrays", "names", None, r"arrays.names must be a list"),
    ("training", "image_sizes", 7, r"training.image_sizes must be a list"),
])
def test_every_field_is_checked(saved, section, field, value, match):
    _set(saved, section, field, value)
    with pytest.raises(LowdataError, match=match):
        load_model(saved)


def test_missing_sha256_and_string_arrays(saved):
    meta = json.loads((saved / "model.json").read_text())
    del meta["arrays"]["sha256"]
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="arrays lacks the field 'sha256'"):
        load_model(saved)


def test_string_dtype_arrays_with_a_matching_hash_are_refused(saved):
    from lowdata.digests import file_hash

    meta = json.loads((saved / "model.json").read_text())
    npz = saved / meta["arrays"]["file"]
    with np.load(npz) as z:
        arrays = {k: (z[k].astype(str) if i == 0 else z[k]) for i, k in enumerate(z.files)}
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size)
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="a lowdata model holds floats only"):
        load_model(saved)
    npz.write_bytes(b"not a zip at all")  # hash matches, zip does not
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size)
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="not a valid arrays file"):
        load_model(saved)


def test_decompression_bomb_is_named(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (14000, 14000)).save(path, optimize=True)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(LowdataError, match=r"bomb.png is .*196,000,000 pixels, over the limit"):
        read_image(path)
    with pytest.raises(LowdataError, match=r"bomb.png is .*196,000,000 pixels"):
        image_size(path)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=100)
    out = read_image(path)
    assert out.shape == (40, 20, 3) and image_size(path) == (20, 40)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the white half is now on top


def test_dangling_symlinks_and_special_files_are_warned(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.warns(UserWarning, match=r"gone.png \(dangling symlink\).*pipe.png \(not a regular file\)"):
        assert [p.name for p in list_images(tmp_path)] == ["a.png"]


def test_overlays_never_replace_a_users_file(tmp_path):
    imgs = [write_png(tmp_path / "parts" / f"{i}.png", np.zeros((4, 4, 3), np.uint8)) for i in range(2)]
    with pytest.raises(LowdataError, match="holds images being scored"):
        plan_overlays(tmp_path / "parts", imgs)
    (tmp_path / "heat").mkdir()
    (tmp_path / "heat" / "0.heatmap.png").write_bytes(b"mine")
    with pytest.raises(LowdataError, match="0.heatmap.png exists and was not written by lowdata"):
        plan_overlays(tmp_path / "heat", imgs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(LowdataError, match="is a file, not a folder"):
        plan_overlays(tmp_path / "file", imgs)
    targets = plan_overlays(tmp_path / "fresh", imgs)
    assert [t.name for t in targets] == ["0.heatmap.png", "1.heatmap.png"]
    targets[0].write_bytes(b"ours")
    assert plan_overlays(tmp_path / "fresh", imgs) == targets  # what lowdata wrote may be replaced


def test_save_replaces_only_a_lowdata_model(saved, tmp_path, good_folder, lite0_small):
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_text(json.dumps({"someone": "else"}))
    (other / "detector-notes.npz").write_bytes(b"x")
    model = load_model(saved)
    with pytest.raises(LowdataError, match="is not a lowdata model: not overwriting it"):
        model.save(other)
    assert (other / "detector-notes.npz").read_bytes() == b"x"
    keep = saved / "detector-000000000000.npz"  # not the model's arrays: a save leaves it
    keep.write_bytes(b"y")
    fit_model(good_folder, "knn", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False).save(saved)
    assert keep.exists() and load_model(saved).method == "knn"
