"""Every folder source on a miniature of its genuine layout (the real data sets' folder and file names and
quirks, tiny images), detection, the categories command, and the errors of bad inputs."""
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import MVTEC_ROOT, requires_mvtec
from lowdata.cli import main
from lowdata.core.errors import LowdataError
from lowdata.data.dataset import load_mask, load_masks
from lowdata.data.sources import SOURCES, available_categories, detect_sources, detected, load_category
from miniatures import build_btad, build_loco, build_visa_original, img, mask

def test_mpdd_is_the_mvtec_layout_under_its_names(tmp_path):
    c = tmp_path / "mpdd" / "connector"
    for i in range(2):
        img(c / "train" / "good" / f"{i:03d}.png")
    img(c / "test" / "good" / "000.png")
    img(c / "test" / "parts_mismatch" / "000.png")
    mask(c / "ground_truth" / "parts_mismatch" / "000_mask.png", slice(0, 4), slice(0, 4))
    d = load_category("mpdd", "connector", tmp_path / "mpdd")
    assert d.source == "mpdd" and d.counts() == {"train/good": 2, "test/good": 1, "test/parts_mismatch": 1}
    assert load_mask(d.test[1], (8, 8)).sum() == 16
    assert [(c, s) for c, s, _ in detect_sources(tmp_path / "mpdd")] == [("connector", "mpdd")]
    # the same folder under another name is MVTec AD's layout
    c.rename(tmp_path / "mpdd" / "widget")
    assert [(c, s) for c, s, _ in detect_sources(tmp_path / "mpdd")] == [("widget", "mvtec")]


@pytest.mark.parametrize("suffix", [".bmp", ".png"])
def test_btad(tmp_path, suffix):
    build_btad(tmp_path / "btad", "01" if suffix == ".bmp" else "02", suffix)
    cat = "01" if suffix == ".bmp" else "02"
    d = load_category("btad", cat, tmp_path / "btad")
    assert d.counts() == {"train/good": 3, "test/good": 1, "test/ko": 2}
    assert [s.label for s in d.test] == [0, 1, 1]
    assert all(s.path.suffix == suffix for s in d.train + d.test)
    assert [s.mask_path.name if s.mask_path else None for s in d.test] == [None, "0000.png", "0001.png"]
    assert load_mask(d.test[1], (8, 8)).sum() == 16
    assert detect_sources(tmp_path / "btad") == [(cat, "btad", "BTAD layout")]


def test_mvtec_ad_2_reads_test_public_only(tmp_path):
    c = tmp_path / "ad2" / "can"
    for i in range(2):
        img(c / "train" / "good" / f"{i:03d}_regular.png")
    img(c / "validation" / "good" / "000_regular.png")
    img(c / "test_public" / "good" / "000_regular.png")
    img(c / "test_public" / "bad" / "000_regular.png")
    img(c / "test_public" / "bad" / "001_overexposed.png")
    mask(c / "test_public" / "ground_truth" / "bad" / "000_regular_mask.png", slice(0, 1), slice(0, 3))
    img(c / "test_private" / "000_regular.png")
    with pytest.warns(UserWarning, match="1 defect image.*no mask.*001_overexposed_mask.png"):
        d = load_category("mvtec2", "can", tmp_path / "ad2")
    assert d.counts() == {"train/good": 2, "test/bad": 2, "test/good": 1}
    assert all(s.path.parent.name == "good" and s.path.parent.parent.name == "train" for s in d.train)
    assert [s.mask_path is not None for s in d.test] == [False, True, False]  # good first, then bad
    assert load_mask(d.test[1], (8, 8)).sum() == 3
    assert detect_sources(tmp_path / "ad2") == [("can", "mvtec2", "MVTec AD 2 layout")]


def test_mvtec_3d_ad_rgb_only_and_xyz_ignored_silently(tmp_path):
    c = tmp_path / "3d" / "bagel"
    for i in range(2):
        img(c / "train" / "good" / "rgb" / f"{i:03d}.png")
        (c / "train" / "good" / "xyz").mkdir(exist_ok=True)
        (c / "train" / "good" / "xyz" / f"{i:03d}.tiff").write_bytes(b"II*\0not a point cloud")
    for kind in ("good", "crack"):
        img(c / "test" / kind / "rgb" / "000.png")
        (c / "test" / kind / "xyz").mkdir()
        (c / "test" / kind / "xyz" / "000.tiff").write_bytes(b"II*\0")
        mask(c / "test" / kind / "gt" / "000.png", slice(2, 4), slice(2, 4) if kind == "crack" else slice(0, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the xyz folders and their .tiff files are not warned about
        d = load_category("mvtec3d", "bagel", tmp_path / "3d")
    assert d.counts() == {"train/good": 2, "test/crack": 1, "test/good": 1}
    assert all(s.path.parent.name == "rgb" and s.path.suffix == ".png" for s in d.train + d.test)
    crack = d.test[0]
    assert crack.label == 1 and crack.mask_path == c / "test" / "crack" / "gt" / "000.png"
    assert load_mask(crack, (8, 8)).sum() == 4 and d.test[1].mask_path is None
    assert detect_sources(tmp_path / "3d") == [("bagel", "mvtec3d", "MVTec 3D-AD layout")]


def test_loco_merges_an_images_masks_and_records_its_kind(tmp_path):
    c = build_loco(tmp_path / "loco")
    d = load_category("loco", "breakfast_box", tmp_path / "loco")
    assert d.counts() == {"train/good": 3, "test/good": 1, "test/logical_anomalies": 1,
                          "test/structural_anomalies": 1}
    logical, structural = d.test[1], d.test[2]
    assert (logical.defect_type, structural.defect_type) == ("logical_anomalies", "structural_anomalies")
    assert logical.mask_path == (c / "ground_truth" / "logical_anomalies" / "000" / "000.png",
                                 c / "ground_truth" / "logical_anomalies" / "000" / "001.png")
    merged = load_mask(logical, (8, 8))
    assert merged.sum() == 16 + 16 - 4 and merged[0].all() and merged[:, 1].all() and not merged[3, 3]
    masks = load_masks(d.test, (8, 8))
    assert masks.shape == (3, 8, 8) and [m.sum() for m in masks] == [0, 28, 2]
    assert detect_sources(tmp_path / "loco") == [("breakfast_box", "loco", "MVTec LOCO AD layout")]


def test_visa_converted_layout(tmp_path):
    c = tmp_path / "visa_pytorch" / "candle"
    for i in range(3):
        img(c / "train" / "good" / f"{i:04d}.JPG")
    img(c / "test" / "good" / "0003.JPG")
    img(c / "test" / "bad" / "000.JPG")
    mask(c / "ground_truth" / "bad" / "000.png", slice(0, 2), slice(0, 2))
    d = load_category("visa", "candle", tmp_path / "visa_pytorch")
    assert d.counts() == {"train/good": 3, "test/bad": 1, "test/good": 1}
    assert d.test[0].mask_path == c / "ground_truth" / "bad" / "000.png" and load_mask(d.test[0], (8, 8)).sum() == 4
    assert detect_sources(tmp_path / "visa_pytorch") == [("candle", "visa", "VisA layout")]


def test_visa_original_layout_through_its_split_file(tmp_path):
    root = build_visa_original(tmp_path / "VisA")
    d = load_category("visa", "candle", root)
    assert d.counts() == {"train/good": 3, "test/good": 1, "test/bad": 2}
    assert [s.label for s in d.test] == [0, 1, 1]
    assert d.test[1].path == root / "candle" / "Data" / "Images" / "Anomaly" / "000.JPG"
    assert load_mask(d.test[2], (8, 8)).sum() == 4
    # split_csv is part of the layout, not a category
    assert detect_sources(root) == [("candle", "visa", "VisA layout")]
    with pytest.raises(LowdataError, match=r"unknown category 'pcb1'.*1cls.csv \(objects: candle\)"):
        load_category("visa", "pcb1", root)


def test_own_folder_every_fourth_good_image_is_a_test_image(tmp_path):
    parts = tmp_path / "bracket"
    for i in range(9):
        img(parts / "good" / f"g{i:02d}.png")
    img(parts / "bad" / "b0.png")
    img(parts / "bad" / "b1.png")
    mask(parts / "masks" / "b0.png", slice(0, 3), slice(0, 3))
    with pytest.warns(UserWarning, match="1 defect image.*no mask.*b1.png"):
        d = load_category("folder", "bracket", parts)
    assert [s.path.name for s in d.test] == ["g03.png", "g07.png", "b0.png", "b1.png"]
    assert len(d.train) == 7 and [s.label for s in d.test] == [0, 0, 1, 1]
    assert load_mask(d.test[2], (8, 8)).sum() == 9 and d.test[3].mask_path is None
    # the root is the category itself, or the folder above it
    assert detect_sources(parts) == [("bracket", "folder", "own parts layout (the root itself)")]
    with pytest.warns(UserWarning):
        again = load_category("folder", "bracket", tmp_path)
    assert [s.path for s in again.test] == [s.path for s in d.test]


def test_detection_names_the_layout_or_what_is_missing(tmp_path, tiny_mvtec):
    root = tiny_mvtec
    build_btad(root)
    build_loco(root)
    (root / "notes").mkdir()
    img(root / "half" / "train" / "good" / "000.png")
    (root / ".cache").mkdir()
    found = detect_sources(root)
    assert [(c, s) for c, s, _ in found] == [("01", "btad"), ("breakfast_box", "loco"), ("half", None),
                                             ("notes", None), ("widget", "mvtec")]
    why = dict((c, r) for c, _, r in found)
    assert why["half"] == "not MVTec AD: missing test/"
    assert why["notes"].startswith("matches no layout: MVTec AD missing train/good/;") and "BTAD missing train/ok/" in why["notes"]
    assert available_categories(root, elpv=False) == [("btad", "01"), ("loco", "breakfast_box"), ("mvtec", "widget")]
    # forcing a source: only its layout is tried
    assert [(c, s) for c, s, _ in detect_sources(root, "btad") if s] == [("01", "btad")]
    assert dict((c, r) for c, _, r in detect_sources(root, "btad"))["widget"] == "not BTAD: missing train/ok/"


@requires_mvtec
def test_real_mvtec_ad_is_detected_as_mvtec():
    assert ("bottle", "mvtec", "MVTec AD layout") in detect_sources(MVTEC_ROOT)
    assert ("mvtec", "bottle") in detected(MVTEC_ROOT)


def test_bad_inputs_are_one_error_line_naming_the_folder_or_file(tmp_path):
    def one_line(exc):
        assert "\n" not in str(exc.value)
        return str(exc.value)

    with pytest.raises(LowdataError, match="unknown data source 'imagenet'; known: mvtec, elpv, mpdd, btad") as e:
        load_category("imagenet", "cat", tmp_path)
    one_line(e)
    with pytest.raises(LowdataError, match="unknown data source 'imagenet'"):
        detect_sources(tmp_path, "imagenet")
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(LowdataError, match=r"no category in a known layout under .*empty \(stuff: matches no layout") as e:
        detected(tmp_path / "empty")
    one_line(e)
    c = tmp_path / "btad" / "03"
    img(c / "train" / "ok" / "0000.bmp")
    (c / "test" / "ok").mkdir(parents=True)
    with pytest.raises(LowdataError, match=r"no test images in .*btad/03/test$") as e:
        load_category("btad", "03", tmp_path / "btad")
    one_line(e)
    visa = build_visa_original(tmp_path / "VisA")
    (visa / "candle" / "Data" / "Images" / "Anomaly" / "001.JPG").unlink()
    with pytest.raises(LowdataError, match=r"1cls.csv line 7: image not found: .*candle/Data/Images/Anomaly/001.JPG") as e:
        load_category("visa", "candle", visa)
    one_line(e)
    (visa / "candle" / "Data" / "Masks" / "Anomaly" / "000.png").unlink()
    img(visa / "candle" / "Data" / "Images" / "Anomaly" / "001.JPG")
    with pytest.raises(LowdataError, match=r"line 6: mask not found: .*Masks/Anomaly/000.png"):
        load_category("visa", "candle", visa)
    with pytest.raises(LowdataError, match="BTAD layout needs its root folder"):
        load_category("btad", "01")


def test_a_mask_of_another_size_is_stretched_with_a_warning_naming_it(tmp_path):
    c = build_btad(tmp_path / "btad")
    mask(c / "ground_truth" / "ko" / "0001.png", slice(0, 2), slice(0, 4), shape=(4, 4))
    d = load_category("btad", "01", tmp_path / "btad")
    with pytest.warns(UserWarning, match=r"1 of the 2 masks differ in size.*ko/0001.png is 4x4, its image .*0001.bmp 8x8"):
        masks = load_masks(d.test, (8, 8))
    assert masks[2].sum() == 32  # the top half, stretched


def test_categories_command(tmp_path, tiny_mvtec, capsys):
    build_loco(tiny_mvtec)
    (tiny_mvtec / "notes").mkdir()
    assert main(["categories", "--data", str(tiny_mvtec)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["widget"] == ["mvtec", "train/good", "6", "test/good", "2", "test/scratch", "2"]
    assert rows["breakfast_box"][:3] == ["loco", "train/good", "3"] and "test/logical_anomalies" in rows["breakfast_box"]
    assert rows["notes"][:4] == ["-", "matches", "no", "layout:"]
    assert main(["categories", "--data", str(tiny_mvtec), "--source", "loco"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["breakfast_box"][0] == "loco" and rows["widget"][0] == "-" and "missing test/logical_anomalies/" in " ".join(rows["widget"])
    for args, message in [(["--source", "imagenet"], "unknown data source 'imagenet'"),
                          (["--source", "btad"], "no category in the BTAD layout under"),
                          (["--source", "elpv"], "not read from a folder")]:
        assert main(["categories", "--data", str(tiny_mvtec), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lowdata: error: ") and message in err and err.count("\n") == 1, err


def test_every_folder_source_is_registered_with_a_detector():
    assert {n for n, s in SOURCES.items() if s.detect} == {"mvtec", "mpdd", "btad", "mvtec2", "mvtec3d", "loco",
                                                          "visa", "folder"}


def test_a_study_runs_on_a_new_source_with_merged_masks(tmp_path, capsys):
    import pandas as pd

    c = tmp_path / "loco" / "juice_bottle"
    for i in range(6):
        img(c / "train" / "good" / f"{i:03d}.png", (40, 48))
    for kind in ("good", "logical_anomalies", "structural_anomalies"):
        for i in range(2):
            img(c / "test" / kind / f"{i:03d}.png", (40, 48))
            if kind != "good":
                for j in range(2):
                    mask(c / "ground_truth" / kind / f"{i:03d}" / f"{j:03d}.png", slice(5 * j, 5 * j + 5),
                         slice(5, 20), (40, 48))
    out = tmp_path / "res.csv"
    # no --source: the layout is recognised from the folder
    assert main(["study", "--data", str(tmp_path / "loco"), "--category", "juice_bottle",
                 "--input-size", "96", "--sizes", "max", "--reps", "1", "--aug", "0", "--methods", "knn,padim",
                 "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-progress"]) == 0
    assert "note: pixel AUROC and AUPRO on each image's masks merged into one (not MVTec LOCO's own sPRO)" in \
        capsys.readouterr().out
    df = pd.read_csv(out)
    assert set(df.source) == {"loco"} and set(df.n_test) == {6} and set(df.method) == {"knn", "padim"}
    assert np.isfinite(df.set_index("method").loc["padim", "pixel_auroc"])
    # logical and structural apart: each against the normal images, kept per fit
    import json

    by_type = json.loads(df.set_index("method").loc["knn", "auroc_by_type"])
    assert sorted(by_type) == ["logical_anomalies", "structural_anomalies"]
    assert all(0 <= v <= 1 for v in by_type.values())


def test_a_commands_source_is_the_folders_layout_unless_given(tmp_path, tiny_mvtec):
    from lowdata.data.sources import source_of

    build_btad(tmp_path / "btad")
    build_loco(tmp_path / "loco")
    assert source_of(tmp_path / "btad", "01") == "btad" and source_of(tmp_path / "loco", "breakfast_box") == "loco"
    assert source_of(tiny_mvtec, "widget") == "mvtec"
    parts = tmp_path / "bracket"
    img(parts / "good" / "g0.png")
    img(parts / "bad" / "b0.png")
    assert source_of(parts, "bracket") == "folder" and source_of(tmp_path, "bracket") == "folder"
    assert source_of(tmp_path / "btad", "nothing-here") == "mvtec"  # whose loader then names the missing folder


def test_the_books_category_page_reads_any_layout(tmp_path):
    """A category page (and the chapters: they derive the source the same way) runs on a BTAD category found
    under --data, its results table named after its source."""
    from lowdata.book.category import category_params, category_overview, run_category

    build_btad(tmp_path / "data")
    p = category_params(data_root=str(tmp_path / "data"), category="01", backbone="efficientnet-lite0",
                        input_size=96, methods="knn", seed=0,
                        sizes="max", reps=1, aug="0", sweep="", augment_only="", out_dir=str(tmp_path / "res"),
                        cache_dir=str(tmp_path / "cache"))
    assert p.source == "btad" and p.out.name.startswith("study-btad-01-")
    rows = run_category(p, progress=False)
    assert set(rows["source"]) == {"btad"} and set(rows["n_test"]) == {3} and p.out.is_file()
    assert "BTAD" in category_overview(p, rows).to_string()


@requires_mvtec
def test_the_same_real_images_in_every_layout_give_the_same_numbers(lite0_small, tmp_path):
    """Real bottle images written in the MVTec AD, MPDD, BTAD, MVTec AD 2, MVTec 3D-AD and LOCO layouts: each is
    recognised, reads the same images and masks, and a study gives the same image AUROC, pixel AUROC and AUPRO to
    the last bit; VisA's copy (JPEG) is recognised and close."""
    from lowdata.experiments.design import StudyConfig
    from lowdata.experiments.study import run_study
    from lowdata.features.cache import EmbeddingCache
    from miniatures import every_layout

    roots = every_layout(MVTEC_ROOT / "bottle", tmp_path / "layouts")
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    config = StudyConfig(methods=["knn", "padim"], sizes=[4], reps=1, pixel_size=32)
    numbers = {}
    for source, (root, category) in roots.items():
        assert detected(root) == [(source, category)]
        data = load_category(source, category, root=root)
        assert data.counts()["train/good"] == 8 and sum(data.test_labels) == 6 and len(data.test) == 10
        df = run_study(data, lite0_small, cache, config, tmp_path / f"{source}.csv", progress=False)
        numbers[source] = df.set_index("method")[["auroc", "pixel_auroc", "aupro"]]
    for source in ("mpdd", "btad", "mvtec2", "mvtec3d", "loco"):
        pd.testing.assert_frame_equal(numbers[source], numbers["mvtec"])
    np.testing.assert_allclose(numbers["visa"].to_numpy(), numbers["mvtec"].to_numpy(), atol=0.1)
