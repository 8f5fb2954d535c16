"""lowdata: few-shot visual inspection with frozen ImageNet features (Gutierrez et al., 2021).

The package is a house of layers, each a folder, imports running one way only (``CONTRIBUTING.md``):
``core`` (errors, atomic writes, locks) <- ``data`` (images, data sets, augmentation) <- ``features``
(backbones, cache, encoding, feature pools); ``core`` <- ``detectors`` and ``metrics``; the product
``inspection`` (fit, threshold, save, load, score) and the research ``experiments`` (study, pollution,
refinement) stand side by side on them, neither importing the other; ``book`` and ``cli`` on top.

The practitioner's entry points are re-exported here: ``lowdata.fit_model`` and ``lowdata.load_model``
(from :mod:`lowdata.inspection.model`, imported on first use: ``import lowdata`` stays light).
"""

import os as _os

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) says nothing to our users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .core.errors import LowdataError  # noqa: E402
from .core.version import __version__  # noqa: E402

__all__ = ["LowdataError", "__version__", "fit_model", "load_model"]


def __getattr__(name):
    if name in ("fit_model", "load_model"):
        from .inspection import model

        return getattr(model, name)
    raise AttributeError(f"module 'lowdata' has no attribute {name!r}")
