"""EfficientNet-B4, the paper's backbone: ``keras.applications.EfficientNetB4`` with Keras' own ImageNet weights.

The weights are ``$KERAS_HOME/models/efficientnetb4_notop.h5``, downloaded by Keras on a machine with
internet, or a local copy of that file given by ``weights=PATH`` / ``$LOWDATA_B4_WEIGHTS``. A local file
is checked against Keras' md5 and placed where Keras looks, so the model is built exactly as after a
download (``weights='/path.h5'`` would build a model without the extra rescaling layer). Its levels are
the last block of stages 4, 6 and 7 (``block4f_add``, ``block6h_add``, ``block7b_add``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.digests import file_hash
from ..core.errors import LowdataError
from .keras_backbone import KerasBackbone

B4 = "efficientnet-b4"
B4_WEIGHTS_FILE = "efficientnetb4_notop.h5"
B4_WEIGHTS_MD5 = "ebc24e6d6c33eaebbd558eafbeedf1ba"  # keras.applications.efficientnet WEIGHTS_HASHES["b4"][1]
B4_WEIGHTS_ENV = "LOWDATA_B4_WEIGHTS"
OFFLINE_ENV = "LOWDATA_OFFLINE"


def _keras_home() -> Path:
    try:
        from ..core.quiet import tensorflow

        tensorflow()  # Keras imports TensorFlow: its start-up notes kept from the console
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


def b4_weights_here() -> bool:
    """Whether Keras' B4 ImageNet weights are on this machine (given by ``$LOWDATA_B4_WEIGHTS`` or where Keras
    keeps them): loading them downloads nothing."""
    return bool(os.environ.get(B4_WEIGHTS_ENV)) or (_keras_home() / "models" / B4_WEIGHTS_FILE).is_file()


def load_b4(input_size: int, weights, seed: int) -> KerasBackbone:
    """EfficientNet-B4 at ``input_size``: Keras' ImageNet weights (``'imagenet'``, or a local copy's path), or
    random ones drawn from ``seed`` (``None``)."""
    from ..core.quiet import tensorflow

    tensorflow()  # lazy: importing Keras takes seconds (TensorFlow); its start-up notes kept from the console
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
    return KerasBackbone(B4, input_size, digest, features)


def use_b4_weights(path: str | Path, backbone: str | None = B4) -> Path:
    """``--weights PATH``: check Keras' EfficientNet-B4 weights file (md5) and put it where Keras looks,
    for this process and (through ``$LOWDATA_B4_WEIGHTS``) the notebooks and workers it starts."""
    if backbone != B4:
        raise LowdataError(f"--weights is for the {B4} backbone; {backbone} uses the ImageNet weights packaged with "
                           "lowdata")
    target = install_b4_weights(path)
    os.environ[B4_WEIGHTS_ENV] = str(Path(path).expanduser().resolve())
    return target
