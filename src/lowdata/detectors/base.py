"""The detector protocol.

A detector follows scikit-learn's conventions: ``__init__`` stores its parameters and nothing else
(they are checked in ``fit``); ``get_params`` / ``set_params``; ``fit(train)`` returns the detector;
a fitted check. Its per-image score is :meth:`Detector.anomaly_score`: higher is more anomalous (the
opposite of scikit-learn's ``score_samples``, where higher is more normal; the name says which it is).

It declares what it needs and offers: its registry ``name``, ``label`` and ``score_definition``;
what it ``consumes`` (``"pooled"`` vectors or spatial ``"maps"``); whether it ``gives_maps``
(:meth:`Detector.anomaly_maps` on its fitted ``grid_``, and heatmaps); whether its score is a sum of
Mahalanobis distances of Gaussians (``gaussian``: chi-square tails apply); the fewest training images
it accepts (``min_train``); and its state for saving (:meth:`Detector.get_state`, :meth:`Detector.set_state`,
:meth:`Detector.state_schema`).

What a detector reads (feature sets, map rows, arrays) is :mod:`lowdata.detectors.inputs`; heatmaps at image
size, :mod:`lowdata.detectors.heatmaps`.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .heatmaps import upsample_maps
from .inputs import Features
from .params import Param, describe_params


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` with ``prefix.`` in front of every name (a detector's state holding parts' states)."""
    return {f"{prefix}.{k}": v for k, v in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays named ``prefix.*``, without the prefix."""
    return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}


class Detector:
    """The protocol of every detector (see the module docstring). Subclasses set the declarations below
    and implement ``fit``, ``anomaly_score``, ``get_state``, ``set_state``, ``state_schema`` and
    ``feature_shapes`` (and ``anomaly_maps`` and ``smoothing`` when they give maps)."""

    name = "detector"  # the registry's key
    label = "detector"  # how tables and figures name it
    score_definition = ""  # what the per-image score is, in words (recorded in model files)
    consumes = "pooled"  # "pooled": per-level pooled vectors; "maps": aligned spatial maps
    gives_maps = False  # anomaly_maps() on the feature grid, and heatmaps at image size
    gaussian = False  # score = sum over levels of Mahalanobis distances: chi-square tails apply
    min_train = 1  # the fewest training images fit() accepts
    #: the constructor's parameters, declared once (:class:`~lowdata.detectors.params.Param`): checked by
    #: :meth:`check_params` in ``fit``, read by the command line (``--param``) and a model file's checks
    parameters: tuple[Param, ...] = ()
    #: ``fit_nested(X, added, sums)`` fits a series of growing training sets by adding to running sums
    incremental = False
    #: the image size (pixels) at which the heatmap's smoothing is declared (``None``: at any size)
    smoothing_at: int | None = None

    # ------------------------------------------------------------------------ scikit-learn conventions
    @classmethod
    def _param_names(cls) -> list[str]:
        if cls.parameters:
            return [p.name for p in cls.parameters]
        sig = inspect.signature(cls.__init__)  # a detector that declares none: its constructor's
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]

    def check_params(self) -> None:
        """Every declared parameter checked (one line naming the parameter, its range and the value) and kept as
        its type; called at the start of ``fit``."""
        for p in self.parameters:
            setattr(self, p.name, p.check(getattr(self, p.name), self.name))

    def get_params(self, deep: bool = False) -> dict:
        """The constructor's parameters and their values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def params_schema(self) -> dict[str, S.Spec]:
        """The declared parameters' schemas, for :meth:`state_schema` (a stored value is checked as a given one)."""
        return {p.name: p.spec() for p in self.parameters}

    def set_params(self, **params) -> "Detector":
        """Set constructor parameters (their values are checked in ``fit``)."""
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                raise LowdataError(f"{self.name}: unknown parameter {name!r}; its parameters: "
                                   + (describe_params(self.name, self.parameters).split(": ", 1)[1]
                                      if self.parameters else ", ".join(known) or "none"))
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`set_state`) has been called."""
        return hasattr(self, "n_train_")

    def check_fitted(self) -> None:
        """Raise unless the detector is fitted."""
        if not self.is_fitted:
            raise LowdataError(f"{self.name}: call fit() before anomaly_score()")

    # ---------------------------------------------------------------------------------- the work
    def fit(self, X: Features) -> "Detector":
        """Fit the detector on the training images' features (normal images only).

        Parameters
        ----------
        X : Features
            The training images' features (:mod:`lowdata.detectors.inputs`): what the detector ``consumes``.

        Returns
        -------
        Detector
            The fitted detector (``self``).

        Raises
        ------
        lowdata.LowdataError
            If a parameter is out of range, or there are too few training images (``min_train``).
        """
        raise NotImplementedError

    def anomaly_score(self, X: Features) -> np.ndarray:
        """One float64 anomaly score per image: higher is more anomalous.

        Parameters
        ----------
        X : Features
            The test images' features (:mod:`lowdata.detectors.inputs`), of the backbone the detector was
            fitted on.

        Returns
        -------
        ndarray of shape (n,)
            The anomaly scores (float64).

        Raises
        ------
        lowdata.LowdataError
            If the detector is not fitted, or ``X`` does not match the fitted features.
        """
        raise NotImplementedError

    def anomaly_maps(self, X: Features) -> np.ndarray:
        """``(n, h, w)`` anomaly scores on the feature grid ``grid_`` (detectors that give maps).

        Parameters
        ----------
        X : Features
            The test images' features (:mod:`lowdata.detectors.inputs`), of the backbone the detector was
            fitted on.

        Returns
        -------
        ndarray of shape (n, h, w)
            The anomaly maps: higher is more anomalous.

        Raises
        ------
        lowdata.LowdataError
            If the detector gives no maps, is not fitted, or ``X`` does not match the fitted features.
        """
        raise LowdataError(f"{self.name} gives no anomaly maps")

    def scores_and_maps(self, X: Features) -> tuple[np.ndarray, np.ndarray | None]:
        """The anomaly scores and, for a detector that gives maps, its anomaly maps (else ``None``).

        Parameters
        ----------
        X : Features
            The test images' features (:mod:`lowdata.detectors.inputs`), of the backbone the detector was
            fitted on.

        Returns
        -------
        scores : ndarray of shape (n,)
            :meth:`anomaly_score`.
        maps : ndarray of shape (n, h, w) or None
            :meth:`anomaly_maps`, or ``None`` for a detector that gives no maps.
        """
        if not self.gives_maps:
            return self.anomaly_score(X), None
        return self.anomaly_score(X), self.anomaly_maps(X)

    def smoothing(self, size: int, reference: int | None = None) -> float:
        """The heatmap's Gaussian smoothing in pixels of a ``size``-pixel image, for a smoothing declared at
        ``reference`` pixels (``None``: at ``size``).

        Parameters
        ----------
        size : int
            The heatmap's side, pixels.
        reference : int or None, default=None
            The side at which the smoothing is declared (:attr:`smoothing_at`); ``None``: at ``size``.

        Returns
        -------
        float
            The Gaussian smoothing's sigma, pixels of the ``size``-pixel heatmap.

        Raises
        ------
        lowdata.LowdataError
            If the detector gives no heatmaps.
        """
        raise LowdataError(f"{self.name} gives no heatmaps")

    def heatmaps(self, X: Features | None = None, size: int | tuple[int, int] = 380, *,
                 maps: np.ndarray | None = None, reference: int | None = None) -> np.ndarray:
        """``(n, h, w)`` anomaly heatmaps at image size (from ``X``, or from :meth:`anomaly_maps` output):
        bilinear upsampling, then Gaussian smoothing of :meth:`smoothing` pixels.

        Parameters
        ----------
        X : Features or None, default=None
            The test images' features (``None`` when ``maps`` is given).
        size : int or tuple of int, default=380
            The heatmaps' size, pixels: a side, or ``(h, w)`` (the smoothing is scaled by ``h``).
        maps : ndarray of shape (n, h, w) or None, default=None
            :meth:`anomaly_maps` output, used instead of ``X``.
        reference : int or None, default=None
            The side at which the smoothing is declared (:attr:`smoothing_at`); ``None``: at ``size``.

        Returns
        -------
        ndarray of shape (n, size, size) or (n, h, w)
            The heatmaps (float32).

        Raises
        ------
        lowdata.LowdataError
            If the detector gives no heatmaps.
        """
        side = size if isinstance(size, int) else size[0]
        return upsample_maps(self.anomaly_maps(X) if maps is None else maps, size, self.smoothing(side, reference))

    def fit_nested(self, X: Features, added: Features | None, sums=None):
        """Fit on ``X``, the previous fit's set plus ``added``, from the running ``sums`` the previous fit returned
        (detectors that declare ``incremental``); returns the sums for the next fit.

        Parameters
        ----------
        X : Features
            The training set of this fit.
        added : Features or None
            The images ``X`` adds to the previous fit's set.
        sums : object, default=None
            The previous fit's return value (``None`` for the first fit of a series).

        Returns
        -------
        object
            The running sums to give the next fit (``None``: the next fit starts from its own set).

        Raises
        ------
        lowdata.LowdataError
            If the detector does not fit incrementally.
        """
        raise LowdataError(f"{self.name} does not fit incrementally")

    def size_note(self, n_train: int, maps_shape: tuple[int, int, int] | None) -> str | None:
        """A warning worth giving before fitting on ``n_train`` images (maps of ``(h, w, d)``), or ``None``."""
        return None

    # ------------------------------------------------------------------------------------ state
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted detector as JSON-able parameters and named numeric arrays (no pickled code);
        :meth:`set_state` on a fresh detector of the same method restores it, scoring to the last bit.

        Returns
        -------
        params : dict
            The parameters and fitted sizes, JSON-able (checked by :meth:`state_schema`).
        arrays : dict of str to ndarray
            The fitted arrays, by name.

        Raises
        ------
        lowdata.LowdataError
            If the detector is not fitted.
        """
        raise NotImplementedError

    def set_state(self, params: dict, arrays: dict[str, np.ndarray]) -> "Detector":
        """Restore a fitted detector from :meth:`get_state`'s parameters and arrays.

        Parameters
        ----------
        params : dict
            :meth:`get_state`'s parameters (a model file's are checked against :meth:`state_schema` before use).
        arrays : dict of str to ndarray
            :meth:`get_state`'s arrays.

        Returns
        -------
        Detector
            The fitted detector (``self``).

        Raises
        ------
        lowdata.LowdataError
            If the arrays do not agree with each other or with the parameters.
        """
        raise NotImplementedError

    def state_schema(self) -> S.Spec:
        """The schema of :meth:`get_state`'s parameters (a model file is checked against it before use)."""
        raise NotImplementedError

    def feature_shapes(self, level_shapes: Sequence[Sequence[int]]) -> tuple:
        """``(what the fitted arrays take, what a backbone with these ``(h, w, c)`` levels gives)``: equal
        when the detector can score that backbone's features."""
        raise NotImplementedError
