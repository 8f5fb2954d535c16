"""PatchCore (Roth et al. 2022, "Towards total recall in industrial anomaly detection"): a memory bank of
locally aware patch features, subsampled by a greedy coreset; a patch's anomaly score is the distance to
its nearest neighbour in the bank, an image's the largest over its patches, reweighted.

**Patch features.** The aligned maps every maps detector reads (the backbone's stages, here EfficientNet
stages 4, 6 and 7, on stage 4's grid: 24 x 24 at 380 px), each feature averaged over the 3 x 3 neighbourhood
of its grid cell (the cells inside the grid: a border cell averages its 4 or 6 neighbours, not zeros).
PatchCore takes the middle of a WideResNet (its layers 2 and 3 of 4), because the last layer is the most
ImageNet-specific and the coarsest (8 x 8). Our stages already stop at EfficientNet's stride 32, and stage 7
is not the network's head (a 1 x 1 convolution to 1280 features comes after it); ``features=k`` keeps the
first ``k`` features only (272 = stages 4 and 6 of Lite0), for the ablation the book reports.

**Coreset.** Greedy k-center selection (the bank's ``ceil(coreset * n)`` patches that cover the others best:
each step adds the patch farthest from those chosen), on a seeded Gaussian random projection of the
features to 128 dimensions (PatchCore's speed-up; distances are kept within a factor by the Johnson-
Lindenstrauss lemma), starting from a seeded random patch. The selection is exact (the same patches as the
plain greedy of :func:`greedy_kcenter_plain`); it is made fast by the triangle inequality: a new centre
``c`` takes no patch from a centre ``a`` whose patches all lie within ``d(a, c) / 2`` of ``a``. At
``coreset=1.0`` the bank is every training patch.

**Scores.** Nearest neighbours by brute force in float32 BLAS blocks (``|x|^2 + |m|^2 - 2 x.m``, the block
bounded in memory), and the distance to the neighbour found then measured again in float64 (scikit-learn's
``NearestNeighbors`` distances to 1e-5). Image score (PatchCore eq. 7): with ``m_test`` the patch of largest
distance ``s``, ``m*`` its nearest neighbour and ``N_b(m*)`` the ``b = reweight`` nearest bank patches of
``m*`` (``m*`` first), ``s * (1 - exp|m_test - m*| / sum_{m in N_b(m*)} exp|m_test - m|)``; ``reweight=1``
gives ``s`` itself. Heatmaps: the patch distances on the grid, upsampled bilinearly and smoothed (sigma 4 px).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .base import Detector
from .inputs import Features, spatial_chunks
from .kcenter import greedy_kcenter
from .params import Param

#: the memory a block of nearest-neighbour distances may take (bytes)
BLOCK_BYTES = 128 << 20
#: training patches up to this size are kept in memory while the coreset is chosen (else made again)
HOLD_BYTES = 1 << 30
#: the random projection's dimension for the coreset selection (PatchCore's 128)
PROJECTION = 128


def _kept(fraction: float, total: int) -> int:
    """How many of ``total`` patches a ``fraction`` coreset keeps: ``ceil(fraction * total)``, at least 1 (0.1 of
    180 is 18, whatever the rounding of 0.1 * 180)."""
    return max(1, math.ceil(round(fraction * total, 6)))


def neighbourhood_mean(maps: np.ndarray, size: int = 3) -> np.ndarray:
    """``(b, H, W, D)`` maps, each cell's features averaged over the ``size x size`` cells around it that lie
    inside the grid (sums of shifted copies, one axis then the other; divided by each cell's count).

    Parameters
    ----------
    maps : ndarray of shape (b, H, W, D)
        Aligned maps.
    size : int, default=3
        The neighbourhood's side, cells (odd; 1: the maps as they are).

    Returns
    -------
    ndarray of shape (b, H, W, D)
        The neighbourhood means (float32).
    """
    x = np.asarray(maps, np.float32)
    if size == 1:
        return x
    r = size // 2

    def box(a, axis):
        out = a.copy()
        n = a.shape[axis]
        for k in range(1, min(r, n - 1) + 1):
            head = [slice(None)] * a.ndim
            tail = [slice(None)] * a.ndim
            head[axis], tail[axis] = slice(k, None), slice(None, -k)
            out[tuple(head)] += a[tuple(tail)]
            out[tuple(tail)] += a[tuple(head)]
        return out

    def counts(n):
        i = np.arange(n)
        return (np.minimum(i, r) + np.minimum(n - 1 - i, r) + 1).astype(np.float32)

    _, H, W, _ = x.shape
    s = box(box(x, 1), 2)
    s /= (counts(H)[:, None] * counts(W)[None, :])[None, :, :, None]
    return s


class PatchCore(Detector):
    """PatchCore (Roth et al. 2022): a memory bank of locally aware patch features, subsampled by a greedy
    coreset; a patch's anomaly score is the distance to its nearest neighbour in the bank, an image's the
    largest over its patches, reweighted (see the module docstring).

    Parameters
    ----------
    coreset : float, default=0.1
        The fraction of the training patches the memory bank keeps (1: all): a number in (0, 1].
    features : int, default=0
        The patch features kept: the first ``features`` of the aligned maps (0: all): a whole number in
        [0, 1,048,576], at most the maps' number of features.
    neighbourhood : int, default=3
        Cells averaged around each cell (3: 3 x 3): an odd whole number in [1, 99].
    reweight : int, default=9
        Bank patches of the score's reweighting (1: none): a whole number in [1, 1,000,000].
    seed : int, default=0
        The coreset's and the projection's seed: a whole number in [0, 2^63].
    sigma : float, default=4.0
        The heatmap's Gaussian smoothing, pixels at 224 px (scaled to the image size by :meth:`smoothing`): a
        number in [0, 1000].

    Attributes
    ----------
    bank_ : ndarray of shape (n_bank, n_features)
        The memory bank: the coreset's patch features (float32).
    grid_ : tuple of int
        ``(H, W)``, the feature grid of the fitted maps.
    d_total_ : int
        The number of features of the fitted maps.
    d_ : int
        The number of features of a patch, ``n_features`` above (``features``, or ``d_total_`` where it is 0).
    n_train_ : int
        The number of training images.
    n_patches_ : int
        The number of training patches (``n_train_ * H * W``), of which the bank keeps
        ``ceil(coreset * n_patches_)``.
    """

    name = "patchcore"
    label = "PatchCore"
    consumes = "maps"
    gives_maps = True
    min_train = 1
    parameters = (
        Param("coreset", float, 0.1, "the fraction of the training patches the memory bank keeps (1: all)", low=0,
              high=1, low_open=True, flag=True),
        Param("features", int, 0, "the patches keep the first this many features of the aligned maps (0: all; "
              "272 = stages 4 and 6 of Lite0)", low=0, high=1 << 20),
        Param("neighbourhood", int, 3, "cells averaged around each cell (3: 3 x 3)", low=1, high=99, odd=True),
        Param("reweight", int, 9, "bank patches of the score's reweighting (1: none)", low=1, high=10 ** 6),
        Param("seed", int, 0, "the coreset's and the projection's seed", low=0, high=2 ** 63),
        Param("sigma", float, 4.0, "the heatmap's Gaussian smoothing, pixels at 224 px", low=0, high=1000))
    smoothing_at = 224  # sigma is declared at PaDiM's resolution, as PaDiM's

    def __init__(self, coreset: float = 0.1, features: int = 0, neighbourhood: int = 3, reweight: int = 9,
                 seed: int = 0, sigma: float = 4.0):
        self.coreset = coreset
        self.features = features
        self.neighbourhood = neighbourhood
        self.reweight = reweight
        self.seed = seed
        self.sigma = sigma

    @property
    def score_definition(self) -> str:
        return (f"largest distance of a patch to its nearest neighbour in a {self.coreset:g} coreset of the training "
                f"patches ({self.neighbourhood} x {self.neighbourhood} neighbourhood means), reweighted by its "
                f"{self.reweight} nearest bank patches")

    def _patches(self, chunk: np.ndarray) -> np.ndarray:
        """``(b * H * W, d)`` patch features of a ``(b, H, W, D)`` chunk of aligned maps."""
        if chunk.shape[3] != self.d_total_:
            raise LowdataError(f"patchcore: fitted on maps of {self.d_total_} features, got {chunk.shape[3]}")
        if chunk.shape[1:3] != tuple(self.grid_):
            raise LowdataError(f"patchcore: fitted on a {tuple(self.grid_)} grid, got {chunk.shape[1:3]}")
        x = chunk[..., :self.d_] if self.d_ < self.d_total_ else chunk
        return neighbourhood_mean(x, self.neighbourhood).reshape(-1, self.d_)

    def _chunks(self, X: Features, first: bool = False) -> tuple[int, Iterator[np.ndarray]]:
        n, chunks = spatial_chunks(X, 32)
        if first:
            c0 = next(chunks, None)
            if c0 is None or len(c0) == 0:
                raise LowdataError("patchcore: no training maps")
            _, H, W, D = c0.shape
            if self.features and self.features > D:
                raise LowdataError(f"patchcore: features={self.features}, but the maps have {D}")
            self.grid_, self.d_total_ = (H, W), D
            self.d_ = int(self.features) or D

            def again():
                yield c0
                yield from chunks
            return n, again()
        return n, chunks

    # ------------------------------------------------------------------------------------ fitting
    def fit(self, X: Features) -> "PatchCore":
        """Make the memory bank: the training images' patch features, subsampled by the greedy coreset."""
        self.check_params()
        n, chunks = self._chunks(X, first=True)
        if n < 1:
            raise LowdataError("patchcore: needs at least 1 training image")
        cells = self.grid_[0] * self.grid_[1]
        total = n * cells
        keep = total if self.coreset >= 1 else _kept(self.coreset, total)
        if keep >= total:  # every patch
            self.bank_ = np.concatenate([self._patches(c) for c in chunks])
        else:  # project, choose on the projection, then gather the chosen patches (a second pass)
            rng = np.random.default_rng([int(self.seed), 1])
            proj = (rng.standard_normal((self.d_, PROJECTION)) / math.sqrt(PROJECTION)).astype(np.float32)
            held = total * self.d_ * 4 <= HOLD_BYTES  # small enough: the patches are kept, not made twice
            kept, Z = [], []
            for c in chunks:
                p = self._patches(c)
                Z.append(p @ proj)
                if held:
                    kept.append(p)
            Z = np.concatenate(Z)
            start = int(np.random.default_rng([int(self.seed), 2]).integers(total))
            chosen = np.sort(greedy_kcenter(Z, keep, start))
            del Z
            bank = np.empty((len(chosen), self.d_), np.float32)
            again = iter(kept) if held else self._chunks(X)[1]
            at, i = 0, 0
            for c in again:
                p = c if held else self._patches(c)
                lo = np.searchsorted(chosen, at)
                hi = np.searchsorted(chosen, at + len(p))
                bank[i:i + hi - lo] = p[chosen[lo:hi] - at]
                i += hi - lo
                at += len(p)
            self.bank_ = bank
        self.n_train_ = n
        self.n_patches_ = total
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._sq = np.einsum("ij,ij->i", self.bank_, self.bank_, dtype=np.float64).astype(np.float32)

    # ------------------------------------------------------------------------------------ scoring
    def nearest(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index in the bank and euclidean distance (float64) of each row of ``P``'s nearest bank patch."""
        self.check_fitted()
        P = np.ascontiguousarray(P, np.float32)
        M = len(self.bank_)
        rows = max(1, min(len(P), BLOCK_BYTES // (4 * M)))
        idx = np.empty(len(P), np.intp)
        for i in range(0, len(P), rows):
            p = P[i:i + rows]
            g = p @ self.bank_.T
            g *= -2.0
            g += self._sq[None, :]
            idx[i:i + rows] = np.argmin(g, axis=1)  # |p|^2 is the same along a row: left out
        diff = P.astype(np.float64) - self.bank_[idx].astype(np.float64)
        return idx, np.sqrt(np.einsum("ij,ij->i", diff, diff))

    def _image_scores(self, P: np.ndarray, dist: np.ndarray, idx: np.ndarray, cells: int) -> np.ndarray:
        per = dist.reshape(-1, cells)
        worst = per.argmax(axis=1)
        s = per[np.arange(len(per)), worst]
        b = min(int(self.reweight), len(self.bank_))
        if b <= 1:
            return s
        out = np.empty(len(per))
        for i, w in enumerate(worst):
            m_test = P[i * cells + w].astype(np.float64)
            star = int(idx[i * cells + w])
            to_star = self._sq + self._sq[star] - 2.0 * (self.bank_ @ self.bank_[star])
            to_star[star] = -np.inf  # m* first among its neighbours
            support = np.argpartition(to_star, b - 1)[:b]
            support = support[np.argsort(to_star[support], kind="stable")]
            dd = np.sqrt(((self.bank_[support].astype(np.float64) - m_test) ** 2).sum(axis=1))
            dd[0] = s[i]
            e = np.exp(dd - dd.max())
            out[i] = s[i] * (1.0 - e[0] / e.sum())
        return out

    def scores_and_maps(self, X: Features) -> tuple[np.ndarray, np.ndarray]:
        """The anomaly scores and the anomaly maps, from one nearest-neighbour search."""
        self.check_fitted()
        n, chunks = spatial_chunks(X, 32)
        H, W = self.grid_
        maps = np.empty((n, H, W))
        scores = np.empty(n)
        i = 0
        for c in chunks:
            P = self._patches(c)
            idx, dist = self.nearest(P)
            maps[i:i + len(c)] = dist.reshape(len(c), H, W)
            scores[i:i + len(c)] = self._image_scores(P, dist, idx, H * W)
            i += len(c)
        return scores, maps

    def anomaly_score(self, X: Features) -> np.ndarray:
        """Each image's largest patch distance, reweighted (PatchCore eq. 7)."""
        return self.scores_and_maps(X)[0]

    def anomaly_maps(self, X: Features) -> np.ndarray:
        """``(n, H, W)`` distances of each patch to its nearest bank patch, on the feature grid."""
        return self.scores_and_maps(X)[1]

    def smoothing(self, size: int, reference: int | None = None) -> float:
        """``sigma`` pixels at ``reference`` pixels, scaled to a ``size``-pixel image."""
        return self.sigma if reference is None else self.sigma * size / reference

    def size_note(self, n_train: int, maps_shape) -> str | None:
        h, w, d = maps_shape
        total = n_train * h * w
        self.check_params()
        keep = total if self.coreset >= 1 else _kept(self.coreset, total)
        gb = keep * (int(self.features) or d) * 4 / 1e9
        return (f"PatchCore keeps {keep} of {total} training patches: a memory bank of {gb:.1f} GB"
                if gb >= 1 else None)

    # ------------------------------------------------------------------------------------ state
    def get_state(self):
        self.check_fitted()
        params = {"coreset": float(self.coreset), "features": int(self.features),
                  "neighbourhood": int(self.neighbourhood), "reweight": int(self.reweight), "seed": int(self.seed),
                  "sigma": float(self.sigma), "grid": [int(g) for g in self.grid_], "d_total": int(self.d_total_),
                  "n_train": int(self.n_train_), "n_patches": int(self.n_patches_)}
        return params, {"bank": self.bank_}

    def set_state(self, params: dict, arrays: dict[str, np.ndarray]) -> "PatchCore":
        bank = np.asarray(arrays["bank"])
        if bank.ndim != 2 or bank.dtype != np.float32 or len(bank) < 1:
            raise LowdataError(f"patchcore state: the memory bank must be (M, d) float32, got {bank.dtype}{bank.shape}")
        self.coreset, self.features = params["coreset"], int(params["features"])
        self.neighbourhood, self.reweight = int(params["neighbourhood"]), int(params["reweight"])
        self.seed, self.sigma = int(params["seed"]), float(params["sigma"])
        self.check_params()
        self.grid_ = tuple(int(g) for g in params["grid"])
        self.d_total_ = int(params["d_total"])
        self.d_ = self.features or self.d_total_
        if bank.shape[1] != self.d_:
            raise LowdataError(f"patchcore state: a bank of {bank.shape[1]} features, the parameters say {self.d_}")
        self.bank_ = bank
        self.n_train_, self.n_patches_ = int(params["n_train"]), int(params["n_patches"])
        self._prepare()
        return self

    def state_schema(self) -> S.Spec:
        return S.Dict({**self.params_schema(), "grid": S.List(S.Int(1, 4096), 2, 2), "d_total": S.Int(1, 1 << 20),
                       "n_train": S.Int(1, 10 ** 7), "n_patches": S.Int(1, 10 ** 12)})

    def feature_shapes(self, level_shapes):
        shapes = [tuple(int(d) for d in s) for s in level_shapes]
        return (tuple(self.grid_), self.d_total_), (shapes[0][:2], sum(s[2] for s in shapes))
