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
"""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator, Sequence

import numpy as np
from scipy import linalg

from ..core import schema as S
from ..core.errors import LowdataError
from ..core.grids import AlignedLevels

ESTIMATORS = ("empirical", "ledoit-wolf")
_EPS = np.finfo(np.float64).eps
_BLOCK = 32  # locations per block of float64 work
BLOCK_BYTES = 1 << 27  # a block of locations of every training sample (float32) is at most this large (128 MiB)


def bank_schema() -> S.Dict:
    """The schema of :meth:`GaussianBank.get_state`'s parameters (checked before a saved bank is used)."""
    return S.Dict({"estimator": S.Str(ESTIMATORS), "chunk": S.Int(1, 1 << 20), "route": S.Str(("full", "woodbury", "cholesky")),
                   "n": S.Int(2, 10 ** 7), "locations": S.Int(1, 1 << 20), "features": S.Int(1, 1 << 16),
                   "singular": S.List(S.Int(0, 1 << 20)), "pinvh": S.List(S.Int(0, 1 << 20))},
                  optional=("singular", "pinvh"))


def as_chunks(X: np.ndarray | Iterable[np.ndarray], chunk: int = 64) -> Iterator[np.ndarray]:
    """Chunks ``(b, L, d)`` of an ``(n, L, d)`` array, or the given iterable of such chunks."""
    if isinstance(X, np.ndarray):
        for i in range(0, len(X), chunk):
            yield X[i:i + chunk]
    else:
        yield from X


def _shrinkage(n: int, d: int, tr: np.ndarray, fro2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """scikit-learn's Ledoit-Wolf shrinkage from ``tr(S)``, ``|S|_F^2`` and ``sum_k |xc_k|^4``, per location."""
    if d == 1:
        return np.zeros_like(tr)
    mu = tr / d
    beta = (q2 / n - fro2) / (d * n)
    delta = (fro2 - 2.0 * mu * tr + d * mu ** 2) / d
    beta = np.minimum(beta, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(beta == 0, 0.0, beta / delta)


def _pinvh_quad(evals: np.ndarray, proj2: np.ndarray, rest: np.ndarray, d: int) -> np.ndarray:
    """``z^T pinvh(Sigma) z`` from Sigma's eigenvalues along known directions (``evals``, with the squared
    projections ``proj2``) and one eigenvalue ``rest[0]`` on the orthogonal complement (energy ``rest[1]``)."""
    a, energy = rest
    top = max(float(evals.max(initial=0.0)), a)
    cut = d * _EPS * top
    keep = evals > cut
    q = (proj2[:, keep] / evals[keep]).sum(axis=1)
    if a > cut:
        q = q + energy / a
    return q


def _rechunk(chunks: Iterable[np.ndarray], least: int, check) -> Iterator[np.ndarray]:
    """Consecutive chunks joined until each has at least ``least`` samples (the last may have fewer)."""
    held, size, seen = [], 0, 0
    for c in chunks:
        check(c, seen)
        seen += len(c)
        held.append(c)
        size += len(c)
        if size >= least:
            yield held[0] if len(held) == 1 else np.concatenate(held)
            held, size = [], 0
    if held:
        yield held[0] if len(held) == 1 else np.concatenate(held)


class LocationBlocks:
    """``n`` samples ``(n, L, d)`` read a block of locations at a time: an array, or the rows ``rows`` of the
    concatenation of one or more parts (in memory or memory-mapped: the feature packs of the study's
    originals and copies), never copied whole. A part is an ``(N_i, L, d)`` array or an
    :class:`~lowdata.core.grids.AlignedLevels` (levels stored unaligned, aligned on read; ``L = H * W``)."""

    def __init__(self, X: "np.ndarray | AlignedLevels | Sequence", rows: np.ndarray | None = None):
        parts = [X] if isinstance(X, (np.ndarray, AlignedLevels)) else list(X)
        shapes = [self._shape(p) for p in parts]
        if not parts or any(s is None or s[1:] != shapes[0][1:] for s in shapes):
            raise LowdataError(f"expected samples shaped (n, locations, features), got {[np.shape(p) for p in parts]}")
        if rows is None and len(parts) > 1:
            rows = np.arange(sum(s[0] for s in shapes))
        self.parts, self.dtype = parts, np.result_type(*[p.dtype for p in parts])
        self.L, self.d = shapes[0][1], shapes[0][2]
        if rows is None:
            self.n, self._where = shapes[0][0], None
        else:
            rows = np.asarray(rows, dtype=np.intp)
            starts = np.cumsum([0] + [s[0] for s in shapes])
            if len(rows) and (rows.min() < 0 or rows.max() >= starts[-1]):
                raise LowdataError(f"rows {rows.min()}..{rows.max()} of {starts[-1]} samples")
            part = np.searchsorted(starts, rows, side="right") - 1
            self.n = len(rows)
            # per part: the rows read from it and where they go in a block (one fancy read per part)
            self._where = [(p, rows[part == p] - starts[p], np.flatnonzero(part == p)) for p in np.unique(part)]
        self._buf = None

    @staticmethod
    def _shape(p) -> tuple[int, int, int] | None:
        if isinstance(p, AlignedLevels):
            n, H, W, D = p.shape
            return (n, H * W, D)
        return tuple(np.shape(p)) if np.ndim(p) == 3 else None

    def __call__(self, j0: int, j1: int) -> np.ndarray:
        """``(j1 - j0, n, d)``, location-major and C-contiguous (each location's ``n x d`` samples are one
        matrix for BLAS: the float32 Gram of 550 x 592 runs 4x faster than on the sample-major view):
        every sample at locations ``j0..j1-1``, in a buffer of this object's (the previous block's values
        are overwritten: use a block before asking for the next)."""
        l = j1 - j0
        if self._buf is None or self._buf.shape[0] != l:
            self._buf = np.empty((l, self.n, self.d), self.dtype)  # reused block after block
        out = self._buf
        if self._where is None:
            out[...] = np.swapaxes(self._read(self.parts[0], slice(None), j0, j1), 0, 1)
        else:  # part by part: the rows of each in one read
            for p, rows, pos in self._where:
                block = self._read(self.parts[p], rows, j0, j1)  # (k, l, d)
                if len(pos) == self.n:  # every row from this part, in order
                    out[...] = np.swapaxes(block, 0, 1)
                else:
                    out[:, pos] = np.swapaxes(block, 0, 1)
        return out

    @staticmethod
    def _read(part, rows, j0: int, j1: int) -> np.ndarray:
        if isinstance(part, AlignedLevels):
            return part.locations(rows, j0, j1)
        return part[rows, j0:j1]

    def block_size(self) -> int:
        """Locations per block: the block of every sample stays under :data:`BLOCK_BYTES` (float32)."""
        return int(max(1, min(_BLOCK, BLOCK_BYTES // max(1, self.n * self.d * 4))))


def _lower_cholesky(A: np.ndarray) -> list[bool]:
    """``(l, m, m)`` symmetric positive definite float64 matrices (C-ordered) replaced in place by their lower
    Cholesky factors (LAPACK's ``dpotrf`` one matrix at a time, on the Fortran-ordered transpose: faster than
    the batched ``numpy.linalg.cholesky``); per matrix, whether it was positive definite (when not, it is
    left partly overwritten)."""
    from scipy.linalg.lapack import dpotrf

    ok = []
    for j in range(len(A)):  # A[j].T: the same symmetric matrix, Fortran-ordered, factored in place (no copy)
        _, info = dpotrf(A[j].T, lower=0, clean=1, overwrite_a=1)
        ok.append(info == 0)
    return ok


def _solve_lower(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``C^-1 B`` ``(m, t)`` for a C-ordered lower-triangular ``C`` ``(m, m)`` and a C-ordered ``B`` ``(m, t)``
    (BLAS ``dtrsm`` from the right on the Fortran-ordered transposes: ``X C^T = B^T``, nothing copied)."""
    from scipy.linalg.blas import dtrsm

    return dtrsm(1.0, C.T, B.T, side=1, lower=0, trans_a=0).T


class GramSums:
    """Running sums of a bank's samples, so that a nested series of training sets (each the previous plus
    some samples: the study's ``--subsets nested``) is fitted by adding the new samples only.

    Per location, about the shift ``c`` (the first samples' mean: the sums do not cancel): ``n``, ``sum (x -
    c)``, the float64 sum of the float32 Gram products ``(x - c)(x - c)^T``, and for Ledoit-Wolf's
    ``sum_k |x_k - mean|^4``, with ``a_k = |x_k - c|^2``: ``sum a_k``, ``sum a_k^2`` and ``sum a_k (x_k - c)``
    (the fourth moments about the final mean follow from these and the Gram sums, exactly in exact
    arithmetic). Memory: ``L d^2`` float64 (1.6 GB for 576 x 592), besides the fitted bank."""

    def __init__(self):
        self.n = 0

    def add(self, src: LocationBlocks) -> "GramSums":
        L, d = src.L, src.d
        if self.n == 0:
            self.L, self.d = L, d
            self.c = np.empty((L, d))
            self.s1, self.t = np.zeros((L, d)), np.zeros((L, d))
            self.gram = np.zeros((L, d, d))
            self.a1, self.a2 = np.zeros(L), np.zeros(L)
        elif (L, d) != (self.L, self.d):
            raise LowdataError(f"samples of {L} locations x {d} features added to sums of {self.L} x {self.d}")
        step, g = src.block_size(), None
        for j0 in range(0, L, step):
            j1 = min(j0 + step, L)
            xt = src(j0, j1)
            if self.n == 0:
                self.c[j0:j1] = xt.mean(axis=1, dtype=np.float64)
            if xt.dtype == np.float32:
                xt -= self.c[j0:j1].astype(np.float32)[:, None, :]
            else:
                xt = (xt - self.c[j0:j1][:, None, :]).astype(np.float32)
            if g is None or g.shape[0] != j1 - j0:
                g = np.empty((j1 - j0, d, d), np.float32)
            self.gram[j0:j1] += np.matmul(np.swapaxes(xt, 1, 2), xt, out=g)
            self.s1[j0:j1] += xt.sum(axis=1, dtype=np.float64)
            a = np.einsum("lnd,lnd->ln", xt, xt, dtype=np.float64)
            self.a1[j0:j1] += a.sum(axis=1)
            self.a2[j0:j1] += (a ** 2).sum(axis=1)
            self.t[j0:j1] += np.einsum("ln,lnd->ld", a, xt.astype(np.float64))
        self.n += src.n
        return self


class GaussianBank:
    """``L`` Gaussians on ``d`` features, fitted on ``(n, L, d)`` samples (an array or chunks of one).

    ``route`` (after :meth:`fit`): ``"woodbury"`` or ``"full"``; ``shrinkage_`` per location
    (Ledoit-Wolf), ``location_`` ``(L, d)``.
    """

    def __init__(self, estimator: str = "ledoit-wolf", chunk: int = 64):
        if estimator not in ESTIMATORS:
            raise LowdataError(f"unknown covariance estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")
        self.estimator = estimator
        self.chunk = chunk

    # ----------------------------------------------------------------------------------------- fit
    def fit(self, X: "np.ndarray | LocationBlocks | Iterable[np.ndarray]", n: int | None = None) -> "GaussianBank":
        """Fit on ``X``: an ``(n, L, d)`` array, :class:`LocationBlocks`, or an iterable of ``(b, L, d)`` chunks
        totalling ``n``."""
        if isinstance(X, np.ndarray) and X.ndim == 3 and X.shape[1] > 1 and self.estimator == "ledoit-wolf":
            X = LocationBlocks(X)
        if isinstance(X, LocationBlocks):
            return self._fit_blocks(X)
        if isinstance(X, np.ndarray):
            if X.ndim != 3:
                raise LowdataError(f"expected samples shaped (n, locations, features), got {X.shape}")
            n = len(X)
        elif n is None:
            raise LowdataError("fitting on chunks needs the total number of samples n")
        if n < 2:
            raise LowdataError(f"a covariance needs at least 2 training samples, got {n}")
        self.n_ = n
        chunks = as_chunks(X, self.chunk)
        first = next(chunks, None)
        if first is None or np.ndim(first) != 3 or len(first) == 0:
            raise LowdataError(f"no training samples in the first chunk (expected {n} samples shaped (n, locations, "
                               f"features)), got {None if first is None else np.shape(first)}")
        self.L_, self.d_ = first.shape[1], first.shape[2]
        if self.estimator == "empirical":
            self._fit_empirical(first, chunks)
        elif n <= self.d_ and self.L_ > 1:  # a bank's samples are held anyway: fitted a block at a time
            X = self._centered(first, chunks, np.float32)  # (L, n, d)
            return self._fit_blocks(LocationBlocks(np.swapaxes(X, 0, 1)), centered=self.location_, samples=X)
        elif n <= self.d_:
            self._fit_woodbury(first, chunks)
        else:
            self._fit_full(first, chunks)
        return self

    def _fit_blocks(self, src: LocationBlocks, centered: np.ndarray | None = None,
                    samples: np.ndarray | None = None) -> "GaussianBank":
        """Ledoit-Wolf for every location, a block of locations at a time (see the module docstring).
        ``centered``: the samples are already centred on this mean, and ``samples`` holds them location-major
        (the streamed Woodbury case: kept as the model's samples, not copied)."""
        n, L, d = src.n, src.L, src.d
        if n < 2:
            raise LowdataError(f"a covariance needs at least 2 training samples, got {n}")
        self.n_, self.L_, self.d_ = n, L, d
        # the cheaper route: Woodbury's float64 n x n products cost 2 n^2 d against the float32 d x d Gram's
        # d^2 n, and its factors n^3 / 3 against d^3 / 3: Woodbury while n <= d / 2
        woodbury = 2 * n <= d
        self.route = "woodbury" if woodbury else "cholesky"
        self.location_ = np.empty((L, d)) if centered is None else centered
        self.shrinkage_ = np.empty(L)
        self._Keig, self._pinv = {}, {}
        if woodbury:
            self._X = np.empty((L, n, d), np.float32) if samples is None else samples  # centred, location-major
            self._a, self._b, self._r = np.empty(L), np.empty(L), np.empty(L)
            self._C = np.empty((L, n, n))  # Cholesky factors of I + (b/a) K
        else:
            self._C = np.empty((L, d, d))  # Cholesky factors of the shrunk covariances
        step, gram = src.block_size(), None
        for j0 in range(0, L, step):
            j1 = min(j0 + step, L)
            xt = src(j0, j1)  # (l, n, d), the source's buffer: modified in place
            if centered is None:  # centred on the block's float64 mean; float32 from here on
                mean = xt.mean(axis=1, dtype=np.float64)
                self.location_[j0:j1] = mean
                if xt.dtype == np.float32:
                    xt -= mean.astype(np.float32)[:, None, :]
                else:
                    xt = (xt - mean[:, None, :]).astype(np.float32)
            else:
                xt = xt.astype(np.float32, copy=False)
            # |xc_k|^2: float64 products for Woodbury (consistent with K, see below), float32 for the Cholesky route
            sq = np.einsum("lnd,lnd->ln", xt, xt, dtype=np.float64 if woodbury else np.float32).astype(np.float64)
            tr = sq.sum(axis=1) / n
            q4 = (sq ** 2).sum(axis=1)
            if woodbury:
                if samples is None:
                    self._X[j0:j1] = xt
                # K in float64: the shrinkage's beta is a difference that cancels exactly at n = 2 (scikit-learn
                # gives 0 there, and the distances are pinvh's); float32 products would leave 1e-7 of noise
                xw = self._X[j0:j1].astype(np.float64)
                K = np.matmul(xw, np.swapaxes(xw, 1, 2))  # (l, n, n)
                fro2 = np.einsum("lij,lij->l", K, K) / n ** 2
                s = _shrinkage(n, d, tr, fro2, q4)
                a, b = s * tr / d, (1.0 - s) / n
                top = a + b * sq.sum(axis=1)  # >= the largest eigenvalue of Sigma (only sets the pinvh cut-off)
                singular = a <= d * _EPS * top
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.where(singular, 0.0, b / a)
                for j in np.flatnonzero(singular):
                    self._Keig[j0 + int(j)] = np.linalg.eigh(K[j])
                M = self._C[j0:j1]
                np.multiply(K, r[:, None, None], out=M)
                M[:, np.arange(n), np.arange(n)] += 1.0
                for j, ok in enumerate(_lower_cholesky(M)):
                    if not ok:  # I + rK is positive definite in exact arithmetic: rounding alone fails it
                        raise LowdataError(f"the inner Woodbury matrix of location {j0 + j} is not positive "
                                           "definite (non-finite or huge features?)")
                self._a[j0:j1], self._b[j0:j1], self._r[j0:j1] = a, b, r
            else:
                G = self._C[j0:j1]  # the block's covariances, then their factors, made in place
                if gram is None or gram.shape[0] != j1 - j0:
                    gram = np.empty((j1 - j0, d, d), np.float32)  # reused block after block
                g = np.matmul(np.swapaxes(xt, 1, 2), xt, out=gram)  # C^T C: float32 products
                fro2 = np.einsum("lij,lij->l", g, g, dtype=np.float64) / float(n) ** 2
                s = _shrinkage(n, d, tr, fro2, q4)
                np.multiply(g, ((1.0 - s) / n)[:, None, None], out=G)  # float64 from here: one pass
                G[:, np.arange(d), np.arange(d)] += (s * tr / d)[:, None]
                def remake(j, xt=xt, s=s, tr=tr):  # the shrunk covariance of location j0 + j, from its samples
                    xj = xt[j].astype(np.float64)
                    return (1.0 - s[j]) * (xj.T @ xj) / n + np.eye(d) * (s[j] * tr[j] / d)

                self._factor(G, j0, remake)
            self.shrinkage_[j0:j1] = s
        return self

    def _factor(self, block: np.ndarray, j0: int, remake) -> None:
        """The shrunk covariances ``block`` (locations ``j0...``) replaced by their Cholesky factors; one that is
        not positive definite (shrinkage 0 and a singular covariance: constant features) gets scikit-learn's
        pinvh of ``remake(j)``, its covariance made again, and a zero factor."""
        for j, ok in enumerate(_lower_cholesky(block)):
            if not ok:
                self._pinv[j0 + j] = linalg.pinvh(remake(j), check_finite=False)
                block[j] = 0.0

    def fit_sums(self, sums: GramSums) -> "GaussianBank":
        """Ledoit-Wolf for every location from :class:`GramSums` (the Cholesky route, whatever ``n``; the
        sums are left as they are, for the next, larger set)."""
        if self.estimator != "ledoit-wolf":
            raise LowdataError("a bank is fitted from running sums with the ledoit-wolf estimator only")
        n, L, d = sums.n, sums.L, sums.d
        if n < 2:
            raise LowdataError(f"a covariance needs at least 2 training samples, got {n}")
        self.n_, self.L_, self.d_, self.route = n, L, d, "cholesky"
        delta = sums.s1 / n  # the mean minus the shift
        self.location_ = sums.c + delta
        self.shrinkage_, self._Keig, self._pinv = np.empty(L), {}, {}
        self._C = np.empty((L, d, d))
        diag = np.arange(d)
        for j0 in range(0, L, _BLOCK):
            j1 = min(j0 + _BLOCK, L)
            dl = delta[j0:j1]
            S = self._C[j0:j1]
            np.multiply(sums.gram[j0:j1], 1.0 / n, out=S)
            S -= dl[:, :, None] * dl[:, None, :]  # the covariance about the mean
            m = np.einsum("ld,ld->l", dl, dl)
            b2 = np.einsum("ld,ld->l", dl, np.matmul(sums.gram[j0:j1], dl[:, :, None])[:, :, 0])  # sum ((x-c).delta)^2
            tr = np.trace(S, axis1=1, axis2=2)
            q4 = (sums.a2[j0:j1] + 4.0 * b2 + n * m ** 2 - 4.0 * np.einsum("ld,ld->l", sums.t[j0:j1], dl)
                  + 2.0 * m * sums.a1[j0:j1] - 4.0 * n * m ** 2)
            fro2 = np.einsum("lij,lij->l", S, S)
            sh = _shrinkage(n, d, tr, fro2, q4)
            S *= (1.0 - sh)[:, None, None]
            S[:, diag, diag] += (sh * tr / d)[:, None]
            def remake(j, j0=j0, sh=sh, tr=tr):  # the shrunk covariance of location j0 + j, from the sums
                k = j0 + j
                cov = sums.gram[k] / n - np.outer(delta[k], delta[k])
                return (1.0 - sh[j]) * cov + np.eye(d) * (sh[j] * tr[j] / d)

            self._factor(S, j0, remake)
            self.shrinkage_[j0:j1] = sh
        return self

    def _centered(self, first: np.ndarray, chunks: Iterator[np.ndarray], dtype=np.float64) -> np.ndarray:
        """All samples, location-major ``(L, n, d)``, minus their float64 mean (sets ``location_``)."""
        n, d = self.n_, self.d_
        X = np.empty((self.L_, n, d), dtype)
        # samples are shifted by the first chunk's float64 mean before any cast, so that a large
        # common offset does not eat the float32 digits; the exact mean is removed afterwards
        # the shift is rounded to the storage type and kept exactly as rounded, so float32 input is
        # shifted in float32 (one rounding of the small difference) without float64 copies
        shift = first.mean(axis=0, dtype=np.float64).astype(dtype).astype(np.float64)
        shift_c = shift.astype(first.dtype if first.dtype in (np.float32, np.float64) else np.float64)
        total = np.zeros((self.L_, d))
        i = 0
        for c in itertools.chain([first], chunks):
            self._check_chunk(c, i)
            y = c - shift_c
            total += y.sum(axis=0, dtype=np.float64)
            X[:, i:i + len(c)] = np.swapaxes(y, 0, 1)
            i += len(c)
        if i != n:
            raise LowdataError(f"expected {n} training samples, got {i}")
        if dtype == np.float64:  # exactly as numpy's mean, for scikit-learn's semantics to the last digit
            rest = X.mean(axis=1)
        else:  # float32: the shifted samples' small mean, subtracted in place without float64 copies
            rest = total / n
        self.location_ = shift + rest
        rest_x = rest.astype(dtype)
        for j0 in range(0, self.L_, _BLOCK):
            X[j0:j0 + _BLOCK] -= rest_x[j0:j0 + _BLOCK, None, :]
        return X

    def _check_chunk(self, c: np.ndarray, start: int) -> None:
        if c.ndim != 3 or c.shape[1:] != (self.L_, self.d_):
            raise LowdataError(f"training samples {start}..: expected chunks shaped (b, {self.L_}, {self.d_}), "
                               f"got {c.shape}")

    def _fit_empirical(self, first: np.ndarray, chunks: Iterator[np.ndarray]) -> None:
        """``np.cov(bias=True)`` and ``pinvh``, computed as scikit-learn does (two passes, float64)."""
        X = self._centered(first, chunks)
        self.route, self.shrinkage_ = "full", np.zeros(self.L_)
        self._P = np.empty((self.L_, self.d_, self.d_))
        for j in range(self.L_):
            xj = X[j].astype(np.float64)
            self._P[j] = linalg.pinvh(xj.T @ xj / self.n_, check_finite=False)

    def _fit_woodbury(self, first: np.ndarray, chunks: Iterator[np.ndarray]) -> None:
        n, d, L = self.n_, self.d_, self.L_
        # a bank keeps the centred samples as float32 (half the memory; the rounding is that of
        # float32 features), a single Gaussian as float64
        X = self._centered(first, chunks, np.float64 if L == 1 else np.float32)
        self.route, self._X = "woodbury", X
        self.shrinkage_, self._a, self._b = np.empty(L), np.empty(L), np.empty(L)
        self._Minv = np.empty((L, n, n))
        self._Keig = {}
        for j0 in range(0, L, _BLOCK):  # a block of locations at a time: float64 temporaries stay small
            xb = X[j0:j0 + _BLOCK].astype(np.float64)
            K = xb @ np.swapaxes(xb, 1, 2)  # (l, n, n)
            sq = np.einsum("lii->li", K)  # |xc_k|^2
            tr = sq.sum(axis=1) / n
            fro2 = np.einsum("lij,lij->l", K, K) / n ** 2
            s = _shrinkage(n, d, tr, fro2, (sq ** 2).sum(axis=1))
            a = s * tr / d
            b = (1.0 - s) / n
            self.shrinkage_[j0:j0 + _BLOCK], self._a[j0:j0 + _BLOCK], self._b[j0:j0 + _BLOCK] = s, a, b
            top = a + b * sq.sum(axis=1)  # >= the largest eigenvalue of Sigma (only sets the pinvh cut-off)
            singular = a <= d * _EPS * top
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(singular, 0.0, b / a)[:, None, None]
            # (a/b I + K)^-1 = (b/a) (I + (b/a) K)^-1: this scaled form is fine when b = 0 (shrinkage 1)
            M = K * r
            M[:, np.arange(n), np.arange(n)] += 1.0
            self._Minv[j0:j0 + _BLOCK] = np.linalg.inv(M) * r
            for j in np.flatnonzero(singular):
                self._Keig[j0 + int(j)] = np.linalg.eigh(K[j])

    def _fit_full(self, first: np.ndarray, chunks: Iterator[np.ndarray]) -> None:
        n, L, d = self.n_, self.L_, self.d_
        shift = first.mean(axis=0, dtype=np.float64)  # (L, d)
        # one Gaussian (Mahalanobis): float64 throughout; a bank (PaDiM): float32 products, float64 sums
        self._gram_dtype = np.float64 if L == 1 else np.float32
        s1 = np.zeros((L, d))
        G = np.zeros((L, d, d))
        sq1 = np.zeros(L)
        sq2 = np.zeros(L)
        sqy = np.zeros((L, d))
        count = 0
        # chunks are gathered to >= 256 samples per update: each update reads and writes all of G, so
        # few large products are far faster than many thin ones
        for c in _rechunk(itertools.chain([first], chunks), 256, self._check_chunk):
            for j0 in range(0, L, _BLOCK):  # float64 temporaries for a block of locations only
                blk = slice(j0, j0 + _BLOCK)
                y = np.swapaxes(c[:, blk], 0, 1) - shift[blk, None, :]  # (l, b, d) float64
                yf = y.astype(self._gram_dtype)
                G[blk] += np.swapaxes(yf, 1, 2) @ yf
                q = np.einsum("lbd,lbd->lb", y, y)
                s1[blk] += y.sum(axis=1)
                sq1[blk] += q.sum(axis=1)
                sq2[blk] += (q ** 2).sum(axis=1)
                sqy[blk] += np.einsum("lb,lbd->ld", q, y)
            count += len(c)
        if count != n:
            raise LowdataError(f"expected {n} training samples, got {count}")
        m = s1 / n  # mean of the shifted samples
        self.location_ = shift + m
        S = G  # the covariance is made in place, a block of locations at a time: no second L x d x d array
        for j0 in range(0, L, _BLOCK):
            mb = m[j0:j0 + _BLOCK]
            S[j0:j0 + _BLOCK] /= n
            S[j0:j0 + _BLOCK] -= mb[:, :, None] * mb[:, None, :]
        del G
        self.route = "full"
        c2 = (m * m).sum(axis=1)
        # sum_k |y_k - m|^4 expanded: q_k = |y_k|^2, p_k = y_k . m
        sum_p2 = (np.einsum("lij,lj->li", S, m) * m).sum(axis=1) * n + n * c2 ** 2  # m^T (sum y y^T) m
        sum_qp = (sqy * m).sum(axis=1)
        q4 = sq2 + 4 * sum_p2 + n * c2 ** 2 - 4 * sum_qp + 2 * c2 * sq1 - 4 * c2 * n * c2
        tr = np.einsum("lii->l", S)
        fro2 = np.einsum("lij,lij->l", S, S)
        s = _shrinkage(n, d, tr, fro2, q4)
        self.shrinkage_ = s
        mu = tr / d
        for j0 in range(0, L, _BLOCK):
            S[j0:j0 + _BLOCK] *= (1.0 - s[j0:j0 + _BLOCK])[:, None, None]
        S[:, np.arange(d), np.arange(d)] += (s * mu)[:, None]
        if L > 1:  # a bank: Cholesky factors, distances by triangular solves
            self.route, self._C, self._pinv = "cholesky", S, {}
            for j0 in range(0, L, _BLOCK):
                block = S[j0:j0 + _BLOCK]
                kept = block.copy()  # a matrix that fails is partly overwritten: its pinvh is taken from the copy
                self._factor(block, j0, kept.__getitem__)
            return
        # one Gaussian: the precision stays float64 (a float32 copy loses up to 2e-4 when the covariance's condition
        # number nears 1e6), inverted in place a block of locations at a time
        for j0 in range(0, L, _BLOCK):
            try:
                S[j0:j0 + _BLOCK] = np.linalg.inv(S[j0:j0 + _BLOCK])
            except np.linalg.LinAlgError:
                for j in range(j0, min(j0 + _BLOCK, L)):
                    S[j] = linalg.pinvh(S[j], check_finite=False)
        self._P = S

    # --------------------------------------------------------------------------------------- state
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted bank as JSON-able parameters and named arrays (:meth:`from_state` restores it
        exactly: the same distances to the last bit)."""
        if not hasattr(self, "route"):
            raise LowdataError("the Gaussian bank is not fitted")
        params = {"estimator": self.estimator, "chunk": self.chunk, "route": self.route, "n": int(self.n_),
                  "locations": int(self.L_), "features": int(self.d_)}
        arrays = {"location": self.location_, "shrinkage": self.shrinkage_}
        if self.route == "full":
            arrays["precision"] = self._P
        elif self.route == "cholesky":
            arrays["cholesky"] = self._C
            params["pinvh"] = sorted(int(j) for j in self._pinv)
            arrays.update({f"pinvh_{j}": P for j, P in self._pinv.items()})
        else:
            arrays.update(samples=self._X, a=self._a, b=self._b)
            if hasattr(self, "_C"):
                arrays.update(inner_cholesky=self._C, ratio=self._r)
            else:  # a bank saved by lowdata 0.1 before its Cholesky route
                arrays["inner_inverse"] = self._Minv
            params["singular"] = sorted(int(j) for j in self._Keig)
            for j, (lam, U) in self._Keig.items():
                arrays[f"singular_{j}_values"], arrays[f"singular_{j}_vectors"] = lam, U
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray], prefix: str = "") -> "GaussianBank":
        """A fitted bank from :meth:`get_state`'s output; shapes are checked against the parameters. ``prefix``:
        the name its arrays have in the model file (``level0``, ``bank``), for the errors."""
        bank = cls(params["estimator"], chunk=int(params["chunk"]))
        n, L, d = int(params["n"]), int(params["locations"]), int(params["features"])
        bank.n_, bank.L_, bank.d_, bank.route = n, L, d, params["route"]
        expect = {"location": (L, d), "shrinkage": (L,)}
        if bank.route == "full":
            expect["precision"] = (L, d, d)
        elif bank.route == "cholesky":
            expect["cholesky"] = (L, d, d)
            for j in params.get("pinvh", []):
                expect[f"pinvh_{j}"] = (d, d)
        elif bank.route == "woodbury":
            expect.update(samples=(L, n, d), a=(L,), b=(L,))
            if "inner_cholesky" in arrays:
                expect.update(inner_cholesky=(L, n, n), ratio=(L,))
            else:
                expect["inner_inverse"] = (L, n, n)
            for j in params.get("singular", []):
                expect[f"singular_{j}_values"] = (n,)
                expect[f"singular_{j}_vectors"] = (n, n)
        else:
            raise LowdataError(f"unknown Gaussian bank route {bank.route!r}")
        for name, shape in expect.items():
            stored = f"{prefix}.{name}" if prefix else name
            if name not in arrays:
                raise LowdataError(f"the Gaussian bank{' ' + prefix if prefix else ''} lacks the array {stored!r}")
            if tuple(arrays[name].shape) != shape:
                raise LowdataError(f"the array {stored!r} has shape {tuple(arrays[name].shape)}, expected {shape} "
                                   f"({L} locations x {d} features, {n} training samples, as the parameters say)")
        bank.location_, bank.shrinkage_ = arrays["location"], arrays["shrinkage"]
        if bank.route == "full":
            bank._P = arrays["precision"]
        elif bank.route == "cholesky":
            bank._C = arrays["cholesky"]
            bank._pinv = {int(j): arrays[f"pinvh_{j}"] for j in params.get("pinvh", [])}
        else:
            bank._X, bank._a, bank._b = (arrays[k] for k in ("samples", "a", "b"))
            if "inner_cholesky" in arrays:
                bank._C, bank._r = arrays["inner_cholesky"], arrays["ratio"]
            else:
                bank._Minv = arrays["inner_inverse"]
            bank._Keig = {int(j): (arrays[f"singular_{j}_values"], arrays[f"singular_{j}_vectors"])
                          for j in params.get("singular", [])}
        return bank

    # --------------------------------------------------------------------------------------- score
    def mahalanobis(self, Z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances ``(T, L)`` of samples ``(T, L, d)`` to each location's Gaussian."""
        if Z.ndim != 3 or Z.shape[1:] != (self.L_, self.d_):
            raise LowdataError(f"expected samples shaped (n, {self.L_}, {self.d_}), got {Z.shape}")
        out = np.empty((len(Z), self.L_))
        for i in range(0, len(Z), self.chunk):
            z = np.swapaxes(Z[i:i + self.chunk], 0, 1) - self.location_[:, None, :]  # (L, t, d) float64
            out[i:i + self.chunk] = self._quad(z).T
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
        step = int(max(1, min(_BLOCK, BLOCK_BYTES // max(1, src.n * src.d * 8))))
        for j0 in range(0, self.L_, step):
            j1 = min(j0 + step, self.L_)
            z = src(j0, j1) - self.location_[j0:j1, None, :]  # (l, T, d) float64
            out[:, j0:j1] = self._quad(z, j0).T
        return out

    def _quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        """``(l, t)`` squared distances of ``z`` ``(l, t, d)``, the centred samples of locations ``at..at+l-1``."""
        l = len(z)
        if self.route == "full":
            return np.einsum("ltd,ltd->lt", z @ self._P[at:at + l], z)
        if self.route == "cholesky":  # |C^-1 z|^2, C the covariance's Cholesky factor
            q = np.empty(z.shape[:2])
            for i in range(l):
                j = at + i
                if j in self._pinv:
                    q[i] = np.einsum("td,td->t", z[i] @ self._pinv[j], z[i])
                else:
                    y = _solve_lower(self._C[j], z[i].T)
                    q[i] = np.einsum("dt,dt->t", y, y)
            return q
        if hasattr(self, "_C"):
            return self._woodbury_quad(z, at)
        q = np.empty(z.shape[:2])
        for b0 in range(0, l, _BLOCK):
            zb = z[b0:b0 + _BLOCK]
            j0 = at + b0
            zz = np.einsum("ltd,ltd->lt", zb, zb)
            w = self._X[j0:j0 + len(zb)].astype(np.float64) @ np.swapaxes(zb, 1, 2)  # (l, n, t)
            with np.errstate(divide="ignore", invalid="ignore"):
                q[b0:b0 + len(zb)] = (zz - np.einsum("lnt,lnt->lt", w, self._Minv[j0:j0 + len(zb)] @ w)) \
                    / self._a[j0:j0 + len(zb), None]
            for i in range(len(zb)):
                if j0 + i in self._Keig:
                    q[b0 + i] = self._singular_quad(j0 + i, *self._Keig[j0 + i], w[i], zz[i])
        return q

    def _woodbury_quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        """``(|z|^2 - r |C^-1 w|^2) / a`` with ``w = Xc z``, ``C`` the Cholesky factor of ``I + r K``."""
        q = np.empty(z.shape[:2])
        for b0 in range(0, len(z), _BLOCK):
            zb = z[b0:b0 + _BLOCK]
            j0 = at + b0
            zz = np.einsum("ltd,ltd->lt", zb, zb)
            w = self._X[j0:j0 + len(zb)].astype(np.float64) @ np.swapaxes(zb, 1, 2)  # (l, n, t)
            for i in range(len(zb)):
                j = j0 + i
                if j in self._Keig:
                    q[b0 + i] = self._singular_quad(j, *self._Keig[j], w[i], zz[i])
                    continue
                v = _solve_lower(self._C[j], w[i])
                with np.errstate(divide="ignore", invalid="ignore"):
                    q[b0 + i] = (zz[i] - self._r[j] * np.einsum("nt,nt->t", v, v)) / self._a[j]
        return q

    def _singular_quad(self, j: int, lam: np.ndarray, U: np.ndarray, w: np.ndarray, zz: np.ndarray) -> np.ndarray:
        """pinvh semantics where the shrunk covariance is singular (shrinkage 0, or all features constant)."""
        a, b = float(self._a[j]), float(self._b[j])
        pos = lam > self.n_ * _EPS * max(float(lam.max(initial=0.0)), 0.0)
        lam, U = lam[pos], U[:, pos]
        proj2 = (U.T @ w) ** 2 / lam[:, None]  # (v_i . z)^2, v_i the unit eigenvectors of Xc^T Xc
        inside = proj2.sum(axis=0)
        return _pinvh_quad(a + b * lam, proj2.T, (a, zz - inside), self.d_)
