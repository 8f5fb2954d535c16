"""DINOv2 ViT-S/14 through keras-hub: the architecture with random weights here (its weights come from Kaggle on a
machine with internet); levels, preprocessing, cache keys, the bad inputs, and a study end to end."""
import builtins
import os

import numpy as np
import pytest

from conftest import MVTEC_ROOT, requires_mvtec
from lowdata.core.errors import LowdataError
from lowdata.features.backbones import load_backbone

keras_hub = pytest.importorskip("keras_hub", reason="the foundation extra (pip install -e .[foundation])")


@pytest.fixture(scope="module")
def vit56():
    return load_backbone("dinov2-vits14", 56, weights=None, seed=0)


def test_levels_are_the_patch_tokens_of_three_blocks_on_one_grid(vit56):
    assert vit56.levels == ("block4", "block8", "block12") and vit56.runtime == "tensorflow"
    assert vit56.level_shapes == ((4, 4, 384),) * 3  # 56 / 14 = 4 patches a side, 384 channels
    assert vit56.key == "dinov2-vits14-56px-random-seed0"  # no -onnxruntime: TensorFlow runs it
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 56, 56, 3)).astype(np.float32)
    a, b = vit56.forward(x), vit56.forward(x[::-1])
    assert [m.shape for m in a] == [(2, 4, 4, 384)] * 3 and all(m.dtype == np.float32 for m in a)
    np.testing.assert_array_equal(a[2][0], b[2][1])  # an image's features do not depend on its batch
    assert not np.allclose(a[2][0], a[2][1])


def test_preprocessing_is_dinov2s_normalisation_inside_the_model(vit56):
    """The same architecture and seed, fed by hand with (x / 255 - mean) / std: the same last-block patch tokens."""
    import keras

    from lowdata.features import dinov2

    keras.utils.set_random_seed(0)
    bare = keras_hub.models.DINOV2Backbone(**dinov2.CONFIG, image_shape=(56, 56, 3), apply_layernorm=True)
    x = np.random.default_rng(1).integers(0, 256, (1, 56, 56, 3)).astype(np.float32)
    normed = (x / 255.0 - np.array(dinov2.MEAN, np.float32)) / np.array(dinov2.STD, np.float32)
    tokens = np.asarray(bare({"images": normed}))[:, 1:, :].reshape(1, 4, 4, 384)  # the class token dropped
    np.testing.assert_allclose(vit56.forward(x)[2], tokens, rtol=1e-4, atol=1e-4)
    # every level through the final layer norm: each patch token has mean 0 and unit spread (before the norm's scale,
    # 1 and shift, 0, with random weights)
    for level in vit56.forward(x):
        np.testing.assert_allclose(level.mean(axis=-1), 0, atol=1e-4)
        np.testing.assert_allclose(level.std(axis=-1), 1, atol=1e-2)


def test_bad_inputs_are_one_line(monkeypatch, tmp_path):
    with pytest.raises(LowdataError, match=r"multiple of its patch size 14 \(e\.g\. 378 or 392, 224, 448\), got 380"):
        load_backbone("dinov2-vits14", 380, weights=None)
    monkeypatch.delenv("LOWDATA_DINOV2_WEIGHTS", raising=False)
    monkeypatch.setenv("LOWDATA_OFFLINE", "1")
    with pytest.raises(LowdataError, match=r"LOWDATA_OFFLINE is set .*kaggle\.com/models/keras/dinov2.*"
                                           r"LOWDATA_DINOV2_WEIGHTS=FOLDER"):
        load_backbone("dinov2-vits14", 56)
    monkeypatch.setenv("LOWDATA_DINOV2_WEIGHTS", str(tmp_path))
    with pytest.raises(LowdataError, match="no model.weights.h5 in it"):
        load_backbone("dinov2-vits14", 56)
    (tmp_path / "model.weights.h5").write_bytes(b"not the weights")
    monkeypatch.setenv("LOWDATA_DINOV2_SHA256", "0" * 64)
    with pytest.raises(LowdataError, match=r"model.weights.h5: SHA-256 [0-9a-f]{64}, not the 0{64}"):
        load_backbone("dinov2-vits14", 56)
    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name == "keras_hub":
            raise ImportError("no keras_hub")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(LowdataError, match=r"needs keras-hub, an optional extra: pip install -e \.\[foundation\]"):
        load_backbone("dinov2-vits14", 56, weights=None)


def test_a_study_runs_end_to_end_on_its_features(vit56, tiny_mvtec, tmp_path):
    from lowdata.data.sources import load_category
    from lowdata.experiments.design import StudyConfig
    from lowdata.experiments.study import run_study
    from lowdata.features.encode import cache_for

    data = load_category("mvtec", "widget", root=tiny_mvtec)
    cache = cache_for(vit56, tmp_path / "cache")
    assert cache.dir.name == vit56.key
    df = run_study(data, vit56, cache, StudyConfig(methods=["knn", "padim", "patchcore"], sizes=[3], reps=1,
                                                   pixel_size=32), tmp_path / "r.csv", progress=False)
    assert len(df) == 3 and np.isfinite(df["auroc"]).all() and set(df["backbone"]) == {vit56.key}
    assert np.isfinite(df.set_index("method").loc["padim", "pixel_auroc"])


@requires_mvtec
@pytest.mark.skipif(not os.environ.get("LOWDATA_DINOV2_WEIGHTS"),
                    reason="DINOv2's weights come from Kaggle (keras-hub preset dinov2_small): not on this machine; "
                           "set LOWDATA_DINOV2_WEIGHTS to the preset folder to run this")
def test_real_weights_tell_bottles_defects_apart(tmp_path):  # pragma: no cover - needs the weights
    """AnomalyDINO's premise on the real bottle: its patch tokens, nearest neighbours from 10 good images."""
    from lowdata.data.sources import load_category
    from lowdata.experiments.design import StudyConfig
    from lowdata.experiments.study import run_study
    from lowdata.features.encode import cache_for

    vit = load_backbone("dinov2-vits14", 224)
    assert vit.weights_digest != "random-seed0" and vit.level_shapes == ((16, 16, 384),) * 3
    data = load_category("mvtec", "bottle", root=MVTEC_ROOT)
    df = run_study(data, vit, cache_for(vit, tmp_path / "cache"), StudyConfig(methods=["patchcore"], sizes=[10],
                                                                                reps=1), tmp_path / "r.csv", progress=False)
    assert df["auroc"].iloc[0] > 0.95
