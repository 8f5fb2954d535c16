"""Data sources: the real MVTec AD bottle, generated MVTec-layout folders, and ELPV."""
import numpy as np
import pytest

from conftest import MVTEC_ROOT, requires_mvtec, write_png
from lowdata.data.dataset import load_mask
from lowdata.data.sources import load_category
from lowdata.data.elpv import load_elpv
from lowdata.core.errors import LowdataError
from lowdata.data.images import read_image
from lowdata.data.mvtec import list_categories, load_mvtec


@requires_mvtec
def test_real_bottle_counts_labels_and_masks():
    d = load_category("mvtec", "bottle", root=MVTEC_ROOT)
    assert d.counts() == {"train/good": 209, "test/broken_large": 20, "test/broken_small": 22,
                          "test/contamination": 21, "test/good": 20}
    assert d.test_labels.sum() == 63 and len(d.test) == 83
    assert all(s.mask_path is not None for s in d.test if s.label == 1)
    assert all(s.mask_path is None for s in d.test if s.label == 0)
    defect = next(s for s in d.test if s.defect_type == "broken_large")
    img = read_image(defect.path)
    assert img.shape == (900, 900, 3)
    mask = load_mask(defect, img.shape[:2])
    assert mask.dtype == bool and 0 < mask.mean() < 0.5
    assert not load_mask(d.test[-1] if d.test[-1].label == 0 else d.train[0], (10, 10)).any()
    assert "bottle" in list_categories(MVTEC_ROOT)


def test_generated_layout(tiny_mvtec):
    d = load_mvtec(tiny_mvtec, "widget")
    assert d.counts() == {"train/good": 6, "test/good": 2, "test/scratch": 2}
    assert [s.label for s in d.test] == [0, 0, 1, 1]
    assert load_mask(d.test[2], (40, 48)).sum() == 5 * 15
    assert load_mask(d.test[2], (20, 24)).sum() > 0  # resized to the asked shape
    assert list_categories(tiny_mvtec) == ["widget"]


def test_bad_mvtec_inputs_are_named(tiny_mvtec, tmp_path):
    with pytest.raises(LowdataError, match="data folder not found: .*nowhere"):
        load_mvtec(tmp_path / "nowhere", "widget")
    with pytest.raises(LowdataError, match="unknown category 'gadget'.*widget"):
        load_mvtec(tiny_mvtec, "gadget")
    empty = tiny_mvtec / "empty" / "train" / "good"
    empty.mkdir(parents=True)
    with pytest.raises(LowdataError, match="no training images in .*empty"):
        load_mvtec(tiny_mvtec, "empty")
    notest = tiny_mvtec / "notest"
    write_png(notest / "train" / "good" / "0.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(LowdataError, match="missing .*notest.*test"):
        load_mvtec(tiny_mvtec, "notest")
    with pytest.raises(LowdataError, match="needs its root"):
        load_category("mvtec", "widget")
    with pytest.raises(LowdataError, match="unknown data source"):
        load_category("imagenet", "cat")


def test_missing_mask_warns(tiny_mvtec):
    (tiny_mvtec / "widget" / "ground_truth" / "scratch" / "001_mask.png").unlink()
    with pytest.warns(UserWarning, match="1 defect image.*no mask"):
        d = load_mvtec(tiny_mvtec, "widget")
    assert d.test[3].mask_path is None


def test_elpv_documented_split():
    mono, poly = load_elpv("mono"), load_elpv("poly")
    assert mono.counts() == {"train/good": 441, "test/defect_p100": 313, "test/good": 147, "test/defect_p67": 56}
    assert len(poly.train) == 690 and (poly.test_labels == 0).sum() == 230 and poly.test_labels.sum() == 452
    assert mono.notes["excluded_uncertain"] == 117
    # deterministic, disjoint, and every 4th normal cell is a test cell
    again = load_elpv("mono")
    assert [s.path for s in again.train] == [s.path for s in mono.train]
    assert not {s.path for s in mono.train} & {s.path for s in mono.test}
    img = read_image(mono.train[0].path)
    assert img.shape == (300, 300, 3) and (img[..., 0] == img[..., 2]).all()


def test_elpv_options():
    as_normal = load_elpv("mono", uncertain="normal")
    assert len(as_normal.train) + (as_normal.test_labels == 0).sum() == 588 + 117
    as_anomalous = load_elpv("mono", uncertain="anomalous")
    assert as_anomalous.test_labels.sum() == 313 + 56 + 117
    strict = load_elpv("mono", anomalous_from=1.0)
    assert strict.test_labels.sum() == 313 and strict.notes["excluded_uncertain"] == 117 + 56
    half = load_elpv("mono", test_every=2)
    assert len(half.train) == 294
    for kwargs, match in [(dict(category="amorphous"), "unknown ELPV category 'amorphous'"),
                          (dict(category="mono", uncertain="maybe"), "'maybe'"),
                          (dict(category="mono", test_every=1), "test_every")]:
        with pytest.raises(LowdataError, match=match):
            load_elpv(**kwargs)
