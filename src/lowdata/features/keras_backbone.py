"""A Keras model as a :class:`~lowdata.features.base.Backbone`: TensorFlow's details live here alone."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import LowdataError
from .base import LEVELS, Backbone


@dataclass
class KerasBackbone(Backbone):
    """A Keras model as a backbone: its outputs are the levels. ``forward`` runs it as one ``tf.function``."""

    name: str
    input_size: int
    weights_digest: str
    model: object = field(repr=False)
    levels: tuple[str, ...] = LEVELS
    level_shapes: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self):
        from ..core.quiet import tensorflow

        tf = tensorflow()  # lazy: importing TensorFlow takes about 3 s, and only encoding needs it

        s = self.input_size
        self._forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
        )
        if not self.level_shapes:
            self.level_shapes = tuple(tuple(int(d) for d in o.shape[1:]) for o in self.model.outputs)

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
