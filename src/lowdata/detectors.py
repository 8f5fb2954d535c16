"""Anomaly detectors on frozen features, with scikit-learn's shape: ``fit(train)``, then ``score(test)``.

Each detector returns one anomaly score per image (higher is more anomalous). Inputs are either
:class:`lowdata.encode.Embeddings` (pooled vectors in memory, spatial maps read from the cache in
chunks), or plain arrays: a list with one array per feature level, ``(n, c)`` pooled vectors or
``(n, h, w, c)`` maps (pooled detectors average maps themselves), or a single array for one level.

* ``knn`` (DN2, paper eq. 1): the levels' pooled vectors concatenated; score = mean squared
  euclidean distance to the ``k`` nearest training vectors (``k = 1``).
* ``maha-emp`` / ``maha-lw`` (Rippel et al., eq. 2): one Gaussian per level on pooled vectors
  (Empirical or Ledoit-Wolf covariance); score = sum over levels of the Mahalanobis distances
  (square roots of scikit-learn's squared ``mahalanobis``).
* ``padim`` (eq. 3): the levels' maps aligned to the finest grid (nearest-neighbour upsampling) and
  concatenated; one Ledoit-Wolf Gaussian per location (:class:`lowdata.gaussian.GaussianBank`);
  score = the largest Mahalanobis distance over locations; :meth:`PaDiM.heatmaps` upsamples the
  distance map to the image size (bilinear) and smooths it (Gaussian, sigma 4 px, as PaDiM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np

from .encode import Embeddings
from .errors import LowdataError
from .gaussian import GaussianBank



@dataclass
class MapStream:
    """``n`` images' maps delivered in chunks, for PaDiM on more maps than fit in memory:
    ``chunks()`` returns an iterable of per-level lists of ``(b, h, w, c)`` arrays."""

    n: int
    chunks: Callable[[], Iterable[Sequence[np.ndarray]]]

    def __len__(self) -> int:
        return self.n


Features = Union[Embeddings, MapStream, Sequence[np.ndarray], np.ndarray]


def pooled_levels(X: Features) -> list[np.ndarray]:
    """Per level, ``(n, c)`` pooled vectors (maps are averaged over their grid)."""
    if isinstance(X, Embeddings):
        return list(X.pooled)
    arrays = [X] if isinstance(X, np.ndarray) else list(X)
    if not arrays:
        raise LowdataError("no feature levels given")
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 4:
            a = a.mean(axis=(1, 2), dtype=np.float64)
        if a.ndim != 2:
            raise LowdataError(f"expected (n, c) vectors or (n, h, w, c) maps per level, got shape {a.shape}")
        out.append(a)
    if len({len(a) for a in out}) != 1:
        raise LowdataError(f"levels have different numbers of images: {[len(a) for a in out]}")
    return out


def align_levels(maps: Sequence[np.ndarray]) -> np.ndarray:
    """``(n, H, W, sum c)``: each level's ``(n, h, w, c)`` map brought to the finest grid (nearest
    neighbour: cell ``i`` reads cell ``floor((i + 1/2) h / H)``, i.e. plain repetition for a factor 2)."""
    if any(m.ndim != 4 for m in maps):
        raise LowdataError(f"expected (n, h, w, c) maps, got shapes {[m.shape for m in maps]}")
    if len(maps) == 1 and maps[0].dtype == np.float32:  # already one grid: nothing to align or copy
        return maps[0]
    n = maps[0].shape[0]
    H = max(m.shape[1] for m in maps)
    W = max(m.shape[2] for m in maps)
    out = np.empty((n, H, W, sum(m.shape[3] for m in maps)), np.float32)
    c0 = 0
    for m in maps:
        h, w, c = m.shape[1:]
        dst = out[..., c0:c0 + c]
        if H % h == 0 and W % w == 0:  # whole factors: broadcast each cell over its block, one pass
            dst.reshape(n, h, H // h, w, W // w, c)[...] = m[:, :, None, :, None, :]
        else:
            rows = ((np.arange(H) + 0.5) * h / H).astype(int)
            cols = ((np.arange(W) + 0.5) * w / W).astype(int)
            dst[...] = m[:, rows][:, :, cols]
        c0 += c
    return out


def spatial_chunks(X: Features, chunk: int = 64) -> tuple[int, Iterator[np.ndarray]]:
    """Number of images and an iterator of aligned ``(b, H, W, D)`` chunks."""
    if isinstance(X, Embeddings):
        return len(X), (align_levels(m) for m in X.iter_spatial(chunk))
    if isinstance(X, MapStream):
        return X.n, (align_levels(m) for m in X.chunks())
    arrays = [X] if isinstance(X, np.ndarray) else list(X)
    if not arrays or any(np.ndim(a) != 4 for a in arrays):
        raise LowdataError(f"PaDiM needs (n, h, w, c) maps per level, got shapes {[np.shape(a) for a in arrays]}")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise LowdataError(f"levels have different numbers of images: {[len(a) for a in arrays]}")
    return n, (align_levels([a[i:i + chunk] for a in arrays]) for i in range(0, n, chunk))


class Detector:
    """Base: ``fit(train)`` returns the detector, ``score(test)`` one float64 score per image."""

    name = "detector"

    def fit(self, X: Features) -> "Detector":
        raise NotImplementedError

    def score(self, X: Features) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_train_"):
            raise LowdataError(f"{self.name}: call fit() before score()")

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted detector as JSON-able parameters and named numeric arrays (no pickled code);
        :func:`detector_from_state` rebuilds it, scoring to the last bit as before."""
        raise NotImplementedError


def _prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v for k, v in arrays.items()}


def _unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}


class KNN(Detector):
    name = "knn"

    def __init__(self, k: int = 1):
        if int(k) != k or k < 1:
            raise LowdataError(f"knn: k must be a positive integer, got {k!r}")
        self.k = int(k)

    def fit(self, X: Features) -> "KNN":
        train = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        if len(train) < self.k:
            raise LowdataError(f"knn: k={self.k} needs at least {self.k} training images, got {len(train)}")
        # centred on the training mean (distances do not change): |t|^2 + |x|^2 - 2 t.x then does not
        # cancel away the digits of features with a large common offset
        self.center_ = train.mean(axis=0)
        self.train_ = train - self.center_
        self.n_train_ = len(train)
        self._sq = (self.train_ ** 2).sum(axis=1)
        return self

    def get_state(self):
        self._check_fitted()
        return {"k": self.k, "n_train": int(self.n_train_)}, {"center": self.center_, "train": self.train_}

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "KNN":
        det = cls(params["k"])
        det.center_, det.train_ = arrays["center"], arrays["train"]
        if det.train_.ndim != 2 or det.center_.shape != det.train_.shape[1:]:
            raise LowdataError(f"knn state: training vectors {det.train_.shape} and centre {det.center_.shape} "
                               "do not match")
        det.n_train_ = len(det.train_)
        det._sq = (det.train_ ** 2).sum(axis=1)
        return det

    def score(self, X: Features) -> np.ndarray:
        self._check_fitted()
        test = np.concatenate(pooled_levels(X), axis=1).astype(np.float64)
        if test.shape[1] != self.train_.shape[1]:
            raise LowdataError(f"knn: fitted on {self.train_.shape[1]} features, got {test.shape[1]}")
        test = test - self.center_
        out = np.empty(len(test))
        for i in range(0, len(test), 256):
            t = test[i:i + 256]
            d2 = np.maximum((t ** 2).sum(axis=1)[:, None] + self._sq[None, :] - 2.0 * t @ self.train_.T, 0.0)
            near = np.partition(d2, self.k - 1, axis=1)[:, :self.k] if self.k < d2.shape[1] else d2
            out[i:i + 256] = near.mean(axis=1)
        return out


class Mahalanobis(Detector):
    def __init__(self, estimator: str = "ledoit-wolf"):
        self.estimator = estimator
        self.name = {"empirical": "maha-emp", "ledoit-wolf": "maha-lw"}.get(estimator, f"maha-{estimator}")
        GaussianBank(estimator)  # validates the name

    def fit(self, X: Features) -> "Mahalanobis":
        levels = pooled_levels(X)
        n = len(levels[0])
        if n < 2:
            raise LowdataError(f"{self.name}: a covariance needs at least 2 training images, got {n}")
        self.gaussians_ = [GaussianBank(self.estimator).fit(np.asarray(a)[:, None, :]) for a in levels]
        self.n_train_ = n
        return self

    def get_state(self):
        self._check_fitted()
        params = {"estimator": self.estimator, "n_train": int(self.n_train_), "levels": []}
        arrays = {}
        for i, g in enumerate(self.gaussians_):
            p, a = g.get_state()
            params["levels"].append(p)
            arrays.update(_prefixed(f"level{i}", a))
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "Mahalanobis":
        det = cls(params["estimator"])
        det.gaussians_ = [GaussianBank.from_state(p, _unprefixed(f"level{i}", arrays))
                          for i, p in enumerate(params["levels"])]
        det.n_train_ = int(params["n_train"])
        return det

    def score(self, X: Features) -> np.ndarray:
        self._check_fitted()
        levels = pooled_levels(X)
        if len(levels) != len(self.gaussians_):
            raise LowdataError(f"{self.name}: fitted on {len(self.gaussians_)} levels, got {len(levels)}")
        return sum(np.sqrt(np.maximum(g.mahalanobis(np.asarray(a)[:, None, :])[:, 0], 0.0))
                   for g, a in zip(self.gaussians_, levels))


class PaDiM(Detector):
    name = "padim"

    def __init__(self, estimator: str = "ledoit-wolf", chunk: int = 64, sigma: float = 4.0):
        self.bank = GaussianBank(estimator, chunk=chunk)
        self.chunk = chunk
        self.sigma = sigma

    def fit(self, X: Features) -> "PaDiM":
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

        self.bank.fit(flat(), n=n)
        self.n_train_ = n
        return self

    def get_state(self):
        self._check_fitted()
        p, a = self.bank.get_state()
        return ({"chunk": self.chunk, "sigma": self.sigma, "grid": [int(g) for g in self.grid_],
                 "n_train": int(self.n_train_), "bank": p}, _prefixed("bank", a))

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> "PaDiM":
        bank = GaussianBank.from_state(params["bank"], _unprefixed("bank", arrays))
        det = cls(bank.estimator, chunk=int(params["chunk"]), sigma=float(params["sigma"]))
        det.bank, det.grid_ = bank, tuple(int(g) for g in params["grid"])
        if det.grid_[0] * det.grid_[1] != bank.L_:
            raise LowdataError(f"padim state: a {det.grid_} grid does not have {bank.L_} locations")
        det.n_train_ = int(params["n_train"])
        return det

    def score_maps(self, X: Features) -> np.ndarray:
        """``(n, H, W)`` Mahalanobis distances on the feature grid."""
        self._check_fitted()
        n, chunks = spatial_chunks(X, self.chunk)
        out = np.empty((n, *self.grid_))
        i = 0
        for c in chunks:
            if c.shape[1:3] != tuple(self.grid_):
                raise LowdataError(f"padim: fitted on a {self.grid_} grid, got {c.shape[1:3]}")
            d2 = self.bank.mahalanobis(c.reshape(len(c), -1, c.shape[3]))
            out[i:i + len(c)] = np.sqrt(np.maximum(d2, 0.0)).reshape(len(c), *self.grid_)
            i += len(c)
        return out

    def score(self, X: Features) -> np.ndarray:
        maps = self.score_maps(X)
        return maps.reshape(len(maps), -1).max(axis=1)

    def heatmaps(self, X: Features | None = None, size: int | tuple[int, int] = 380, *,
                 maps: np.ndarray | None = None) -> np.ndarray:
        """``(n, h, w)`` anomaly heatmaps at image size (from ``X``, or from ``score_maps`` output)."""
        return upsample_maps(self.score_maps(X) if maps is None else maps, size, self.sigma)


def upsample_maps(maps: np.ndarray, size: int | tuple[int, int], sigma: float = 4.0) -> np.ndarray:
    """Bilinear upsampling of ``(n, H, W)`` maps to ``size`` and Gaussian smoothing (``sigma`` pixels)."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    h, w = (size, size) if isinstance(size, int) else size
    out = np.empty((len(maps), h, w), np.float32)
    for i, m in enumerate(maps):
        up = np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
        out[i] = gaussian_filter(up, sigma) if sigma > 0 else up
    return out


METHODS = {
    "knn": KNN,
    "maha-emp": lambda: Mahalanobis("empirical"),
    "maha-lw": lambda: Mahalanobis("ledoit-wolf"),
    "padim": PaDiM,
}
METHOD_LABELS = {"knn": "KNN", "maha-emp": "Mahalanobis (Empirical)", "maha-lw": "Mahalanobis (Ledoit)",
                 "padim": "PaDiM (Ledoit)"}


def detector_from_state(method: str, params: dict, arrays: dict[str, np.ndarray]) -> Detector:
    """A fitted ``method`` detector from :meth:`Detector.get_state`'s parameters and arrays."""
    cls = {"knn": KNN, "maha-emp": Mahalanobis, "maha-lw": Mahalanobis, "padim": PaDiM}.get(method)
    if cls is None:
        raise LowdataError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    try:
        return cls.from_state(params, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise LowdataError(f"{method}: the saved state is incomplete or malformed ({type(exc).__name__}: {exc})") \
            from None


def make_detector(method: str) -> Detector:
    """A fresh detector by name: ``knn``, ``maha-emp``, ``maha-lw`` or ``padim``."""
    try:
        return METHODS[method]()
    except KeyError:
        raise LowdataError(f"unknown method {method!r}; choose from {', '.join(METHODS)}") from None
