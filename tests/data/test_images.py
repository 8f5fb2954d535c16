"""Image decoding: every mode becomes uint8 RGB; bad files get errors that name them."""
import numpy as np
import pytest
from PIL import Image

from lowdata.core.errors import LowdataError
from lowdata.data.images import list_images, read_image, resize_rgb


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    Image.fromarray(g).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 5, 3)
    assert (out == [10, 20, 30]).all()


def test_sixteen_bit_is_scaled(tmp_path):
    v = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "s.png")
    out = read_image(tmp_path / "s.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_palette_image(tmp_path):
    Image.fromarray(np.full((3, 3, 3), 200, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert (read_image(tmp_path / "p.png") == 200).all()


def test_corrupt_and_missing_files_are_named(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 100).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "text.png").write_text("hello")
    for name in ("truncated.png", "text.png"):
        with pytest.raises(LowdataError, match=f"cannot read image .*{name}"):
            read_image(tmp_path / name)
    with pytest.raises(LowdataError, match="image not found: .*nothere.png"):
        read_image(tmp_path / "nothere.png")


def test_list_images_skips_other_files_with_a_warning(tmp_path):
    for n in ("b.PNG", "a.jpg", "c.bmp"):
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / n)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 2 of the 5 entries in .*: notes.txt \(not an image file\), sub \(a folder, not searched\)"):
        found = list_images(tmp_path)
    assert [p.name for p in found] == ["a.jpg", "b.PNG", "c.bmp"]
    with pytest.raises(LowdataError, match="folder not found"):
        list_images(tmp_path / "missing")


def test_resize_is_exact_size_and_keeps_constant_images():
    img = np.full((900, 700, 3), 77, np.uint8)
    out = resize_rgb(img, 380)
    assert out.shape == (380, 380, 3) and (out == 77).all()
    assert resize_rgb(out, 380) is out
