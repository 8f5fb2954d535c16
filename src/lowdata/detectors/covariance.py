"""The arithmetic of the Gaussian banks, as pure functions: scikit-learn's Ledoit-Wolf shrinkage, the fourth
moment it needs from running sums, ``pinvh`` semantics along known eigen-directions, in-place Cholesky factors
and triangular solves, and the chunking of samples. :mod:`lowdata.detectors.gaussian_fit` fits with them,
:mod:`lowdata.detectors.gaussian_forms` scores with them."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
from scipy import linalg

EPS = np.finfo(np.float64).eps
BLOCK = 32  # locations per block of float64 work
BLOCK_BYTES = 1 << 27  # a block of locations of every training sample (float32) is at most this large (128 MiB)


def shrinkage(n: int, d: int, tr: np.ndarray, fro2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """scikit-learn's Ledoit-Wolf shrinkage from ``tr(S)``, ``|S|_F^2`` and ``sum_k |xc_k|^4``, per location."""
    if d == 1:
        return np.zeros_like(tr)
    mu = tr / d
    beta = (q2 / n - fro2) / (d * n)
    delta = (fro2 - 2.0 * mu * tr + d * mu ** 2) / d
    beta = np.minimum(beta, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(beta == 0, 0.0, beta / delta)


def fourth_moment(n: int, a1: np.ndarray, a2: np.ndarray, b2: np.ndarray, qy: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``sum_k |y_k - mean|^4`` per location from sums about a shift ``c`` (``y_k = x_k - c``, ``delta`` the
    mean minus the shift): ``a1 = sum |y_k|^2``, ``a2 = sum |y_k|^4``, ``b2 = sum (y_k . delta)^2``,
    ``qy = sum |y_k|^2 (y_k . delta)`` and ``m = |delta|^2`` (the square expanded; exact in exact arithmetic)."""
    return a2 + 4 * b2 + n * m ** 2 - 4 * qy + 2 * m * a1 - 4 * m * n * m


def pinvh_quad(evals: np.ndarray, proj2: np.ndarray, rest: np.ndarray, d: int) -> np.ndarray:
    """``z^T pinvh(Sigma) z`` from Sigma's eigenvalues along known directions (``evals``, with the squared
    projections ``proj2``) and one eigenvalue ``rest[0]`` on the orthogonal complement (energy ``rest[1]``)."""
    a, energy = rest
    top = max(float(evals.max(initial=0.0)), a)
    cut = d * EPS * top
    keep = evals > cut
    q = (proj2[:, keep] / evals[keep]).sum(axis=1)
    if a > cut:
        q = q + energy / a
    return q


def lower_cholesky(A: np.ndarray) -> list[bool]:
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


def factor_in_place(block: np.ndarray, j0: int, remake, pinv: dict[int, np.ndarray]) -> None:
    """The shrunk covariances ``block`` (locations ``j0...``) replaced by their Cholesky factors; one that is
    not positive definite (shrinkage 0 and a singular covariance: constant features) gets scikit-learn's
    pinvh of ``remake(j)``, its covariance made again, in ``pinv``, and a zero factor."""
    for j, ok in enumerate(lower_cholesky(block)):
        if not ok:
            pinv[j0 + j] = linalg.pinvh(remake(j), check_finite=False)
            block[j] = 0.0


def solve_lower(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``C^-1 B`` ``(m, t)`` for a C-ordered lower-triangular ``C`` ``(m, m)`` and a C-ordered ``B`` ``(m, t)``
    (BLAS ``dtrsm`` from the right on the Fortran-ordered transposes: ``X C^T = B^T``, nothing copied)."""
    from scipy.linalg.blas import dtrsm

    return dtrsm(1.0, C.T, B.T, side=1, lower=0, trans_a=0).T


def as_chunks(X: np.ndarray | Iterable[np.ndarray], chunk: int = 64) -> Iterator[np.ndarray]:
    """Chunks ``(b, L, d)`` of an ``(n, L, d)`` array, or the given iterable of such chunks."""
    if isinstance(X, np.ndarray):
        for i in range(0, len(X), chunk):
            yield X[i:i + chunk]
    else:
        yield from X


def rechunk(chunks: Iterable[np.ndarray], least: int, check) -> Iterator[np.ndarray]:
    """Consecutive chunks joined until each has at least ``least`` samples (the last may have fewer); ``check(c,
    start)`` sees each chunk first."""
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
