"""lowdata: few-shot visual inspection with frozen ImageNet features (Gutierrez et al., 2021).

The practitioner's entry points are re-exported here: ``lowdata.fit_model`` and ``lowdata.load_model``
(from :mod:`lowdata.model`, imported on first use).
"""

import os as _os

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) says nothing to our users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .errors import LowdataError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LowdataError", "__version__", "fit_model", "load_model"]


def __getattr__(name):
    if name in ("fit_model", "load_model"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'lowdata' has no attribute {name!r}")
