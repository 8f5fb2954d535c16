"""Banks of Gaussians: ``L`` independent multivariate Gaussians fitted at once, and their Mahalanobis distances.

The Mahalanobis detector fits one Gaussian per feature level (``L = 1`` each); PaDiM fits one per
location of the feature grid (``L = h * w``, e.g. 576 for a 24 x 24 grid) on the same feature
dimension. Both estimators follow scikit-learn exactly:

* ``"empirical"``: :class:`sklearn.covariance.EmpiricalCovariance` -- the maximum-likelihood
  covariance ``S = Xc^T Xc / n`` and its pseudo-inverse (``scipy.linalg.pinvh``, default cut-off).
  Nothing is added to the diagonal: when ``n`` is near the dimension the precision is poor, and the
  paper's dip in AUC there is reproduced, not hidden.
* ``"ledoit-wolf"``: :class:`sklearn.covariance.LedoitWolf` -- ``(1 - s) S + s mu I`` with
  ``mu = tr(S) / d`` and scikit-learn's shrinkage ``s``; precision by inversion (a pseudo-inverse
  only where the shrunk matrix is singular, as ``pinvh`` would do).

Ledoit-Wolf takes the cheapest exact route for each ``n``:

* ``n <= d`` (the low-data regime): ``Sigma = a I + b Xc^T Xc`` with ``a = s mu`` and
  ``b = (1 - s) / n``. The Woodbury identity gives
  ``z^T Sigma^-1 z = (|z|^2 - w^T (a/b I + K)^-1 w) / a`` with ``K = Xc Xc^T`` (``n x n``) and
  ``w = Xc z``: ``O(L d n^2)`` to fit instead of ``O(L d^3)``. The shrinkage itself only needs ``K``:
  ``|Xc^T Xc|_F = |K|_F`` and the per-sample squared norms are ``diag(K)``.
* ``n > d``: the ``d x d`` covariance is accumulated in chunks of samples (memory does not grow
  with ``n``: a bank holds ``L d^2`` float64 values), shifted by the first chunk's mean so that the
  one-pass sums do not cancel, and each location's matrix is inverted.

A bank (``L > 1``, PaDiM) fitted on an array of samples, or on rows of one (:class:`LocationBlocks`:
the study's pool of maps, in memory or memory-mapped), reads a block of locations of every sample at a
time: the block is centred on its own mean, its Gram products are float32 BLAS calls (``C^T C``, or
``C C^T`` for Woodbury), finished in float64, and each location's shrunk covariance (or Woodbury's inner
``n x n`` matrix) is factored by Cholesky (route ``"cholesky"``, or ``"woodbury"`` with an inner factor):
distances are triangular solves, no matrix is inverted. Memory: one block of samples (at most
:data:`BLOCK_BYTES`) besides the model.

Distances are returned squared, as scikit-learn's ``mahalanobis``; detectors take the square root.

Where the code is: the arithmetic as pure functions (:mod:`~lowdata.detectors.covariance`), how samples are
read and summed (:mod:`~lowdata.detectors.location_blocks`), the fits (:mod:`~lowdata.detectors.gaussian_fit`),
and the fitted forms, one class per stored form, each with its distance and its state
(:mod:`~lowdata.detectors.gaussian_forms`). This module holds the bank: it chooses the fit, keeps the form,
saves and restores it.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .covariance import BLOCK, BLOCK_BYTES, as_chunks
from .gaussian_fit import centered_samples, fit_blocks, fit_empirical, fit_full, fit_sums, fit_woodbury
from .gaussian_forms import FORMS
from .location_blocks import GramSums, LocationBlocks



ESTIMATORS = ("empirical", "ledoit-wolf")


def bank_schema() -> S.Dict:
    """The schema of :meth:`GaussianBank.get_state`'s parameters (checked before a saved bank is used)."""
    return S.Dict({"estimator": S.Str(ESTIMATORS), "chunk": S.Int(1, 1 << 20), "route": S.Str(tuple(FORMS)),
                   "n": S.Int(2, 10 ** 7), "locations": S.Int(1, 1 << 20), "features": S.Int(1, 1 << 16),
                   "singular": S.List(S.Int(0, 1 << 20)), "pinvh": S.List(S.Int(0, 1 << 20))},
                  optional=("singular", "pinvh"))


class GaussianBank:
    """``L`` Gaussians on ``d`` features, fitted on ``(n, L, d)`` samples (an array or chunks of one).

    After a fit: ``location_`` ``(L, d)``, ``shrinkage_`` per location (Ledoit-Wolf; 0 for the empirical
    estimator), ``form`` (one of :mod:`lowdata.detectors.gaussian_forms`) and its ``route``.
    """

    def __init__(self, estimator: str = "ledoit-wolf", chunk: int = 64):
        if estimator not in ESTIMATORS:
            raise LowdataError(f"unknown covariance estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")
        self.estimator = estimator
        self.chunk = chunk

    @property
    def route(self) -> str:
        """``"full"``, ``"cholesky"`` or ``"woodbury"``: the fitted form's."""
        if not hasattr(self, "form"):
            raise AttributeError("route")  # not fitted (hasattr(bank, "route") is False)
        return self.form.route

    def _fitted(self, n: int, L: int, d: int, fitted) -> "GaussianBank":
        self.n_, self.L_, self.d_ = n, L, d
        self.location_, self.shrinkage_, self.form = fitted
        return self

    # ----------------------------------------------------------------------------------------- fit
    def fit(self, X: "np.ndarray | LocationBlocks | Iterable[np.ndarray]", n: int | None = None) -> "GaussianBank":
        """Fit on ``X``: an ``(n, L, d)`` array, :class:`LocationBlocks`, or an iterable of ``(b, L, d)`` chunks
        totalling ``n``."""
        if isinstance(X, np.ndarray) and X.ndim == 3 and X.shape[1] > 1 and self.estimator == "ledoit-wolf":
            X = LocationBlocks(X)
        if isinstance(X, LocationBlocks):
            if X.n < 2:
                raise LowdataError(f"a covariance needs at least 2 training samples, got {X.n}")
            return self._fitted(X.n, X.L, X.d, fit_blocks(X))
        if isinstance(X, np.ndarray):
            if X.ndim != 3:
                raise LowdataError(f"expected samples shaped (n, locations, features), got {X.shape}")
            n = len(X)
        elif n is None:
            raise LowdataError("fitting on chunks needs the total number of samples n")
        if n < 2:
            raise LowdataError(f"a covariance needs at least 2 training samples, got {n}")
        chunks = as_chunks(X, self.chunk)
        first = next(chunks, None)
        if first is None or np.ndim(first) != 3 or len(first) == 0:
            raise LowdataError(f"no training samples in the first chunk (expected {n} samples shaped (n, locations, "
                               f"features)), got {None if first is None else np.shape(first)}")
        L, d = first.shape[1], first.shape[2]
        if self.estimator == "empirical":
            return self._fitted(n, L, d, fit_empirical(*centered_samples(first, chunks, n, L, d)))
        if n <= d and L > 1:  # a bank's samples are held anyway: fitted a block at a time
            X, location = centered_samples(first, chunks, n, L, d, np.float32)  # (L, n, d)
            return self._fitted(n, L, d, fit_blocks(LocationBlocks(np.swapaxes(X, 0, 1)), centered=location,
                                                    samples=X))
        if n <= d:
            # a bank keeps the centred samples as float32 (half the memory; the rounding is that of float32
            # features), a single Gaussian as float64
            return self._fitted(n, L, d, fit_woodbury(*centered_samples(first, chunks, n, L, d,
                                                                        np.float64 if L == 1 else np.float32)))
        return self._fitted(n, L, d, fit_full(first, chunks, n, L, d))

    def fit_sums(self, sums: GramSums) -> "GaussianBank":
        """Ledoit-Wolf for every location from :class:`GramSums` (the Cholesky route, whatever ``n``; the
        sums are left as they are, for the next, larger set)."""
        if self.estimator != "ledoit-wolf":
            raise LowdataError("a bank is fitted from running sums with the ledoit-wolf estimator only")
        if sums.n < 2:
            raise LowdataError(f"a covariance needs at least 2 training samples, got {sums.n}")
        return self._fitted(sums.n, sums.L, sums.d, fit_sums(sums))

    # --------------------------------------------------------------------------------------- state
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted bank as JSON-able parameters and named arrays (:meth:`from_state` restores it
        exactly: the same distances to the last bit)."""
        if not hasattr(self, "form"):
            raise LowdataError("the Gaussian bank is not fitted")
        extra, form_arrays = self.form.state()
        params = {"estimator": self.estimator, "chunk": self.chunk, "route": self.route, "n": int(self.n_),
                  "locations": int(self.L_), "features": int(self.d_), **extra}
        return params, {"location": self.location_, "shrinkage": self.shrinkage_, **form_arrays}

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray], prefix: str = "") -> "GaussianBank":
        """A fitted bank from :meth:`get_state`'s output; shapes are checked against the parameters. ``prefix``:
        the name its arrays have in the model file (``level0``, ``bank``), for the errors."""
        bank = cls(params["estimator"], chunk=int(params["chunk"]))
        n, L, d = int(params["n"]), int(params["locations"]), int(params["features"])
        if params["route"] not in FORMS:
            raise LowdataError(f"unknown Gaussian bank route {params['route']!r}")
        form = FORMS[params["route"]]
        expect = {"location": (L, d), "shrinkage": (L,), **form.shapes(params, arrays, n, L, d)}
        for name, shape in expect.items():
            stored = f"{prefix}.{name}" if prefix else name
            if name not in arrays:
                raise LowdataError(f"the Gaussian bank{' ' + prefix if prefix else ''} lacks the array {stored!r}")
            if tuple(arrays[name].shape) != shape:
                raise LowdataError(f"the array {stored!r} has shape {tuple(arrays[name].shape)}, expected {shape} "
                                   f"({L} locations x {d} features, {n} training samples, as the parameters say)")
        return bank._fitted(n, L, d, (arrays["location"], arrays["shrinkage"], form.restore(params, arrays)))

    # --------------------------------------------------------------------------------------- score
    def mahalanobis(self, Z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances ``(T, L)`` of samples ``(T, L, d)`` to each location's Gaussian."""
        if Z.ndim != 3 or Z.shape[1:] != (self.L_, self.d_):
            raise LowdataError(f"expected samples shaped (n, {self.L_}, {self.d_}), got {Z.shape}")
        out = np.empty((len(Z), self.L_))
        for i in range(0, len(Z), self.chunk):
            z = np.swapaxes(Z[i:i + self.chunk], 0, 1) - self.location_[:, None, :]  # (L, t, d) float64
            out[i:i + self.chunk] = self.form.quad(z).T
        return out

    def mahalanobis_blocks(self, src: LocationBlocks) -> np.ndarray:
        """The distances of :meth:`mahalanobis` for samples read a block of locations at a time (every sample
        of a few locations: one triangular solve per location for all samples, instead of one per chunk of
        samples: 2.5 to 3.4 times faster for PaDiM's 576 x 592 banks, ``benchmarks/padim_score.py``). The
        values are those of :meth:`mahalanobis` but for the last bit or two where BLAS blocks a product by
        its number of columns (1e-14 of distances near 600). Memory: one float64 block of at most
        :data:`BLOCK_BYTES`."""
        if (src.L, src.d) != (self.L_, self.d_):
            raise LowdataError(f"expected samples of {self.L_} locations x {self.d_} features, got {src.L} x {src.d}")
        out = np.empty((src.n, self.L_))
        step = int(max(1, min(BLOCK, BLOCK_BYTES // max(1, src.n * src.d * 8))))
        for j0 in range(0, self.L_, step):
            j1 = min(j0 + step, self.L_)
            z = src(j0, j1) - self.location_[j0:j1, None, :]  # (l, T, d) float64
            out[:, j0:j1] = self.form.quad(z, j0).T
        return out
