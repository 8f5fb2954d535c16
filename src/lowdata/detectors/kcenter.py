"""Greedy k-center selection (the coreset of :class:`~lowdata.detectors.patchcore.PatchCore`): each step adds
the point farthest from those chosen. :func:`greedy_kcenter_plain` is the plain greedy; :func:`greedy_kcenter`
chooses the same points, made fast by the triangle inequality (see its docstring)."""

from __future__ import annotations

import numpy as np

#: the memory a block of the points' assignment to the partition's centres may take (bytes)
BLOCK_BYTES = 128 << 20


def _sq_dist(Z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared euclidean distances of the rows of ``Z`` to ``c``, each row computed the same way whatever the
    rows around it (the greedy's choices do not depend on how the rows were grouped)."""
    d = Z - c
    return np.einsum("ij,ij->i", d, d)


def greedy_kcenter_plain(Z: np.ndarray, k: int, start: int) -> np.ndarray:
    """Greedy k-center, step by step on every point (the reference the fast one is tested against)."""
    chosen = [int(start)]
    d = _sq_dist(Z, Z[start])
    for _ in range(1, k):
        far = int(np.argmax(d))
        chosen.append(far)
        d = np.minimum(d, _sq_dist(Z, Z[far]))
    return np.array(chosen, np.intp)


def _blocks(Z: np.ndarray, size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed partition of the points into small blocks (one assignment to seeded random centres, on the first
    32 coordinates: only the speed of the greedy depends on it): ``order`` (the points, block after block),
    ``bounds`` (block ``b`` is ``order[bounds[b]:bounds[b + 1]]``), each block's mean and radius, and each
    point's distance to its block's mean (in ``order``), in float64."""
    n = len(Z)
    B = int(max(1, min(n // size, 2048)))
    rng = np.random.default_rng(0)
    seeds = Z[rng.choice(n, B, replace=False), :32]
    sq = np.einsum("ij,ij->i", seeds, seeds)
    assign = np.empty(n, np.intp)
    rows = max(1, BLOCK_BYTES // (4 * B))
    for i in range(0, n, rows):
        z = Z[i:i + rows, :32]
        assign[i:i + rows] = np.argmin(sq[None, :] - 2.0 * (z @ seeds.T), axis=1)
    order = np.argsort(assign, kind="stable")
    counts = np.bincount(assign, minlength=B)
    counts = counts[counts > 0]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    Zs = Z[order]
    mean = np.add.reduceat(Zs, bounds[:-1], axis=0, dtype=np.float64) / counts[:, None]
    member = np.repeat(np.arange(len(counts)), counts)
    spread = np.empty(n)
    for i in range(0, n, rows):  # in row blocks: no float64 copy of every point
        diff = Zs[i:i + rows].astype(np.float64) - mean[member[i:i + rows]]
        spread[i:i + rows] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    radius = np.maximum.reduceat(spread, bounds[:-1])
    return order, bounds, mean, radius, spread


def greedy_kcenter(Z: np.ndarray, k: int, start: int) -> np.ndarray:
    """The indices of ``k`` rows of ``Z`` chosen by greedy k-center from ``start``, in the order chosen: the
    same as :func:`greedy_kcenter_plain`, made fast by the triangle inequality. The points are grouped once in
    small blocks (a mean, a radius, each point's distance to the mean); a new centre ``c`` can bring no point
    of block ``b`` closer when ``|c - mean_b| - radius_b`` is at least the block's largest distance to the
    centres so far, nor a point ``p`` when ``| |c - mean_b| - |p - mean_b| |`` is at least its own, so each
    step measures only the points near ``c`` (most of them in the first steps, few once the centres are
    dense). The skips keep a margin of 1e-4 on squared distances: rounding never decides one."""
    Z = np.ascontiguousarray(Z, np.float32)
    n = len(Z)
    k = int(min(k, n))
    order, bounds, mean, radius, spread = _blocks(Z)
    Zs = Z[order]
    where = np.empty(n, np.intp)
    where[order] = np.arange(n)
    lengths = np.diff(bounds)
    member = np.repeat(np.arange(len(lengths)), lengths)
    d = _sq_dist(Zs, Zs[where[start]])  # squared distance of each point to the nearest centre
    top = np.maximum.reduceat(d, bounds[:-1]).astype(np.float64)  # per block: its largest d
    chosen = np.empty(k, np.intp)
    chosen[0] = where[start]
    everything = np.arange(n)
    for j in range(1, k):
        b = int(np.argmax(top))
        lo, hi = bounds[b], bounds[b + 1]
        far = lo + int(np.argmax(d[lo:hi]))
        chosen[j] = far
        c = Zs[far]
        to_mean = np.sqrt(_sq_dist(mean, c.astype(np.float64)))  # |c - mean_b| per block
        gap = to_mean - radius  # no point of block b is nearer c than this
        near = np.flatnonzero((gap <= 0) | (gap * gap * (1 - 1e-4) < top))
        if len(near) > len(top) // 2:
            idx = everything
        else:
            ln = lengths[near]
            idx = np.repeat(bounds[near] - np.cumsum(ln) + ln, ln) + np.arange(int(ln.sum()))
        di = d[idx]
        lower = to_mean[member[idx]] - spread[idx]
        live = idx[lower * lower * (1 - 1e-4) < di]  # the points c may bring closer: measured
        sub = Zs[live]
        sub -= c
        dd = np.einsum("ij,ij->i", sub, sub)
        closer = dd < d[live]
        d[live[closer]] = dd[closer]
        if idx is everything:
            top[:] = np.maximum.reduceat(d, bounds[:-1])
        else:
            top[near] = np.maximum.reduceat(d[idx], np.concatenate([[0], np.cumsum(lengths[near])[:-1]]))
    return order[chosen]
