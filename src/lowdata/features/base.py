"""The backbone protocol: what every frozen feature extractor declares and does.

A backbone has a ``name``, an ``input_size`` (pixels, square), the ``levels`` it returns (their names)
with their ``level_shapes`` (``(h, w, c)`` per level), a ``weights_digest`` (what its weights are,
named by content) and so a ``key`` (the cache folder of its features), its ``preprocessing`` (how a
0-255 RGB image becomes its input) and ``forward`` (a batch of prepared images to one float32 map per
level). :func:`lowdata.features.encode.encode` relies on these and on nothing else: how an image is
resized, and whether it is normalised, is the backbone's declaration.

Implementations (:mod:`lowdata.features.keras_backbone`: any Keras model; the EfficientNets) are
registered in :mod:`lowdata.features.backbones`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..data.images import resize_rgb

LEVELS = ("stage4", "stage6", "stage7")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024  # below 32 px stage 7 has no pixels; above 1024 a batch needs GBs


@dataclass(frozen=True)
class Preprocessing:
    """How a decoded image (``(H, W, 3)`` uint8 RGB, 0-255) becomes a backbone's input: resized to
    ``size x size`` (bilinear, aspect ratio not kept, as the paper); normalisation is a layer of the
    model. Picklable: augmented copies carry it to workers.

    Parameters
    ----------
    size : int
        The side of the backbone's square input, pixels.
    """

    size: int

    def apply(self, img: np.ndarray) -> np.ndarray:
        """The backbone's input made from one image.

        Parameters
        ----------
        img : ndarray of shape (H, W, 3)
            A decoded uint8 RGB image, 0-255.

        Returns
        -------
        ndarray of shape (size, size, 3)
            The image resized (bilinear, aspect ratio not kept), uint8.
        """
        return resize_rgb(img, self.size)

    def describe(self) -> dict[str, str]:
        """As recorded in a model file.

        Returns
        -------
        dict of str to str
            ``color``, ``resize`` and ``normalisation``, in words.
        """
        return {"color": "RGB, 0-255 (grayscale repeated to 3 channels, alpha dropped, 16-bit scaled)",
                "resize": f"bilinear to {self.size}x{self.size} (aspect ratio not kept)",
                "normalisation": "inside the backbone"}


class Backbone(ABC):
    """A frozen feature extractor (see the module docstring). Subclasses set ``name``, ``input_size``,
    ``weights_digest``, ``levels`` and ``level_shapes`` and implement :meth:`forward`.

    Attributes
    ----------
    name : str
        The backbone's registry name.
    input_size : int
        The side of its square input, pixels.
    weights_digest : str
        What its weights are, named by content.
    levels : tuple of str
        The names of the levels :meth:`forward` returns (``stage4``, ``stage6``, ``stage7``).
    level_shapes : tuple of tuple of int
        ``(h, w, c)`` per level, at ``input_size``.
    """

    name: str
    input_size: int
    weights_digest: str
    levels: tuple[str, ...]
    level_shapes: tuple[tuple[int, int, int], ...]
    #: what runs the network (:mod:`lowdata.features.keras_backbone`); ``None``: nothing to choose
    runtime: str | None = None

    @property
    def key(self) -> str:
        """Identifies the features this backbone computes (used as the cache folder name)."""
        return f"{self.name}-{self.input_size}px-{self.weights_digest[:16]}"

    @property
    def preprocessing(self) -> Preprocessing:
        """How a 0-255 RGB image becomes this backbone's input (:class:`Preprocessing` at ``input_size``)."""
        return Preprocessing(self.input_size)

    @abstractmethod
    def forward(self, batch: np.ndarray) -> list[np.ndarray]:
        """``(n, input_size, input_size, 3)`` prepared images -> per level ``(n, h, w, c)`` float32 maps.
        An image's features must not depend on the other images of its batch.

        Parameters
        ----------
        batch : ndarray of shape (n, input_size, input_size, 3)
            Images prepared by :attr:`preprocessing`.

        Returns
        -------
        list of ndarray
            Per level, the ``(n, h, w, c)`` float32 maps (shapes :attr:`level_shapes`).
        """
