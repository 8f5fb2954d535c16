"""A detector written outside the package, in one file: the distance of an image's pooled vectors to the
training mean. Importing this module registers it as the method ``mean-distance``; nothing else in lowdata
changes for ``lowdata study``, ``lowdata fit`` / ``score`` and the notebooks' parameter checks to take it."""

import numpy as np

from lowdata.core import schema as S
from lowdata.core.errors import LowdataError
from lowdata.detectors.base import Detector
from lowdata.detectors.inputs import pooled_levels
from lowdata.detectors.registry import register_detector


class MeanDistance(Detector):
    name = "mean-distance"
    label = "Distance to the mean"
    score_definition = "euclidean distance of the levels' joined pooled vectors to their training mean"
    consumes = "pooled"
    min_train = 1

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, X):
        if not self.scale > 0:
            raise LowdataError(f"mean-distance: scale must be above 0, got {self.scale!r}")
        train = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        self.mean_ = train.mean(axis=0)
        self.n_train_ = len(train)
        return self

    def anomaly_score(self, X):
        self.check_fitted()
        test = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        return self.scale * np.sqrt(((test - self.mean_) ** 2).sum(axis=1))

    def get_state(self):
        self.check_fitted()
        return {"scale": float(self.scale), "n_train": int(self.n_train_)}, {"mean": self.mean_}

    def set_state(self, params, arrays):
        self.scale, self.n_train_, self.mean_ = float(params["scale"]), int(params["n_train"]), arrays["mean"]
        return self

    def state_schema(self):
        return S.Dict({"scale": S.Num(0, lo_open=True), "n_train": S.Int(1)})

    def feature_shapes(self, level_shapes):
        return len(self.mean_), sum(int(s[2]) for s in level_shapes)


register_detector("mean-distance", MeanDistance)
