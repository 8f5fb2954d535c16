"""Import imgaug 0.4.0 on numpy 2.

imgaug 0.4.0 (the last release) reads ``np.sctypes`` at import time; numpy 2 removed it. Defining it
again, with numpy 1's content, is all imgaug needs: flips, affine, rot90, add, multiply, SomeOf and
OneOf then work on numpy 2.4 (ElasticTransformation does not). Pinning numpy<2 instead breaks
SomeOf/OneOf (``np.bool``) and holds other packages back. Import imgaug only through this module::

    from lowdata.data.imgaug_compat import iaa, ia
"""

import numpy as np

if not hasattr(np, "sctypes"):
    np.sctypes = {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64],
        "complex": [np.complex64, np.complex128],
        "others": [bool, object, bytes, str, np.void],
    }

import imgaug as ia  # noqa: E402
import imgaug.augmenters as iaa  # noqa: E402

__all__ = ["ia", "iaa"]
