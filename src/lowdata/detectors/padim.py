"""PaDiM (paper eq. 3): the levels' maps aligned to the finest grid (nearest-neighbour upsampling) and
concatenated; one Ledoit-Wolf Gaussian per location (:class:`lowdata.detectors.gaussian.GaussianBank`);
the anomaly score is the largest Mahalanobis distance over locations. :meth:`PaDiM.heatmaps` upsamples
the distance map to the image size (bilinear) and smooths it (Gaussian, ``sigma`` 4 px, as PaDiM)."""

from __future__ import annotations

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError
from .base import Detector, prefixed, unprefixed
from .inputs import AlignedLevels, Features, MapRows, MapStream, align_levels, spatial_chunks
from .gaussian import ESTIMATORS, GaussianBank, bank_schema
from .location_blocks import GramSums, LocationBlocks
from .params import Param


#: rows of maps up to this size are gathered into memory before a fit or a scoring (faster than reading blocks of
#: locations from many feature packs); larger sets are read a block of locations at a time
GATHER_BYTES = 256 << 20
#: Woodbury models of at least this many training images score maps a block of locations at a time (at 576 x 592,
#: 516 test maps: 15 images 0.68 s chunk by chunk against 1.80 s by blocks; 16 images 3.34 against 1.74;
#: 55 images 5.60 against 2.52; benchmarks/padim_score.py --train 10,15,16,20,55)
BLOCKS_FROM = 16


class PaDiM(Detector):
    """PaDiM (paper eq. 3): one Gaussian per location of the levels' maps, aligned to the finest grid and
    concatenated; the anomaly score is the largest Mahalanobis distance over locations, and the distance map
    upsampled and smoothed is the heatmap.

    Parameters
    ----------
    estimator : {'empirical', 'ledoit-wolf'}, default='ledoit-wolf'
        The covariance estimator of every location.
    chunk : int, default=64
        Images per chunk of maps read (memory, not results): a whole number in [1, 1,048,576].
    sigma : float, default=4.0
        The heatmap's Gaussian smoothing, pixels at 224 px (scaled to the image size by :meth:`smoothing`): a
        number in [0, 1000].

    Attributes
    ----------
    grid_ : tuple of int
        ``(H, W)``, the feature grid of the fitted maps (the finest level's).
    bank_ : GaussianBank
        The fitted :class:`~lowdata.detectors.gaussian.GaussianBank`, one Gaussian per location of the grid.
    n_train_ : int
        The number of training images.
    """

    name = "padim"
    consumes = "maps"
    gives_maps = True
    min_train = 2
    parameters = (Param("estimator", str, "ledoit-wolf", "the covariance estimator of every location", choices=ESTIMATORS),
                  Param("chunk", int, 64, "images per chunk of maps read (memory, not results)", low=1, high=1 << 20),
                  Param("sigma", float, 4.0, "the heatmap's Gaussian smoothing, pixels at 224 px", low=0, high=1000))
    incremental = True  # fit_nested: a series of growing training sets adds to running sums
    smoothing_at = 224  # sigma is declared at PaDiM's own resolution

    def __init__(self, estimator: str = "ledoit-wolf", chunk: int = 64, sigma: float = 4.0):
        self.estimator = estimator
        self.chunk = chunk
        self.sigma = sigma

    @property
    def label(self) -> str:
        return "PaDiM (Ledoit)" if self.estimator == "ledoit-wolf" else f"PaDiM ({self.estimator})"

    @property
    def score_definition(self) -> str:
        cov = "Ledoit-Wolf" if self.estimator == "ledoit-wolf" else self.estimator
        return f"largest Mahalanobis distance over the feature grid (one {cov} Gaussian per location)"

    def fit(self, X: Features) -> "PaDiM":
        """Fit one Gaussian per location of the training images' aligned maps."""
        self.check_params()
        bank = GaussianBank(self.estimator, chunk=self.chunk)
        blocks = self._blocks(X) if self.estimator == "ledoit-wolf" else None
        if blocks is not None:  # maps in memory (or memory-mapped): read a block of locations at a time
            src, self.grid_ = blocks
            if src.n < 2:
                raise LowdataError(f"padim: a covariance needs at least 2 training images, got {src.n}")
            self.bank_ = bank.fit(src)
            self.n_train_ = src.n
            return self
        n, chunks = spatial_chunks(X, self.chunk)
        if n > 256 and not isinstance(X, MapStream):
            # many images (the full route): chunks of 256 feed the bank's d x d sums without regrouping
            n, chunks = spatial_chunks(X, 256)
        if n < 2:
            raise LowdataError(f"padim: a covariance needs at least 2 training images, got {n}")
        first = next(chunks, None)
        if first is None or len(first) == 0:
            raise LowdataError(f"padim: expected {n} training images, the first chunk of maps is empty")
        self.grid_ = first.shape[1:3]

        def flat():
            yield first.reshape(len(first), -1, first.shape[3])
            for c in chunks:
                yield c.reshape(len(c), -1, c.shape[3])

        self.bank_ = bank.fit(flat(), n=n)
        self.n_train_ = n
        return self

    def fit_nested(self, X: Features, added: Features | None, sums=None):
        """Fit on ``X``, one of a nested series of training sets: ``X`` is the set of the previous fit of the
        series (whose return value is ``sums``; ``None`` for the first) plus the images ``added``. The
        Gaussians' running sums grow by ``added`` (:class:`~lowdata.detectors.location_blocks.GramSums`) instead of
        being made again from ``X``; the Woodbury route (``n <= d / 2``) is fitted on ``X`` as usual.
        Returns the sums to give the next fit (``None`` where the series goes on from ``X`` itself)."""
        self.check_params()
        if self.estimator != "ledoit-wolf":
            self.fit(X)
            return None
        blocks = self._blocks(X)
        if blocks is None:
            raise LowdataError("padim: a nested fit needs maps in memory or memory-mapped (not a stream)")
        src, grid = blocks
        if 2 * src.n <= src.d or src.n < 2:  # the Woodbury route: cheaper from the samples themselves
            self.fit(X)
            return None
        if sums is None or sums.n == 0:
            sums = GramSums().add(src)
        elif added is not None and len(added):
            sums.add(self._blocks(added)[0])
        if sums.n != src.n:
            raise LowdataError(f"padim: the running sums hold {sums.n} images, the training set {src.n}")
        self.grid_, self.n_train_ = grid, src.n
        self.bank_ = GaussianBank(self.estimator, chunk=self.chunk).fit_sums(sums)
        return sums

    @staticmethod
    def _blocks(X: Features) -> tuple[LocationBlocks, tuple[int, int]] | None:
        """Maps that can be read a block of locations at a time (rows of an array, an array, or a list of
        per-level arrays), with their grid; ``None`` for streams (fitted chunk by chunk)."""
        if isinstance(X, MapRows) and len(X) * int(np.prod(X.parts[0].shape[1:])) * 4 <= GATHER_BYTES:
            parts, rows = [np.concatenate(list(X.chunks()))], None  # a few images: gathered once, read in memory
        elif isinstance(X, MapRows):
            parts, rows = X.parts, X.rows
        elif isinstance(X, AlignedLevels):
            parts, rows = [X], None
        elif isinstance(X, np.ndarray) and X.ndim == 4:
            parts, rows = [X], None
        elif isinstance(X, (list, tuple)) and X and all(isinstance(a, np.ndarray) and a.ndim == 4 for a in X) \
                and len({len(a) for a in X}) == 1:
            parts, rows = [align_levels(list(X))], None
        else:
            return None
        _, H, W, D = parts[0].shape
        return LocationBlocks([p.reshape(len(p), H * W, D) if isinstance(p, np.ndarray) else p for p in parts],
                              rows), (H, W)

    def get_state(self):
        self.check_fitted()
        p, a = self.bank_.get_state()
        return ({"chunk": self.chunk, "sigma": self.sigma, "grid": [int(g) for g in self.grid_],
                 "n_train": int(self.n_train_), "bank": p}, prefixed("bank", a))

    def set_state(self, params: dict, arrays: dict[str, np.ndarray]) -> "PaDiM":
        bank = GaussianBank.from_state(params["bank"], unprefixed("bank", arrays), prefix="bank")
        self.estimator, self.chunk, self.sigma = bank.estimator, int(params["chunk"]), float(params["sigma"])
        self.bank_, self.grid_ = bank, tuple(int(g) for g in params["grid"])
        if self.grid_[0] * self.grid_[1] != bank.L_:
            raise LowdataError(f"padim state: a {self.grid_} grid does not have {bank.L_} locations")
        self.n_train_ = int(params["n_train"])
        return self

    def state_schema(self) -> S.Spec:
        schema = self.params_schema()
        return S.Dict({"chunk": schema["chunk"], "sigma": schema["sigma"], "grid": S.List(S.Int(1, 4096), 2, 2),
                       "n_train": S.Int(2, 10 ** 7), "bank": bank_schema()})

    def feature_shapes(self, level_shapes):
        shapes = [tuple(int(d) for d in s) for s in level_shapes]
        return (tuple(self.grid_), self.bank_.d_), (shapes[0][:2], sum(s[2] for s in shapes))

    def anomaly_maps(self, X: Features) -> np.ndarray:
        """``(n, H, W)`` Mahalanobis distances on the feature grid. Maps read from the feature packs (or any
        rows of maps) are read a block of locations at a time: one triangular solve per location for every
        image (:meth:`~lowdata.detectors.gaussian.GaussianBank.mahalanobis_blocks`), where the solves cost more
        than the reading (the Cholesky route, or Woodbury's from :data:`BLOCKS_FROM` training images: 2 to 3.4
        times faster); a model of a few images reads the maps a chunk of images at a time (1.7 times faster for
        10 images, ``benchmarks/padim_score.py``)."""
        self.check_fitted()
        by_blocks = isinstance(X, (MapRows, AlignedLevels)) and \
            (self.bank_.route != "woodbury" or self.n_train_ >= BLOCKS_FROM)
        blocks = self._blocks(X) if by_blocks else None
        if blocks is not None:
            src, grid = blocks
            if tuple(grid) != tuple(self.grid_):
                raise LowdataError(f"padim: fitted on a {self.grid_} grid, got {grid}")
            d2 = self.bank_.mahalanobis_blocks(src)
            return np.sqrt(np.maximum(d2, 0.0)).reshape(src.n, *self.grid_)
        n, chunks = spatial_chunks(X, self.chunk)
        out = np.empty((n, *self.grid_))
        i = 0
        for c in chunks:
            if c.shape[1:3] != tuple(self.grid_):
                raise LowdataError(f"padim: fitted on a {self.grid_} grid, got {c.shape[1:3]}")
            d2 = self.bank_.mahalanobis(c.reshape(len(c), -1, c.shape[3]))
            out[i:i + len(c)] = np.sqrt(np.maximum(d2, 0.0)).reshape(len(c), *self.grid_)
            i += len(c)
        return out

    def anomaly_score(self, X: Features) -> np.ndarray:
        """The largest Mahalanobis distance over each image's locations."""
        return self.scores_and_maps(X)[0]

    def scores_and_maps(self, X: Features) -> tuple[np.ndarray, np.ndarray]:
        """The scores are the maps' largest values: the maps are computed once."""
        maps = self.anomaly_maps(X)
        return maps.reshape(len(maps), -1).max(axis=1), maps

    def size_note(self, n_train: int, maps_shape) -> str | None:
        h, w, d = maps_shape
        if 2 * n_train <= d:
            return None
        gb = h * w * d ** 2 * 8 / 1e9
        return (f"PaDiM on {n_train} images (copies included), more than half its {d} features: the model stores "
                f"a full Cholesky factor of the covariance per location, about {gb:.1f} GB")

    def smoothing(self, size: int, reference: int | None = None) -> float:
        """``sigma`` pixels at ``reference`` pixels, scaled to a ``size``-pixel image."""
        return self.sigma if reference is None else self.sigma * size / reference
