"""DINOv2 ViT-S/14 (``dinov2-vits14``): the self-supervised features of the few-shot state of the art (AnomalyDINO),
through keras-hub, an optional extra (``pip install -e .[foundation]``).

**Levels**: the patch tokens (the class and register tokens dropped) of transformer blocks 4, 8 and 12, each through
the model's final layer normalisation (as DINOv2's ``get_intermediate_layers(norm=True)``: raw intermediate tokens
have a few very large channels that would rule every distance), each as a ``(size/14, size/14, 384)`` map: an
early, a middle and the final representation, as EfficientNet's stages 4, 6 and 7 are for the paper. AnomalyDINO scores with the last one
alone; the middle blocks carry the more local texture that PaDiM's per-location Gaussians and PatchCore's
nearest patches use on CNNs. All three have the same grid (a ViT does not downsample).

**Preprocessing**: the model's own: RGB scaled to [0, 1], then normalised with ImageNet's mean and standard
deviation (DINOv2's), a layer of the model; the image is resized to ``size x size`` like every backbone's (no
crop). **Input size**: a multiple of the patch size, 14 (default 448, AnomalyDINO's; 224 for speed); the
position embeddings, trained at 518, are interpolated by keras-hub. **Runtime**: TensorFlow always (the ONNX
conversion writes an operator ONNX Runtime lacks); about 1 s per image at 224 px on 2 cores.

**Weights**: keras-hub's preset ``dinov2_small`` (Kaggle ``keras/dinov2/keras/dinov2_small/1``), downloaded on
first use into keras-hub's cache; or a local copy of that preset folder given as ``$LOWDATA_DINOV2_WEIGHTS``
(its ``model.weights.h5`` hashed with SHA-256, checked against ``$LOWDATA_DINOV2_SHA256`` when that is set: the
published digest could not be read where this was written, so none is built in). The weights' SHA-256 names the
cache folder. ``$LOWDATA_OFFLINE=1`` without a local copy fails at once, with these instructions. Random weights
(``weights=None``) build the same architecture: what the tests use.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.digests import file_hash
from ..core.errors import LowdataError
from .keras_backbone import KerasBackbone

DINO = "dinov2-vits14"
PATCH = 14
PRESET = "dinov2_small"
LEVELS = ("block4", "block8", "block12")
#: ViT-S/14 (DINOv2's small model)
CONFIG = dict(patch_size=PATCH, num_layers=12, hidden_dim=384, num_heads=6, intermediate_dim=1536,
              layer_scale_init_value=1.0, num_register_tokens=0, position_embedding_shape=(518, 518, 3))
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, DINOv2's normalisation
WEIGHTS_ENV, SHA_ENV, OFFLINE_ENV = "LOWDATA_DINOV2_WEIGHTS", "LOWDATA_DINOV2_SHA256", "LOWDATA_OFFLINE"
HELP = (f"{DINO} needs DINOv2's ViT-S/14 weights, keras-hub's preset {PRESET} "
        "(https://www.kaggle.com/models/keras/dinov2/keras/dinov2_small): on a machine with internet keras-hub "
        f"downloads them on first use; offline, download that preset folder elsewhere and set {WEIGHTS_ENV}=FOLDER "
        f"(and {SHA_ENV}=its model.weights.h5's SHA-256 to have it checked)")


def _keras_hub():
    """keras-hub, or one line saying how to install it."""
    from ..core.quiet import tensorflow

    tensorflow()  # Keras imports TensorFlow: its start-up notes kept from the console
    try:
        import keras_hub
    except ImportError:
        raise LowdataError(f"the {DINO} backbone needs keras-hub, an optional extra: pip install -e .[foundation] "
                           "(or pip install keras-hub)") from None
    return keras_hub


def check_size(input_size: int) -> int:
    """``input_size`` if it is a multiple of the patch size, else one line saying which sizes are."""
    if input_size % PATCH:
        low = max(PATCH * 3, input_size // PATCH * PATCH)
        raise LowdataError(f"{DINO}: the input size must be a multiple of its patch size {PATCH} (e.g. {low} or "
                           f"{low + PATCH}, 224, 448), got {input_size}")
    return input_size


def _local_weights() -> tuple[str, str] | None:
    """The local preset folder of ``$LOWDATA_DINOV2_WEIGHTS`` and its weights' SHA-256 (checked against
    ``$LOWDATA_DINOV2_SHA256`` when set), or ``None``."""
    folder = os.environ.get(WEIGHTS_ENV, "").strip()
    if not folder:
        return None
    path = Path(folder).expanduser()
    weights = path / "model.weights.h5"
    if not weights.is_file():
        raise LowdataError(f"{WEIGHTS_ENV}={folder}: no model.weights.h5 in it (give the keras-hub preset folder "
                           f"of {PRESET}, with its config.json)")
    digest = file_hash(weights, "sha256")
    expected = os.environ.get(SHA_ENV, "").strip().lower()
    if expected and digest != expected:
        raise LowdataError(f"{weights}: SHA-256 {digest}, not the {expected} that {SHA_ENV} gives: a damaged or "
                           "other file")
    return str(path), digest


def load_dinov2(input_size: int, weights, seed: int) -> KerasBackbone:
    """DINOv2 ViT-S/14 at ``input_size`` (a multiple of 14): its weights (``'imagenet'``: the preset, see the module
    docstring) or random ones drawn from ``seed`` (``None``)."""
    size = check_size(int(input_size))
    hub = _keras_hub()
    import keras

    shape = (size, size, 3)
    if weights is None:
        keras.utils.set_random_seed(seed)
        vit = hub.models.DINOV2Backbone(**CONFIG, image_shape=shape, apply_layernorm=True)
        digest = f"random-seed{seed}"
    else:
        local = _local_weights()
        if local is None and os.environ.get(OFFLINE_ENV):
            raise LowdataError(f"{OFFLINE_ENV} is set and {WEIGHTS_ENV} is not. " + HELP)
        try:
            vit = hub.models.DINOV2Backbone.from_preset(local[0] if local else PRESET, image_shape=shape,
                                                        apply_layernorm=True)
        except Exception as exc:  # a failed download, a folder that is not the preset
            raise LowdataError(f"could not get the {DINO} weights ({type(exc).__name__}: {exc}). " + HELP) from None
        digest = local[1] if local else f"{PRESET}-kaggle-1"
    grid = size // PATCH
    image = keras.Input(shape, name="image")
    x = (image / 255.0 - keras.ops.array(MEAN, "float32")) / keras.ops.array(STD, "float32")
    tokens = keras.Model(vit.inputs, [vit.pyramid_outputs[f"stage{b}"] for b in (4, 8, 12)])(x)
    first = 1 + int(vit.num_register_tokens)  # the class token and the registers come before the patches
    maps = [keras.ops.reshape(t[:, first:, :], (-1, grid, grid, CONFIG["hidden_dim"])) for t in tokens]
    model = keras.Model(image, maps, name="dinov2_vits14_levels")
    # TensorFlow runs it whatever $LOWDATA_RUNTIME says: tf2onnx writes the exact GELU's Erfc, which ONNX Runtime
    # does not run ("No Op registered for Erfc")
    return KerasBackbone(DINO, size, digest, model, levels=LEVELS, runtime="tensorflow")
