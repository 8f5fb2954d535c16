"""The fits of a Gaussian bank, as functions: each takes the samples and returns ``(location, shrinkage, form)``,
the means ``(L, d)``, the shrinkages ``(L,)`` and the fitted form (:mod:`lowdata.detectors.gaussian_forms`).
:class:`lowdata.detectors.gaussian.GaussianBank` chooses among them (its docstring says when each runs)."""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np
from scipy import linalg

from ..core.errors import LowdataError
from .covariance import BLOCK, EPS, factor_in_place, fourth_moment, lower_cholesky, rechunk, shrinkage
from .gaussian_forms import CholeskyFactors, Precision, WoodburyCholesky, WoodburyInverse
from .location_blocks import GramSums, LocationBlocks


def chunk_checker(L: int, d: int):
    """A check that each chunk of samples is shaped ``(b, L, d)``."""
    def check(c: np.ndarray, start: int) -> None:
        if c.ndim != 3 or c.shape[1:] != (L, d):
            raise LowdataError(f"training samples {start}..: expected chunks shaped (b, {L}, {d}), got {c.shape}")
    return check


def fit_blocks(src: LocationBlocks, centered: np.ndarray | None = None, samples: np.ndarray | None = None):
    """Ledoit-Wolf for every location, a block of locations at a time (the module docstring of
    :mod:`lowdata.detectors.gaussian`). ``centered``: the samples are already centred on this mean, and
    ``samples`` holds them location-major (the streamed Woodbury case: kept as the model's samples, not
    copied)."""
    n, L, d = src.n, src.L, src.d
    # the cheaper route: Woodbury's float64 n x n products cost 2 n^2 d against the float32 d x d Gram's
    # d^2 n, and its factors n^3 / 3 against d^3 / 3: Woodbury while n <= d / 2
    woodbury = 2 * n <= d
    location = np.empty((L, d)) if centered is None else centered
    shrink = np.empty(L)
    eig, pinv = {}, {}
    if woodbury:
        X = np.empty((L, n, d), np.float32) if samples is None else samples  # centred, location-major
        A, B, R = np.empty(L), np.empty(L), np.empty(L)
        factors = np.empty((L, n, n))  # Cholesky factors of I + (b/a) K
    else:
        factors = np.empty((L, d, d))  # Cholesky factors of the shrunk covariances
    step, gram = src.block_size(), None
    for j0 in range(0, L, step):
        j1 = min(j0 + step, L)
        xt = src(j0, j1)  # (l, n, d), the source's buffer: modified in place
        if centered is None:  # centred on the block's float64 mean; float32 from here on
            mean = xt.mean(axis=1, dtype=np.float64)
            location[j0:j1] = mean
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
                X[j0:j1] = xt
            # K in float64: the shrinkage's beta is a difference that cancels exactly at n = 2 (scikit-learn
            # gives 0 there, and the distances are pinvh's); float32 products would leave 1e-7 of noise
            xw = X[j0:j1].astype(np.float64)
            K = np.matmul(xw, np.swapaxes(xw, 1, 2))  # (l, n, n)
            fro2 = np.einsum("lij,lij->l", K, K) / n ** 2
            s = shrinkage(n, d, tr, fro2, q4)
            a, b = s * tr / d, (1.0 - s) / n
            top = a + b * sq.sum(axis=1)  # >= the largest eigenvalue of Sigma (only sets the pinvh cut-off)
            singular = a <= d * EPS * top
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(singular, 0.0, b / a)
            for j in np.flatnonzero(singular):
                eig[j0 + int(j)] = np.linalg.eigh(K[j])
            M = factors[j0:j1]
            np.multiply(K, r[:, None, None], out=M)
            M[:, np.arange(n), np.arange(n)] += 1.0
            for j, ok in enumerate(lower_cholesky(M)):
                if not ok:  # I + rK is positive definite in exact arithmetic: rounding alone fails it
                    raise LowdataError(f"the inner Woodbury matrix of location {j0 + j} is not positive "
                                       "definite (non-finite or huge features?)")
            A[j0:j1], B[j0:j1], R[j0:j1] = a, b, r
        else:
            G = factors[j0:j1]  # the block's covariances, then their factors, made in place
            if gram is None or gram.shape[0] != j1 - j0:
                gram = np.empty((j1 - j0, d, d), np.float32)  # reused block after block
            g = np.matmul(np.swapaxes(xt, 1, 2), xt, out=gram)  # C^T C: float32 products
            fro2 = np.einsum("lij,lij->l", g, g, dtype=np.float64) / float(n) ** 2
            s = shrinkage(n, d, tr, fro2, q4)
            np.multiply(g, ((1.0 - s) / n)[:, None, None], out=G)  # float64 from here: one pass
            G[:, np.arange(d), np.arange(d)] += (s * tr / d)[:, None]
            def remake(j, xt=xt, s=s, tr=tr):  # the shrunk covariance of location j0 + j, from its samples
                xj = xt[j].astype(np.float64)
                return (1.0 - s[j]) * (xj.T @ xj) / n + np.eye(d) * (s[j] * tr[j] / d)

            factor_in_place(G, j0, remake, pinv)
        shrink[j0:j1] = s
    form = WoodburyCholesky(X, A, B, eig, factors, R) if woodbury else CholeskyFactors(factors, pinv)
    return location, shrink, form


def fit_sums(sums: GramSums):
    """Ledoit-Wolf for every location from :class:`GramSums` (the Cholesky route, whatever ``n``; the sums are
    left as they are, for the next, larger set)."""
    n, L, d = sums.n, sums.L, sums.d
    delta = sums.s1 / n  # the mean minus the shift
    location = sums.c + delta
    shrink, pinv = np.empty(L), {}
    factors = np.empty((L, d, d))
    diag = np.arange(d)
    for j0 in range(0, L, BLOCK):
        j1 = min(j0 + BLOCK, L)
        dl = delta[j0:j1]
        S = factors[j0:j1]
        np.multiply(sums.gram[j0:j1], 1.0 / n, out=S)
        S -= dl[:, :, None] * dl[:, None, :]  # the covariance about the mean
        m = np.einsum("ld,ld->l", dl, dl)
        b2 = np.einsum("ld,ld->l", dl, np.matmul(sums.gram[j0:j1], dl[:, :, None])[:, :, 0])  # sum ((x-c).delta)^2
        tr = np.trace(S, axis1=1, axis2=2)
        q4 = fourth_moment(n, sums.a1[j0:j1], sums.a2[j0:j1], b2, np.einsum("ld,ld->l", sums.t[j0:j1], dl), m)
        fro2 = np.einsum("lij,lij->l", S, S)
        sh = shrinkage(n, d, tr, fro2, q4)
        S *= (1.0 - sh)[:, None, None]
        S[:, diag, diag] += (sh * tr / d)[:, None]
        def remake(j, j0=j0, sh=sh, tr=tr):  # the shrunk covariance of location j0 + j, from the sums
            k = j0 + j
            cov = sums.gram[k] / n - np.outer(delta[k], delta[k])
            return (1.0 - sh[j]) * cov + np.eye(d) * (sh[j] * tr[j] / d)

        factor_in_place(S, j0, remake, pinv)
        shrink[j0:j1] = sh
    return location, shrink, CholeskyFactors(factors, pinv)


def centered_samples(first: np.ndarray, chunks: Iterator[np.ndarray], n: int, L: int, d: int,
                     dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """All samples, location-major ``(L, n, d)``, minus their float64 mean; and that mean."""
    X = np.empty((L, n, d), dtype)
    # samples are shifted by the first chunk's float64 mean before any cast, so that a large
    # common offset does not eat the float32 digits; the exact mean is removed afterwards
    # the shift is rounded to the storage type and kept exactly as rounded, so float32 input is
    # shifted in float32 (one rounding of the small difference) without float64 copies
    shift = first.mean(axis=0, dtype=np.float64).astype(dtype).astype(np.float64)
    shift_c = shift.astype(first.dtype if first.dtype in (np.float32, np.float64) else np.float64)
    total = np.zeros((L, d))
    check, i = chunk_checker(L, d), 0
    for c in itertools.chain([first], chunks):
        check(c, i)
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
    rest_x = rest.astype(dtype)
    for j0 in range(0, L, BLOCK):
        X[j0:j0 + BLOCK] -= rest_x[j0:j0 + BLOCK, None, :]
    return X, shift + rest


def fit_empirical(X: np.ndarray, location: np.ndarray):
    """``np.cov(bias=True)`` and ``pinvh`` of the centred samples ``X`` ``(L, n, d)``, as scikit-learn computes
    them (two passes, float64)."""
    L, n, d = X.shape
    P = np.empty((L, d, d))
    for j in range(L):
        xj = X[j].astype(np.float64)
        P[j] = linalg.pinvh(xj.T @ xj / n, check_finite=False)
    return location, np.zeros(L), Precision(P)


def fit_woodbury(X: np.ndarray, location: np.ndarray):
    """Ledoit-Wolf by the Woodbury identity on the centred samples ``X`` ``(L, n, d)``, ``n <= d``: the inverse
    of the inner ``n x n`` matrix kept whole."""
    L, n, d = X.shape
    shrink, A, B = np.empty(L), np.empty(L), np.empty(L)
    Minv = np.empty((L, n, n))
    eig = {}
    for j0 in range(0, L, BLOCK):  # a block of locations at a time: float64 temporaries stay small
        xb = X[j0:j0 + BLOCK].astype(np.float64)
        K = xb @ np.swapaxes(xb, 1, 2)  # (l, n, n)
        sq = np.einsum("lii->li", K)  # |xc_k|^2
        tr = sq.sum(axis=1) / n
        fro2 = np.einsum("lij,lij->l", K, K) / n ** 2
        s = shrinkage(n, d, tr, fro2, (sq ** 2).sum(axis=1))
        a = s * tr / d
        b = (1.0 - s) / n
        shrink[j0:j0 + BLOCK], A[j0:j0 + BLOCK], B[j0:j0 + BLOCK] = s, a, b
        top = a + b * sq.sum(axis=1)  # >= the largest eigenvalue of Sigma (only sets the pinvh cut-off)
        singular = a <= d * EPS * top
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(singular, 0.0, b / a)[:, None, None]
        # (a/b I + K)^-1 = (b/a) (I + (b/a) K)^-1: this scaled form is fine when b = 0 (shrinkage 1)
        M = K * r
        M[:, np.arange(n), np.arange(n)] += 1.0
        Minv[j0:j0 + BLOCK] = np.linalg.inv(M) * r
        for j in np.flatnonzero(singular):
            eig[j0 + int(j)] = np.linalg.eigh(K[j])
    return location, shrink, WoodburyInverse(X, A, B, eig, Minv)


def fit_full(first: np.ndarray, chunks: Iterator[np.ndarray], n: int, L: int, d: int):
    """Ledoit-Wolf from the ``d x d`` covariance accumulated in chunks of samples (``n > d``): memory does not
    grow with ``n``."""
    shift = first.mean(axis=0, dtype=np.float64)  # (L, d)
    # one Gaussian (Mahalanobis): float64 throughout; a bank (PaDiM): float32 products, float64 sums
    gram_dtype = np.float64 if L == 1 else np.float32
    s1 = np.zeros((L, d))
    G = np.zeros((L, d, d))
    sq1 = np.zeros(L)
    sq2 = np.zeros(L)
    sqy = np.zeros((L, d))
    count = 0
    # chunks are gathered to >= 256 samples per update: each update reads and writes all of G, so
    # few large products are far faster than many thin ones
    for c in rechunk(itertools.chain([first], chunks), 256, chunk_checker(L, d)):
        for j0 in range(0, L, BLOCK):  # float64 temporaries for a block of locations only
            blk = slice(j0, j0 + BLOCK)
            y = np.swapaxes(c[:, blk], 0, 1) - shift[blk, None, :]  # (l, b, d) float64
            yf = y.astype(gram_dtype)
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
    location = shift + m
    S = G  # the covariance is made in place, a block of locations at a time: no second L x d x d array
    for j0 in range(0, L, BLOCK):
        mb = m[j0:j0 + BLOCK]
        S[j0:j0 + BLOCK] /= n
        S[j0:j0 + BLOCK] -= mb[:, :, None] * mb[:, None, :]
    del G
    c2 = (m * m).sum(axis=1)
    sum_p2 = (np.einsum("lij,lj->li", S, m) * m).sum(axis=1) * n + n * c2 ** 2  # m^T (sum y y^T) m
    q4 = fourth_moment(n, sq1, sq2, sum_p2, (sqy * m).sum(axis=1), c2)
    tr = np.einsum("lii->l", S)
    fro2 = np.einsum("lij,lij->l", S, S)
    s = shrinkage(n, d, tr, fro2, q4)
    mu = tr / d
    for j0 in range(0, L, BLOCK):
        S[j0:j0 + BLOCK] *= (1.0 - s[j0:j0 + BLOCK])[:, None, None]
    S[:, np.arange(d), np.arange(d)] += (s * mu)[:, None]
    if L > 1:  # a bank: Cholesky factors, distances by triangular solves
        pinv = {}
        for j0 in range(0, L, BLOCK):
            block = S[j0:j0 + BLOCK]
            kept = block.copy()  # a matrix that fails is partly overwritten: its pinvh is taken from the copy
            factor_in_place(block, j0, kept.__getitem__, pinv)
        return location, s, CholeskyFactors(S, pinv)
    # one Gaussian: the precision stays float64 (a float32 copy loses up to 2e-4 when the covariance's condition
    # number nears 1e6), inverted in place a block of locations at a time
    for j0 in range(0, L, BLOCK):
        try:
            S[j0:j0 + BLOCK] = np.linalg.inv(S[j0:j0 + BLOCK])
        except np.linalg.LinAlgError:
            for j in range(j0, min(j0 + BLOCK, L)):
                S[j] = linalg.pinvh(S[j], check_finite=False)
    return location, s, Precision(S)
