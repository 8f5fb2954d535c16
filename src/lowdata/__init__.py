"""lowdata: few-shot visual inspection with frozen ImageNet features (Gutierrez et al., 2021)."""

import os as _os

# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA) says nothing to our users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .errors import LowdataError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LowdataError", "__version__"]
