"""A Keras model as a :class:`~lowdata.features.base.Backbone`: TensorFlow's details live here alone.

**Runtime** (``$LOWDATA_RUNTIME``): ``onnxruntime`` (the default) converts the Keras model, with its
weights, to ONNX once per process (tf2onnx, about 5 s at 380 px, less than tracing it for TensorFlow) and runs
it with ONNX Runtime, in float32, one image per call: 2.2 times TensorFlow's speed on 2 cores at 380 px
(61.5 against 27.8 images/s, ``benchmarks/runtime.py``). ``tensorflow`` runs the Keras model as one
``tf.function``. The two runtimes' features differ in the last bits (about 1e-4 on values up to 35 at 380 px:
other kernels, other summation orders), so each has its cache folder: ONNX Runtime's key ends in
``-onnxruntime``, and the results tables' ``backbone`` column says which runtime computed a row's features.
(OpenVINO was measured as fast, but importing it sends usage telemetry and writes ``~/intel``: not used.)
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import LowdataError, printable
from .base import LEVELS, Backbone

RUNTIME_ENV = "LOWDATA_RUNTIME"
RUNTIMES = ("onnxruntime", "tensorflow")
DEFAULT_RUNTIME = "onnxruntime"
#: a runtime asked for in code (:func:`using_runtime`), before ``$LOWDATA_RUNTIME``
_ASKED: ContextVar[str | None] = ContextVar("lowdata_runtime", default=None)


def runtime() -> str:
    """The runtime in use: the one :func:`using_runtime` asks for, else ``$LOWDATA_RUNTIME``, else
    ``onnxruntime``."""
    asked = _ASKED.get()
    if asked is not None:
        return asked
    name = os.environ.get(RUNTIME_ENV, "").strip().lower() or DEFAULT_RUNTIME
    if name not in RUNTIMES:
        raise LowdataError(f"{RUNTIME_ENV}={printable(name)!r}: choose {' or '.join(RUNTIMES)}")
    return name


@contextmanager
def using_runtime(name: str | None):
    """Backbones built inside run on ``name`` (``None``: as :func:`runtime` says), e.g. a saved model's."""
    if name is not None and name not in RUNTIMES:
        raise LowdataError(f"unknown runtime {printable(name)!r}; choose {' or '.join(RUNTIMES)}")
    token = _ASKED.set(name)
    try:
        yield
    finally:
        _ASKED.reset(token)


@dataclass
class KerasBackbone(Backbone):
    """A Keras model as a backbone: its outputs are the levels. ``forward`` runs it on ``runtime``."""

    name: str
    input_size: int
    weights_digest: str
    model: object = field(repr=False)
    levels: tuple[str, ...] = LEVELS
    level_shapes: tuple[tuple[int, int, int], ...] = ()
    runtime: str = field(default_factory=runtime)

    def __post_init__(self):
        from ..core.quiet import tensorflow

        tf = tensorflow()  # lazy: importing TensorFlow takes about 3 s, and only encoding needs it

        s = self.input_size
        if not self.level_shapes:
            self.level_shapes = tuple(tuple(int(d) for d in o.shape[1:]) for o in self.model.outputs)
        if self.runtime == "onnxruntime":
            self._forward = _onnx_forward(self.model, s)
            return
        if self.runtime != "tensorflow":
            raise LowdataError(f"unknown runtime {self.runtime!r}; choose {' or '.join(RUNTIMES)}")
        run = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
        )
        self._forward = lambda x: [o.numpy() for o in run(x)]

    @property
    def key(self) -> str:
        """The cache folder of these features: the runtime is part of it when it is not TensorFlow."""
        return super().key + ("" if self.runtime == "tensorflow" else f"-{self.runtime}")

    def forward(self, batch: np.ndarray) -> list[np.ndarray]:
        """The maps of a batch of images, each image run through the network alone.

        An image's features must not depend on the other images of its batch, and oneDNN picks its
        convolution kernels (and how it splits the work) by the shape of the input: on AVX-512 a batch of
        one takes other kernels than larger batches (up to 3e-5 apart at 380 px), and on AVX2 an image's
        bits depend on the batch size and on its place in the batch (benchmarks/batch_layout.py). One
        image per call is the only shape that gives an image the same bits however it is batched, and on
        2 cores it is also the fastest at 380 px (27 images/s alone, 18 in batches of 16, AVX2); at 96 px
        the per-call cost makes it about 3 times slower than batches of 16 (138 against 434 images/s)."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (self.input_size, self.input_size, 3):
            raise LowdataError(
                f"{self.name} expects batches of shape (n, {self.input_size}, {self.input_size}, 3), "
                f"got {batch.shape}"
            )
        alone = [self._forward(batch[i:i + 1]) for i in range(len(batch))]
        if not alone:
            return [np.zeros((0, *shape), np.float32) for shape in self.level_shapes]
        return [np.concatenate([maps[level] for maps in alone]) for level in range(len(self.levels))]


def _onnx_forward(model, size: int):
    """The Keras ``model`` converted to ONNX (tf2onnx) for one ``size x size`` image per call, run by ONNX Runtime
    in float32."""
    try:
        import onnxruntime as ort
        import tf2onnx
    except ImportError:
        raise LowdataError(f"the onnxruntime runtime (the default) needs the packages onnxruntime and tf2onnx, which "
                           f"lowdata installs: pip install lowdata again, or set {RUNTIME_ENV}=tensorflow") from None
    import logging

    from ..core.quiet import tensorflow

    tf = tensorflow()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its conversion notes say nothing to our users
    fn = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=(tf.TensorSpec([1, size, size, 3], tf.float32,
                                                                                name="image"),), opset=17)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # ONNX Runtime's threads spin between calls by default, taking the cores from the threads that read and augment
    # the next images: without spinning, augmented copies encode at 45 images/s instead of 34-39 (64 ELPV cells x 4
    # copies at 380 px, 2 cores), the forward pass alone as fast (54 against 52 images/s)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = os.environ.get("OMP_NUM_THREADS", "").strip()  # a Dask worker's share of the cores
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    del proto, fn
    # the conversion leaves about 0.7 GB of TensorFlow graphs in reference cycles (Lite0 at 380 px: 1.32 GB of
    # anonymous memory after it, 0.64 GB after a collection), which would stay through a whole study
    gc.collect()

    def forward(x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o, dtype=np.float32) for o in session.run(None, {name: np.ascontiguousarray(x, np.float32)})]

    return forward
