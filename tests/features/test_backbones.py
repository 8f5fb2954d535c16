"""Backbones: genuine ImageNet weights (a real photo of a cat), feature shapes, clear errors."""
import numpy as np
import pytest
import skimage.data

from lowdata.features import efficientnet_b4 as backbones
from lowdata.features.backbones import load_backbone
from lowdata.features.efficientnet_b4 import B4_WEIGHTS_FILE
from lowdata.core.digests import file_hash
from lowdata.features.efficientnet_lite import build_lite
from lowdata.core.errors import LowdataError
from lowdata.data.images import resize_rgb

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def top5(model, size):
    x = resize_rgb(skimage.data.chelsea(), size).astype(np.float32)[None]
    logits = np.asarray(model.predict_on_batch(x))[0]
    return set(np.argsort(logits)[::-1][:5].tolist())


@pytest.mark.parametrize("variant,size", [("efficientnet-lite0", 224), ("efficientnet-lite0", 301),
                                          ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_lite_weights_are_imagenet_pretrained(variant, size):
    model, digest = build_lite(variant, size, include_top=True)
    assert top5(model, size) & CAT_CLASSES
    assert len(digest) == 64


def test_random_lite_weights_do_not_see_the_cat():
    """The cat test can fail: random weights do not rank cat classes first."""
    model, digest = build_lite("efficientnet-lite0", 224, include_top=True, weights=None)
    x = resize_rgb(skimage.data.chelsea(), 224).astype(np.float32)[None]
    logits = np.asarray(model.predict_on_batch(x))[0]
    assert np.argmax(logits) not in CAT_CLASSES and digest == "random-seed0"


@pytest.mark.parametrize("size,grid", [(380, (24, 12, 12)), (224, (14, 7, 7))])
def test_lite0_stage_shapes(size, grid):
    bb = load_backbone("efficientnet-lite0", size)
    assert bb.level_shapes == ((grid[0],) * 2 + (80,), (grid[1],) * 2 + (192,), (grid[2],) * 2 + (320,))
    out = bb.forward(np.zeros((2, size, size, 3), np.uint8))
    assert [o.shape for o in out] == [(2,) + s for s in bb.level_shapes]
    assert all(o.dtype == np.float32 for o in out)
    assert bb.key.startswith(f"efficientnet-lite0-{size}px-")


def test_b4_architecture_stage_shapes():
    bb = load_backbone("efficientnet-b4", weights=None, runtime="tensorflow")  # the architecture: no ONNX conversion
    assert bb.input_size == 380
    assert bb.level_shapes == ((24, 24, 112), (12, 12, 272), (12, 12, 448))
    taps = [bb.model.get_layer(n).output for n in ("block4f_add", "block6h_add", "block7b_add")]
    assert [id(t) for t in taps] == [id(t) for t in bb.model.outputs]


def _b4_weights_present():
    return (backbones._keras_home() / "models" / B4_WEIGHTS_FILE).is_file()


@pytest.mark.skipif(not _b4_weights_present(), reason="Keras' efficientnetb4_notop.h5 is not in $KERAS_HOME/models "
                    "(no internet here); the B4 ImageNet check runs where it is")
def test_b4_backbone_carries_the_imagenet_weights():
    """Our B4 backbone (the notop weights file, three taps) gives the stage-7 features of Keras' ImageNet
    classifier, which ranks the cat photo among cat classes: the weights are ImageNet's and in the right layers
    (a backbone built without them, or from other layers, differs)."""
    import keras

    full = keras.applications.EfficientNetB4(include_top=True, weights="imagenet")
    assert top5(full, 380) & CAT_CLASSES
    tap = keras.Model(full.input, full.get_layer("block7b_add").output)
    x = resize_rgb(skimage.data.chelsea(), 380)
    theirs = np.asarray(tap.predict_on_batch(x.astype(np.float32)[None]))
    ours = load_backbone("efficientnet-b4").forward(x[None])[2]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * float(np.abs(theirs).max()))


def test_b4_offline_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "_keras_home", lambda: tmp_path)
    monkeypatch.setenv("LOWDATA_OFFLINE", "1")
    monkeypatch.delenv("LOWDATA_B4_WEIGHTS", raising=False)
    with pytest.raises(LowdataError, match="efficientnetb4_notop.h5.*LOWDATA_B4_WEIGHTS"):
        load_backbone("efficientnet-b4")


def test_b4_rejects_a_wrong_weights_file(tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "_keras_home", lambda: tmp_path / "home")
    fake = tmp_path / "efficientnetb4_notop.h5"
    fake.write_bytes(b"not the weights")
    with pytest.raises(LowdataError, match="md5"):
        load_backbone("efficientnet-b4", weights=str(fake))
    with pytest.raises(LowdataError, match="not found"):
        load_backbone("efficientnet-b4", weights=str(tmp_path / "missing.h5"))
    assert not (tmp_path / "home" / "models" / B4_WEIGHTS_FILE).exists()


def test_install_b4_weights_places_a_valid_file_where_keras_looks(tmp_path, monkeypatch):
    src = tmp_path / "w.h5"
    src.write_bytes(b"pretend weights")
    monkeypatch.setattr(backbones, "B4_WEIGHTS_MD5", file_hash(src, "md5"))
    target = backbones.install_b4_weights(src, tmp_path / "home")
    assert target == tmp_path / "home" / "models" / B4_WEIGHTS_FILE
    assert target.read_bytes() == b"pretend weights"
    assert [p.name for p in target.parent.iterdir()] == [B4_WEIGHTS_FILE]  # no temporary file left


@pytest.mark.parametrize("name,size", [("resnet50", None), ("efficientnet-lite9", None), ("efficientnet-lite0", 8)])
def test_bad_backbone_requests(name, size):
    with pytest.raises(LowdataError, match=str(name if size is None else size)):
        load_backbone(name, size)


def test_forward_rejects_wrong_shapes(lite0_small):
    with pytest.raises(LowdataError, match="expects batches"):
        lite0_small.forward(np.zeros((1, 50, 50, 3)))


def test_lite_runs_without_torch():
    import subprocess
    import sys

    code = ("import sys; from lowdata.features.backbones import load_backbone; load_backbone('efficientnet-lite0', 64); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_onnxruntime_is_the_default_and_gives_tensorflows_features_within_float_noise_under_its_own_key(monkeypatch):
    """ONNX Runtime (the default): the same network and weights as TensorFlow's (converted by tf2onnx), features
    within 1e-5 of the largest value per level of TensorFlow's, an image's bits independent of its batch and of a
    second call, and another cache folder (the key says the runtime); LOWDATA_RUNTIME picks TensorFlow."""
    from lowdata.data.elpv import load_elpv
    from lowdata.features.encode import load_for

    monkeypatch.delenv("LOWDATA_RUNTIME", raising=False)
    ort = load_backbone("efficientnet-lite0", input_size=96)
    tf = load_backbone("efficientnet-lite0", input_size=96, runtime="tensorflow")
    assert (ort.runtime, tf.runtime) == ("onnxruntime", "tensorflow")
    assert ort.key == tf.key + "-onnxruntime" and ort.level_shapes == tf.level_shapes
    images = np.stack([load_for(ort, s.path) for s in load_elpv("mono").train[:4]])
    a, b = ort.forward(images), ort.forward(images[::-1])
    want = tf.forward(images)
    for x, y, w in zip(a, b, want):
        np.testing.assert_array_equal(x, y[::-1])
        assert np.abs(x - w).max() <= 1e-5 * np.abs(w).max(), np.abs(x - w).max()
        assert np.abs(x - w).max() > 0  # another runtime: not the same bits (else the key need not differ)
    monkeypatch.setenv("LOWDATA_RUNTIME", "tensorflow")
    assert load_backbone("efficientnet-lite0", input_size=96).key == tf.key
    monkeypatch.setenv("LOWDATA_RUNTIME", "tpu")
    with pytest.raises(LowdataError, match="LOWDATA_RUNTIME='tpu': choose onnxruntime or tensorflow"):
        load_backbone("efficientnet-lite0", input_size=96)
