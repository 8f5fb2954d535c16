"""Mahalanobis (Rippel et al., paper eq. 2): one Gaussian per level on pooled vectors, with the Empirical
(``maha-emp``) or Ledoit-Wolf (``maha-lw``) covariance; the anomaly score is the sum over levels of the
Mahalanobis distances (square roots of scikit-learn's squared ``mahalanobis``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .base import Detector, prefixed, unprefixed
from .inputs import Features, pooled_levels
from .gaussian import ESTIMATORS, GaussianBank, bank_schema
from .params import Param

_NAMES = {"empirical": "maha-emp", "ledoit-wolf": "maha-lw"}
_LABELS = {"empirical": "Mahalanobis (Empirical)", "ledoit-wolf": "Mahalanobis (Ledoit)"}
_SCORES = {"empirical": "sum over levels of the Mahalanobis distance (empirical covariance, pseudo-inverse)",
           "ledoit-wolf": "sum over levels of the Mahalanobis distance (Ledoit-Wolf covariance)"}


def chi2_score(dims: Sequence[int], alpha: float) -> float:
    """The score (sum over levels of distances) of a point whose squared distance is at the ``1 - alpha``
    chi-square quantile at every level (``dims``: each level's dimension): a Gaussian's tail."""
    from scipy.stats import chi2  # lazy: 0.7 s to import, and only the chi-square rules need it

    return float(sum(np.sqrt(chi2.ppf(1 - alpha, df=d)) for d in dims))


class Mahalanobis(Detector):
    """Mahalanobis (Rippel et al., paper eq. 2): one Gaussian per level on pooled vectors; the anomaly score is
    the sum over levels of the Mahalanobis distances. Its registry name says the covariance estimator:
    ``maha-emp`` (empirical) or ``maha-lw`` (Ledoit-Wolf).

    Parameters
    ----------
    estimator : {'empirical', 'ledoit-wolf'}, default='ledoit-wolf'
        The covariance estimator: maha-emp is the empirical one (pseudo-inverse), maha-lw Ledoit-Wolf's. Part
        of the method (its registration sets it), not a ``--param`` of the command line.

    Attributes
    ----------
    gaussians_ : list of GaussianBank
        One fitted :class:`~lowdata.detectors.gaussian.GaussianBank` (of one location) per feature level.
    n_train_ : int
        The number of training images.
    """

    consumes = "pooled"
    gaussian = True
    min_train = 2
    parameters = (Param("estimator", str, "ledoit-wolf", "the covariance estimator: maha-emp is the empirical one, maha-lw "
                        "Ledoit-Wolf's", choices=ESTIMATORS, fixed=True),)

    def __init__(self, estimator: str = "ledoit-wolf"):
        self.estimator = estimator

    @property
    def name(self) -> str:
        return _NAMES.get(self.estimator, f"maha-{self.estimator}")

    @property
    def label(self) -> str:
        return _LABELS.get(self.estimator, f"Mahalanobis ({self.estimator})")

    @property
    def score_definition(self) -> str:
        return _SCORES.get(self.estimator, f"sum over levels of the Mahalanobis distance ({self.estimator})")

    def fit(self, X: Features) -> "Mahalanobis":
        """Fit one Gaussian per level to the training images' pooled vectors."""
        self.check_params()
        levels = pooled_levels(X)
        n = len(levels[0])
        if n < 2:
            raise LowdataError(f"{self.name}: a covariance needs at least 2 training images, got {n}")
        self.gaussians_ = [GaussianBank(self.estimator).fit(np.asarray(a)[:, None, :]) for a in levels]
        self.n_train_ = n
        return self

    def get_state(self):
        self.check_fitted()
        params = {"estimator": self.estimator, "n_train": int(self.n_train_), "levels": []}
        arrays = {}
        for i, g in enumerate(self.gaussians_):
            p, a = g.get_state()
            params["levels"].append(p)
            arrays.update(prefixed(f"level{i}", a))
        return params, arrays

    def set_state(self, params: dict, arrays: dict[str, np.ndarray]) -> "Mahalanobis":
        self.estimator = params["estimator"]
        self.gaussians_ = [GaussianBank.from_state(p, unprefixed(f"level{i}", arrays), prefix=f"level{i}")
                           for i, p in enumerate(params["levels"])]
        self.n_train_ = int(params["n_train"])
        return self

    def state_schema(self) -> S.Spec:
        return S.Dict({"estimator": S.Str((self.estimator,)), "n_train": S.Int(2, 10 ** 7),
                       "levels": S.List(bank_schema(), 1, 16)})

    def feature_shapes(self, level_shapes):
        return [(g.L_, g.d_) for g in self.gaussians_], [(1, int(s[2])) for s in level_shapes]

    def chi2_score(self, alpha: float) -> float:
        """:func:`chi2_score` of the fitted levels' dimensions."""
        self.check_fitted()
        return chi2_score([g.d_ for g in self.gaussians_], alpha)

    def anomaly_score(self, X: Features) -> np.ndarray:
        """The sum over levels of each image's Mahalanobis distances."""
        self.check_fitted()
        levels = pooled_levels(X)
        if len(levels) != len(self.gaussians_):
            raise LowdataError(f"{self.name}: fitted on {len(self.gaussians_)} levels, got {len(levels)}")
        return sum(np.sqrt(np.maximum(g.mahalanobis(np.asarray(a)[:, None, :])[:, 0], 0.0))
                   for g, a in zip(self.gaussians_, levels))
