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
        alone = [[o.numpy() for o in self._forward(batch[i:i + 1])] for i in range(len(batch))]
        if not alone:
            return [np.zeros((0, *shape), np.float32) for shape in self.level_shapes]
        return [np.concatenate([maps[level] for maps in alone]) for level in range(len(self.levels))]
