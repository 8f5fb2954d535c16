"""The practitioner workflow: thresholds from normal images, saved models, scoring, bad input."""

import json
import math
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from lowdata import LowdataError, __version__
from lowdata.detectors.inputs import MapRows, stack_maps
from lowdata.detectors.registry import detector_from_state, make_detector
from lowdata.features.embeddings import Embeddings
from lowdata.inspection.model import MIN_IMAGES, fit_model, load_model
from lowdata.experiments.thresholds import evaluate_thresholds
from lowdata.inspection.threshold import conformal_rank, lognormal_bound, set_threshold, threshold_from_scores

from conftest import MVTEC_ROOT, requires_mvtec, write_png


# ------------------------------------------------------------------------------------- threshold rules
def test_lognormal_bound_is_the_student_prediction_bound():
    s = np.array([3.0, 4.0, 5.0, 4.5, 3.5, 6.0, 4.2, 3.8, 5.5, 4.1])
    logs = np.log(s)
    want = math.exp(logs.mean() + stats.t.ppf(0.95, 9) * logs.std(ddof=1) * math.sqrt(1 + 1 / 10))
    assert lognormal_bound(s, 0.05) == pytest.approx(want, rel=1e-12)
    with pytest.raises(LowdataError, match="positive"):
        lognormal_bound([0.0, 1.0, 2.0], 0.05)


def test_lognormal_bound_covers_exactly_for_lognormal_scores():
    # the prediction bound is exact for log-normal scores: over many draws, 5 % of new scores exceed it
    rng = np.random.default_rng(0)
    draws = rng.lognormal(mean=2.0, sigma=0.7, size=(4000, 11))
    exceed = [d[10] > lognormal_bound(d[:10], 0.05) for d in draws]
    assert np.mean(exceed) == pytest.approx(0.05, abs=0.01)


def test_conformal_rank_and_its_guarantee():
    s = np.arange(1.0, 20.0)[::-1]  # 19 scores
    v, note = conformal_rank(s, 0.1)  # k = ceil(20 * 0.9) = 18
    assert v == 18.0 and note == ""
    v, note = conformal_rank(np.arange(10.0), 0.05)  # k = 11 > 10: the largest, with a note
    assert v == 9.0 and "1/11 = 9.1%" in note
    # exchangeable scores: P(new > threshold) = (n + 1 - k) / (n + 1) = 2/20 exactly
    rng = np.random.default_rng(1)
    draws = rng.exponential(size=(20000, 20))
    exceed = [d[19] > conformal_rank(d[:19], 0.1)[0] for d in draws]
    assert np.mean(exceed) == pytest.approx(0.1, abs=0.006)


def test_set_threshold_scores_each_image_out_of_fold():
    seen = []

    def fit_score(train, score):
        assert not set(train) & set(score)  # nobody judges itself
        seen.extend(score)
        return np.asarray(score, float) + 1.0

    t = set_threshold(fit_score, 7, "conformal", 0.3)
    assert sorted(seen) == list(range(7)) and t.folds == 7  # leave-one-out up to 10 images
    assert t.oof_scores == [float(i + 1) for i in range(7)] and t.value == 6.0  # k = ceil(8 * 0.7) = 6
    assert set_threshold(fit_score, 30, "conformal", 0.3).folds == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "median"}, "unknown threshold rule 'median'"),
    ({"fpr": 1.5}, "between 0 and 1"),
    ({"fpr": 0}, "between 0 and 1"),
])
def test_bad_threshold_settings(kwargs, match):
    with pytest.raises(LowdataError, match=match):
        threshold_from_scores([1.0, 2.0, 3.0], **kwargs)


def test_chi2_rule_is_the_gaussian_tail():
    t = threshold_from_scores(None, "chi2", 0.01, dims=[80, 192])
    assert t.value == pytest.approx(math.sqrt(stats.chi2.ppf(0.99, 80)) + math.sqrt(stats.chi2.ppf(0.99, 192)))


# ------------------------------------------------------------------------------------ detector state
@pytest.mark.parametrize("method", ["knn", "maha-emp", "maha-lw"])
@pytest.mark.parametrize("n", [8, 300])  # Woodbury and full routes
def test_pooled_detector_state_scores_to_the_last_bit(method, n):
    rng = np.random.default_rng(n)
    train = [rng.normal(size=(n, 40)), rng.normal(size=(n, 90)) + 100.0]
    test = [rng.normal(size=(9, 40)), rng.normal(size=(9, 90)) + 100.0]
    det = make_detector(method).fit(train)
    params, arrays = det.get_state()
    json.dumps(params)  # parameters are plain JSON
    again = detector_from_state(method, params, arrays)
    assert np.array_equal(det.anomaly_score(test), again.anomaly_score(test))


@pytest.mark.parametrize("n", [6, 70])
def test_padim_state_scores_to_the_last_bit(n):
    rng = np.random.default_rng(n)
    train = rng.normal(size=(n, 4, 5, 30)).astype(np.float32)
    train[:, 0, 0] = 2.0  # a constant location: the singular branch is saved too
    test = rng.normal(size=(4, 4, 5, 30)).astype(np.float32)
    det = make_detector("padim").fit(train)
    params, arrays = det.get_state()
    again = detector_from_state("padim", params, arrays)
    assert np.array_equal(det.anomaly_maps(test), again.anomaly_maps(test))
    arrays["bank.location"] = arrays["bank.location"][:-1]
    with pytest.raises(LowdataError, match="location"):
        detector_from_state("padim", params, arrays)


# --------------------------------------------------------------------------------- fit, save, load, score
@pytest.mark.parametrize("method", ["knn", "maha-lw", "padim", "patchcore"])
def test_fit_save_load_score_real_images(method, good_folder, elpv_images, lite0_small, tmp_path):
    params = {"coreset": 0.25} if method == "patchcore" else {}
    model = fit_model(good_folder, method, backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False,
                      params=params)
    direct = model.score(elpv_images[1], cache_dir=tmp_path / "cache", progress=False)
    path = model.save(tmp_path / "model")
    files = sorted(f.name for f in (tmp_path / "model").iterdir())
    assert files[1] == "model.json" and files[0].startswith("detector-") and len(files) == 2
    meta = json.loads(path.read_text())
    assert meta["lowdata_version"] == __version__ and meta["format"] == "lowdata-model"
    assert meta["backbone"]["name"] == "efficientnet-lite0" and meta["backbone"]["input_size"] == 96
    assert meta["backbone"]["weights_digest"] == lite0_small.weights_digest
    assert meta["training"]["n_images"] == 10 and meta["training"]["image_sizes"] == [[300, 300]]
    assert meta["threshold"]["rule"] == "lognormal" and len(meta["threshold"]["oof_scores"]) == 10
    assert meta["threshold"]["value"] == pytest.approx(lognormal_bound(meta["threshold"]["oof_scores"], 0.05))

    loaded = load_model(tmp_path / "model")
    loaded.attach_backbone(lite0_small)
    again = loaded.score(elpv_images[1], cache_dir=tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(direct, again)
    assert (again["verdict"] == np.where(again["score"] > loaded.threshold, "anomalous", "normal")).all()
    # the same detector fitted by hand on the same features gives the same scores
    from lowdata.features.encode import cache_for, encode

    cache = cache_for(lite0_small, tmp_path / "cache")
    train = encode(lite0_small, sorted(good_folder.iterdir()), cache, progress=False)
    test = encode(lite0_small, elpv_images[1], cache, progress=False)
    maps_in = make_detector(method).consumes == "maps"
    ref = make_detector(method, **params).fit(train.spatial() if maps_in else train).anomaly_score(
        test.spatial() if maps_in else test)
    np.testing.assert_allclose(again["score"], ref, rtol=1e-6)
    if method == "patchcore":
        assert loaded.detector.coreset == 0.25 and len(loaded.detector.bank_) == 10 * 9  # 25 % of 10 x 3 x 3
    if maps_in:
        df, maps = loaded.score(elpv_images[1], cache_dir=tmp_path / "cache", progress=False, return_maps=True)
        written = loaded.write_overlays(df, maps, tmp_path / "heat")
        assert len(written) == len(elpv_images[1])
        with Image.open(written[0]) as im:
            assert im.format == "PNG" and im.size[0] > 300
        if method == "padim":  # PatchCore's score is the largest patch distance reweighted
            np.testing.assert_allclose(maps.reshape(len(maps), -1).max(axis=1), df["score"])


def test_augmented_model_records_its_policy(good_folder, lite0_small, tmp_path):
    model = fit_model(good_folder, "maha-lw", backbone=lite0_small, aug="default", copies=2, seed=3,
                      cache_dir=tmp_path / "cache", progress=False)
    aug = model.meta["augmentation"]
    assert aug["copies"] == 2 and aug["seed"] == 3 and aug["policy"]["name"] == "default"
    assert model.detector.n_train_ == 30  # 10 images and 2 copies each
    same = fit_model(good_folder, "maha-lw", backbone=lite0_small, aug="default", copies=2, seed=3,
                     cache_dir=tmp_path / "cache", progress=False)
    assert same.meta["threshold"] == model.meta["threshold"]  # same seed, same numbers


@pytest.mark.parametrize("method", ["maha-lw", "padim"])
def test_test_time_views_score_the_mean_over_the_image_and_its_copies(method, good_folder, elpv_images, lite0_small,
                                                                     tmp_path):
    from lowdata.detectors.crossfit import folds_of
    from lowdata.features.encode import cache_for, encode, source_key
    from lowdata.features.pool import encode_augmented
    from lowdata.data.augment import policy_for

    cache = tmp_path / "cache"
    model = fit_model(good_folder, method, backbone=lite0_small, aug="default", copies=3, seed=2, test_aug=2,
                      folds=5, cache_dir=cache, progress=False)
    assert model.test_views == 2 and model.meta["augmentation"]["test_views"] == 2
    assert "each image scored with 2 test-time views" in model.describe()
    maps = method == "padim"
    paths = sorted(good_folder.iterdir())
    keys = [source_key(p) for p in paths]
    c = cache_for(lite0_small, cache)
    orig = encode(lite0_small, paths, c, keys=keys, progress=False, maps=maps)
    copies = encode_augmented(lite0_small, paths, keys, c, policy_for("", "default"), 3, 2, False, maps=maps)

    def take(emb, rows):
        e = emb.subset(rows)
        return MapRows(stack_maps(e, 256), np.arange(len(rows))) if maps else e

    # the threshold's out-of-fold scores: each held-out image and its first 2 copies, by a fold fitted without them
    folds = folds_of(10, 5, 2)
    want = np.empty(10)
    for j in range(5):
        tr, held = np.flatnonzero(folds != j), np.flatnonzero(folds == j)
        det = make_detector(method).fit(take(Embeddings.concat([orig] + copies), np.concatenate(
            [tr + k * 10 for k in range(4)])))
        want[held] = np.mean([det.anomaly_score(take(e, held)) for e in [orig] + copies[:2]], axis=0)
    np.testing.assert_allclose(model.meta["threshold"]["oof_scores"], want, rtol=1e-9)
    # a new image: the mean over it and its 2 views (the training copies' policy and seed); heatmaps: the image's own
    new = elpv_images[1][:3]
    df, got_maps = model.score(new, cache_dir=cache, progress=False, return_maps=True)
    nk = [source_key(p) for p in new]
    e0 = encode(lite0_small, new, c, keys=nk, progress=False, maps=maps)
    views = encode_augmented(lite0_small, new, nk, c, policy_for("", "default"), 2, 2, False, maps=maps)
    one = (lambda e: take(e, np.arange(3)))
    np.testing.assert_allclose(df["score"], np.mean([model.detector.anomaly_score(one(e)) for e in [e0] + views], 0),
                               rtol=1e-9)
    if maps:
        np.testing.assert_allclose(got_maps, model.detector.scores_and_maps(one(e0))[1], rtol=1e-9)
    # a training image's views are its own training copies; saved and loaded, the model scores the same
    again = load_model(model.save(tmp_path / "m").parent)
    assert again.test_views == 2
    pd.testing.assert_frame_equal(again.score(new, cache_dir=cache, progress=False), df)


def test_test_time_views_bad_input(good_folder, lite0_small, tmp_path, saved):
    kw = dict(backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
    for bad, match in (({"test_aug": 2}, "--test-aug 2: test-time views are made with the training augmentation's "
                                          "policy; give --aug"),
                       ({"test_aug": 4, "aug": "default", "copies": 3}, "--test-aug 4: at most as many views as "
                                                                        "--copies \\(3\\)"),
                       ({"test_aug": -1, "aug": "default"}, "a number of test-time views of at least 1, got -1"),
                       ({"test_aug": 2, "aug": "default", "rule": "chi2"}, "the chi2 threshold rule needs")):
        with pytest.raises(LowdataError, match=match):
            fit_model(good_folder, "maha-lw", **kw, **bad)
    # a model file asking for more views than the copies its threshold was set with
    meta = json.loads((saved / "model.json").read_text())
    meta["augmentation"] = {"policy": {"name": "default"}, "digest": "x", "copies": 1, "seed": 0, "test_views": 3}
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="asks for 3 test-time views but was fitted with 1 copies"):
        load_model(saved).score(good_folder, progress=False)


def test_fit_command_test_aug_zero(good_folder, tmp_path, capsys):
    from lowdata.cli import main

    for k in ("0", "-2"):
        assert main(["fit", str(good_folder), "--out", str(tmp_path / "m"), "--aug", "default", "--test-aug", k]) == 2
        assert f"--test-aug {k}: give a number of views of at least 1 (leave it out for none)" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------------ bad input
def test_too_few_images_and_missing_folder(tmp_path, elpv_images, lite0_small):
    few = tmp_path / "few"
    few.mkdir()
    for p in elpv_images[0][:MIN_IMAGES - 1]:
        shutil.copy(p, few / p.name)
    with pytest.raises(LowdataError, match=r"few has 4 distinct image\(s\); a model needs at least 5"):
        fit_model(few, backbone=lite0_small, progress=False)
    shutil.copy(elpv_images[0][0], few / "again.png")  # a duplicate does not count twice
    with pytest.warns(UserWarning, match="1 duplicate image"), pytest.raises(LowdataError, match="has 4 distinct"):
        fit_model(few, backbone=lite0_small, progress=False)
    with pytest.raises(LowdataError, match="no such file or folder: .*nowhere"):
        fit_model(tmp_path / "nowhere", backbone=lite0_small, progress=False)
    with pytest.raises(LowdataError, match="unknown method 'svm'"):
        fit_model(few, "svm", backbone=lite0_small, progress=False)
    with pytest.raises(LowdataError, match="chi2 threshold rule needs a Mahalanobis method"):
        fit_model(few, "knn", rule="chi2", backbone=lite0_small, progress=False)


def test_unreadable_image_is_named(good_folder, lite0_small, tmp_path):
    (good_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(LowdataError, match="cannot read image .*broken.png"):
        fit_model(good_folder, backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)


def test_mixed_sizes_are_resized_and_said(good_folder, lite0_small, tmp_path, elpv_images):
    img = np.asarray(Image.open(sorted(good_folder.iterdir())[0]).convert("RGB"))
    write_png(good_folder / "big.png", np.asarray(Image.fromarray(img).resize((450, 400))))
    with pytest.warns(UserWarning) as seen:
        model = fit_model(good_folder, "knn", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
    said = " | ".join(str(w.message) for w in seen)
    assert "2 different sizes: 300x300 (10), 450x400 (1); each is resized to 96x96" in said
    assert "non-square images (450x400 (1)) are stretched to 96x96 px" in said
    assert model.meta["training"]["image_sizes"] == [[300, 300], [450, 400]]
    write_png(tmp_path / "new" / "odd.png", np.asarray(Image.fromarray(img).resize((200, 200))))
    with pytest.warns(UserWarning, match=r"1 image\(s\) have a size the model was not fitted on \(200x200"):
        model.score(tmp_path / "new", cache_dir=tmp_path / "cache", progress=False)


def _edit(path, **changes):
    meta = json.loads((path / "model.json").read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            meta[section][field] = value
        else:
            meta[section] = value
    (path / "model.json").write_text(json.dumps(meta))


def test_model_from_another_version_or_format(saved):
    _edit(saved, lowdata_version="0.0.9")
    with pytest.raises(LowdataError, match=f"written by lowdata '0.0.9'; this is lowdata {__version__}"):
        load_model(saved)
    assert load_model(saved, allow_other_version=True).method == "maha-lw"
    _edit(saved, format_version=2)
    with pytest.raises(LowdataError, match="format version 2; this lowdata .* reads version 1"):
        load_model(saved, allow_other_version=True)


def test_model_from_other_weights_or_backbone(saved, lite0_small):
    _edit(saved, backbone__weights_digest="0" * 64)
    with pytest.raises(LowdataError, match="weights of digest 0000000000000000.*the features would differ"):
        load_model(saved).attach_backbone(lite0_small)
    _edit(saved, backbone__name="efficientnet-lite1")
    with pytest.raises(LowdataError, match="fitted with efficientnet-lite1 at 96 px, not efficientnet-lite0"):
        load_model(saved).attach_backbone(lite0_small)


def test_a_model_records_its_runtime_and_is_scored_on_it(saved, lite0_small):
    """The threshold was set on one runtime's features: a model is scored on that runtime (a model file from before
    ONNX Runtime, without one, on TensorFlow), and another runtime's backbone is refused with one line."""
    meta = json.loads((saved / "model.json").read_text())
    assert meta["backbone"]["runtime"] == lite0_small.runtime == "onnxruntime"
    del meta["backbone"]["runtime"]
    (saved / "model.json").write_text(json.dumps(meta))
    older = load_model(saved)
    assert older.attach_backbone().runtime == "tensorflow"
    with pytest.raises(LowdataError, match="features were computed by tensorflow, this backbone runs on onnxruntime"):
        load_model(saved).attach_backbone(lite0_small)
    _edit(saved, backbone__runtime="tpu")
    with pytest.raises(LowdataError, match="backbone.runtime"):
        load_model(saved)


def test_truncated_or_missing_files(saved):
    npz = next(saved.glob("detector-*.npz"))
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(LowdataError, match=r"detector-.*npz is damaged or truncated: its SHA-256"):
        load_model(saved)
    npz.unlink()
    with pytest.raises(LowdataError, match="arrays file .* is missing"):
        load_model(saved)
    text = (saved / "model.json").read_text()
    (saved / "model.json").write_text(text[: len(text) // 2])
    with pytest.raises(LowdataError, match="model.json is damaged or truncated"):
        load_model(saved)
    (saved / "model.json").unlink()
    with pytest.raises(LowdataError, match="is not a lowdata model: it has no model.json"):
        load_model(saved)
    with pytest.raises(LowdataError, match="model folder not found"):
        load_model(saved / "nope")


def test_saving_is_never_half_done(saved, monkeypatch, good_folder, lite0_small, tmp_path):
    before = load_model(saved).threshold
    model = fit_model(good_folder, "knn", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(LowdataError, match="cannot write the model's arrays into .*model: disk full"):
        model.save(saved)
    monkeypatch.undo()
    assert sorted(f.name for f in saved.iterdir() if not f.name.startswith("detector-")) == ["model.json"]
    assert len(list(saved.glob("detector-*.npz"))) == 1 and not list(saved.glob(".*"))
    assert load_model(saved).threshold == before  # the old model, whole
    model.save(saved)  # replacing works, and leaves one arrays file
    assert load_model(saved).method == "knn" and len(list(saved.glob("detector-*.npz"))) == 1
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("x")
    with pytest.raises(LowdataError, match="not empty and holds no model.json"):
        model.save(other)


# ------------------------------------------------------------------------------------------ commands
def test_fit_and_score_commands(good_folder, elpv_images, tmp_path, capsys, monkeypatch):
    from lowdata.cli import main

    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "m"
    assert main(["fit", str(good_folder), "--method", "padim", "--input-size", "96", "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "fitted padim on 10 images" in text and "detector fit" in text and f"model written: {out}" in text
    tests = tmp_path / "new"
    tests.mkdir()
    for p in elpv_images[1]:
        shutil.copy(p, tests / p.name)
    cached = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 10  # the training images
    assert main(["score", str(out), str(tests), "--out", str(tmp_path / "s.csv"), "--heatmaps",
                 str(tmp_path / "heat"), "--no-progress"]) == 0
    assert sorted((tmp_path / "cache").rglob("*.npz")) == cached  # new parts' maps are not kept
    text = capsys.readouterr().out
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(df) == 8 and set(df["verdict"]) <= {"normal", "anomalous"}
    assert f"{(df['verdict'] == 'anomalous').sum()} of 8 images anomalous" in text
    assert len(list((tmp_path / "heat").glob("*.png"))) == 8
    assert main(["score", str(out), str(tests), "--format", "json", "--no-heatmaps", "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "padim" and [r["score"] for r in doc["images"]] == pytest.approx(df["score"].tolist())
    assert main(["score", str(tmp_path / "nope"), str(tests)]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["fit", str(tests), "--method", "knn", "--out", str(tmp_path / "k"), "--input-size", "96",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["score", str(tmp_path / "k"), str(tests), "--heatmaps", str(tmp_path / "h2")]) == 2
    assert "heatmaps need a model whose detector gives maps" in capsys.readouterr().err
    assert main(["fit", str(good_folder), "--method", "patchcore", "--coreset", "0.5", "--input-size", "96", "--out",
                 str(tmp_path / "pc"), "--no-progress"]) == 0
    assert "fitted patchcore on 10 images" in capsys.readouterr().out
    assert main(["score", str(tmp_path / "pc"), str(tests), "--heatmaps", str(tmp_path / "h3"), "--no-progress"]) == 0
    assert len(list((tmp_path / "h3").glob("*.png"))) == 8
    capsys.readouterr()
    for bad, what in [(["--method", "patchcore", "--coreset", "1.5"], "patchcore: coreset must be a number in (0, 1], "
                                                                      "got 1.5"),
                      (["--method", "patchcore", "--param", "coreset=0"], "patchcore: coreset must be a number in "
                                                                          "(0, 1], got 0"),
                      (["--method", "knn", "--coreset", "0.5"], "--param coreset: no such parameter of knn; their "
                                                                "parameters: knn: k (a whole number in [1, 1,000,000], default 1)"),
                      (["--method", "patchcore", "--param", "k=2"], "--param k: no such parameter of patchcore; "
                                                                    "their parameters: patchcore: coreset (a number"),
                      (["--method", "knn", "--param", "k"], "--param 'k': give NAME=VALUE")]:
        assert main(["fit", str(good_folder), *bad, "--input-size", "96", "--out", str(tmp_path / "bad"),
                     "--no-progress"]) == 2
        assert what in capsys.readouterr().err and not (tmp_path / "bad").exists()


# ------------------------------------------------------------------------------- measured false positives
@requires_mvtec
def test_threshold_false_positive_rate_on_held_out_bottles(lite0_small, tmp_path):
    from lowdata.features.encode import cache_for
    from lowdata.data.mvtec import load_mvtec

    data = load_mvtec(MVTEC_ROOT, "bottle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = evaluate_thresholds(data, lite0_small, cache_for(lite0_small, tmp_path / "cache"), threshold_from_scores,
                                 methods=("maha-lw",), rules=("lognormal", "conformal"), n=10, reps=2,
                                 progress=False)
    assert len(df) == 4 and (df["n_heldout_good"] == 209 - 10 + 20).all() and (df["n_defects"] == 63).all()
    # measured, not assumed: rates are fractions of the held-out goods, below 1/2 for a working rule
    assert ((df["fpr_heldout"] * df["n_heldout_good"]).round(6) % 1 == 0).all()
    assert (df["fpr_heldout"] < 0.5).all() and (df["tpr_defects"] > 0.5).all()
