"""KNN (DN2, paper eq. 1): the levels' pooled vectors concatenated; the anomaly score is the mean squared
euclidean distance to the ``k`` nearest training vectors (``k = 1`` in the paper)."""

from __future__ import annotations

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .base import Detector
from .inputs import Features, pooled_levels
from .params import Param


class KNN(Detector):
    """KNN (DN2, paper eq. 1): the anomaly score of an image is the mean squared euclidean distance of its
    levels' pooled vectors, concatenated, to the ``k`` nearest training vectors (``k = 1`` in the paper).

    Parameters
    ----------
    k : int, default=1
        Nearest training vectors averaged (the paper: 1): a whole number in [1, 1,000,000], and at most the
        number of training images.

    Attributes
    ----------
    k_ : int
        The ``k`` of the fit.
    center_ : ndarray of shape (n_features,)
        The training vectors' mean (float64); every vector is centred on it before distances are measured
        (the distances do not change).
    train_ : ndarray of shape (n_train, n_features)
        The centred training vectors (float64), the levels' pooled vectors side by side.
    n_train_ : int
        The number of training images.
    """

    name = "knn"
    label = "KNN"
    score_definition = "mean squared euclidean distance to the k nearest training vectors (levels' pooled vectors joined)"
    consumes = "pooled"
    min_train = 1
    parameters = (Param("k", int, 1, "nearest training vectors averaged (the paper: 1)", low=1, high=10 ** 6),)

    def __init__(self, k: int = 1):
        self.k = k

    def fit(self, X: Features) -> "KNN":
        """Keep the training images' pooled vectors, centred on their mean."""
        self.check_params()
        k = self.k
        train = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        if len(train) < k:
            raise LowdataError(f"knn: k={k} needs at least {k} training images, got {len(train)}")
        # centred on the training mean (distances do not change): |t|^2 + |x|^2 - 2 t.x then does not
        # cancel away the digits of features with a large common offset
        self.k_ = k
        self.center_ = train.mean(axis=0)
        self.train_ = train - self.center_
        self.n_train_ = len(train)
        self._sq = (self.train_ ** 2).sum(axis=1)
        return self

    def get_state(self):
        self.check_fitted()
        return {"k": self.k_, "n_train": int(self.n_train_)}, {"center": self.center_, "train": self.train_}

    def set_state(self, params: dict, arrays: dict[str, np.ndarray]) -> "KNN":
        self.k = self.k_ = int(params["k"])
        self.center_, self.train_ = arrays["center"], arrays["train"]
        if self.train_.ndim != 2 or self.center_.shape != self.train_.shape[1:]:
            raise LowdataError(f"knn state: training vectors {self.train_.shape} and centre {self.center_.shape} "
                               "do not match")
        self.n_train_ = len(self.train_)
        self._sq = (self.train_ ** 2).sum(axis=1)
        return self

    def state_schema(self) -> S.Spec:
        return S.Dict({**self.params_schema(), "n_train": S.Int(1, 10 ** 7)})

    def feature_shapes(self, level_shapes):
        return self.train_.shape[1], sum(int(s[2]) for s in level_shapes)

    def anomaly_score(self, X: Features) -> np.ndarray:
        """The mean squared euclidean distance of each image's pooled vectors to the ``k`` nearest training
        vectors."""
        self.check_fitted()
        test = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        if test.shape[1] != self.train_.shape[1]:
            raise LowdataError(f"knn: fitted on {self.train_.shape[1]} features, got {test.shape[1]}")
        test = test - self.center_
        k = self.k_
        out = np.empty(len(test))
        for i in range(0, len(test), 256):
            t = test[i:i + 256]
            d2 = np.maximum((t ** 2).sum(axis=1)[:, None] + self._sq[None, :] - 2.0 * t @ self.train_.T, 0.0)
            near = np.partition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
            out[i:i + 256] = near.mean(axis=1)
        return out
