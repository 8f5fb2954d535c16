"""The forms a fitted Gaussian bank is kept and saved in, one class each, owning its squared distance and its
state (the arrays and parameters of a model file):

* :class:`Precision` (route ``"full"``): the precision matrices (the empirical estimator's pinvh, and one
  Ledoit-Wolf Gaussian with more samples than features);
* :class:`CholeskyFactors` (``"cholesky"``): the shrunk covariances' lower Cholesky factors (a bank with
  more samples than half its features), pinvh where a covariance is singular;
* :class:`WoodburyInverse` and :class:`WoodburyCholesky` (``"woodbury"``): the centred samples and the
  inverse, or the Cholesky factor, of the ``n x n`` inner matrix ``I + (b/a) K`` (few samples: one
  Gaussian, and a bank), eigen-decompositions where the shrunk covariance is singular.

Each ``quad(z, at)`` returns the ``(l, t)`` squared distances of ``z`` ``(l, t, d)``, the centred samples of
locations ``at..at+l-1``.
"""

from __future__ import annotations

import numpy as np

from .covariance import BLOCK, EPS, pinvh_quad, solve_lower


class Precision:
    route = "full"

    def __init__(self, P: np.ndarray):
        self.P = P

    def quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        return np.einsum("ltd,ltd->lt", z @ self.P[at:at + len(z)], z)

    def state(self) -> tuple[dict, dict]:
        return {}, {"precision": self.P}

    @staticmethod
    def shapes(params: dict, arrays: dict, n: int, L: int, d: int) -> dict:
        return {"precision": (L, d, d)}

    @classmethod
    def restore(cls, params: dict, arrays: dict) -> "Precision":
        return cls(arrays["precision"])


class CholeskyFactors:
    """``|C^-1 z|^2``, ``C`` each location's covariance's Cholesky factor; ``pinv``: the locations whose
    covariance is singular, with its pinvh."""
    route = "cholesky"

    def __init__(self, C: np.ndarray, pinv: dict[int, np.ndarray]):
        self.C, self.pinv = C, pinv

    def quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        q = np.empty(z.shape[:2])
        for i in range(len(z)):
            j = at + i
            if j in self.pinv:
                q[i] = np.einsum("td,td->t", z[i] @ self.pinv[j], z[i])
            else:
                y = solve_lower(self.C[j], z[i].T)
                q[i] = np.einsum("dt,dt->t", y, y)
        return q

    def state(self) -> tuple[dict, dict]:
        return ({"pinvh": sorted(int(j) for j in self.pinv)},
                {"cholesky": self.C, **{f"pinvh_{j}": P for j, P in self.pinv.items()}})

    @staticmethod
    def shapes(params: dict, arrays: dict, n: int, L: int, d: int) -> dict:
        return {"cholesky": (L, d, d), **{f"pinvh_{j}": (d, d) for j in params.get("pinvh", [])}}

    @classmethod
    def restore(cls, params: dict, arrays: dict) -> "CholeskyFactors":
        return cls(arrays["cholesky"], {int(j): arrays[f"pinvh_{j}"] for j in params.get("pinvh", [])})


class Woodbury:
    """``Sigma = a I + b Xc^T Xc`` per location: ``X`` ``(L, n, d)`` the centred samples, ``a``, ``b``; ``eig``:
    the locations where Sigma is singular (shrinkage 0, or every feature constant), with the eigen-decomposition
    of ``K = Xc Xc^T`` (pinvh semantics there)."""
    route = "woodbury"

    def __init__(self, X: np.ndarray, a: np.ndarray, b: np.ndarray, eig: dict):
        self.X, self.a, self.b, self.eig = X, a, b, eig

    def blocks(self, z: np.ndarray, at: int):
        """Per block of locations: its offset in ``z``, its first location, ``|z|^2`` ``(l, t)`` and ``w = Xc z``
        ``(l, n, t)``."""
        for b0 in range(0, len(z), BLOCK):
            zb = z[b0:b0 + BLOCK]
            j0 = at + b0
            zz = np.einsum("ltd,ltd->lt", zb, zb)
            w = self.X[j0:j0 + len(zb)].astype(np.float64) @ np.swapaxes(zb, 1, 2)  # (l, n, t)
            yield b0, j0, zz, w

    def singular_quad(self, j: int, w: np.ndarray, zz: np.ndarray) -> np.ndarray:
        """pinvh semantics where the shrunk covariance is singular."""
        lam, U = self.eig[j]
        n, d = self.X.shape[1], self.X.shape[2]
        a, b = float(self.a[j]), float(self.b[j])
        pos = lam > n * EPS * max(float(lam.max(initial=0.0)), 0.0)
        lam, U = lam[pos], U[:, pos]
        proj2 = (U.T @ w) ** 2 / lam[:, None]  # (v_i . z)^2, v_i the unit eigenvectors of Xc^T Xc
        inside = proj2.sum(axis=0)
        return pinvh_quad(a + b * lam, proj2.T, (a, zz - inside), d)

    def state(self) -> tuple[dict, dict]:
        arrays = dict(samples=self.X, a=self.a, b=self.b, **self._inner())
        for j, (lam, U) in self.eig.items():
            arrays[f"singular_{j}_values"], arrays[f"singular_{j}_vectors"] = lam, U
        return {"singular": sorted(int(j) for j in self.eig)}, arrays

    @staticmethod
    def shapes(params: dict, arrays: dict, n: int, L: int, d: int) -> dict:
        inner = dict(inner_cholesky=(L, n, n), ratio=(L,)) if "inner_cholesky" in arrays else \
            {"inner_inverse": (L, n, n)}
        out = dict(samples=(L, n, d), a=(L,), b=(L,), **inner)
        for j in params.get("singular", []):
            out[f"singular_{j}_values"] = (n,)
            out[f"singular_{j}_vectors"] = (n, n)
        return out

    @classmethod
    def restore(cls, params: dict, arrays: dict) -> "Woodbury":
        eig = {int(j): (arrays[f"singular_{j}_values"], arrays[f"singular_{j}_vectors"])
               for j in params.get("singular", [])}
        X, a, b = (arrays[k] for k in ("samples", "a", "b"))
        if "inner_cholesky" in arrays:
            return WoodburyCholesky(X, a, b, eig, arrays["inner_cholesky"], arrays["ratio"])
        return WoodburyInverse(X, a, b, eig, arrays["inner_inverse"])


class WoodburyInverse(Woodbury):
    """``(|z|^2 - w^T M w) / a`` with ``w = Xc z`` and ``M = (a/b I + K)^-1`` kept whole (one Gaussian with no
    more samples than features: the Mahalanobis detector's low-data case)."""

    def __init__(self, X, a, b, eig, Minv: np.ndarray):
        super().__init__(X, a, b, eig)
        self.Minv = Minv

    def _inner(self) -> dict:
        return {"inner_inverse": self.Minv}

    def quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        q = np.empty(z.shape[:2])
        for b0, j0, zz, w in self.blocks(z, at):
            l = len(zz)
            with np.errstate(divide="ignore", invalid="ignore"):
                q[b0:b0 + l] = (zz - np.einsum("lnt,lnt->lt", w, self.Minv[j0:j0 + l] @ w)) / self.a[j0:j0 + l, None]
            for i in range(l):
                if j0 + i in self.eig:
                    q[b0 + i] = self.singular_quad(j0 + i, w[i], zz[i])
        return q


class WoodburyCholesky(Woodbury):
    """``(|z|^2 - r |C^-1 w|^2) / a`` with ``w = Xc z``, ``C`` the Cholesky factor of ``I + r K``, ``r = b/a``
    (a bank with few samples: PaDiM's low-data case)."""

    def __init__(self, X, a, b, eig, C: np.ndarray, r: np.ndarray):
        super().__init__(X, a, b, eig)
        self.C, self.r = C, r

    def _inner(self) -> dict:
        return {"inner_cholesky": self.C, "ratio": self.r}

    def quad(self, z: np.ndarray, at: int = 0) -> np.ndarray:
        q = np.empty(z.shape[:2])
        for b0, j0, zz, w in self.blocks(z, at):
            for i in range(len(zz)):
                j = j0 + i
                if j in self.eig:
                    q[b0 + i] = self.singular_quad(j, w[i], zz[i])
                    continue
                v = solve_lower(self.C[j], w[i])
                with np.errstate(divide="ignore", invalid="ignore"):
                    q[b0 + i] = (zz[i] - self.r[j] * np.einsum("nt,nt->t", v, v)) / self.a[j]
        return q


FORMS = {"full": Precision, "cholesky": CholeskyFactors, "woodbury": Woodbury}
