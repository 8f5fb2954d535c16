"""PaDiM's scoring: the test maps chunk by chunk (``GaussianBank.mahalanobis``, before) against a block of grid
locations at a time (``GaussianBank.mahalanobis_blocks``, what PaDiM does with maps from the feature packs),
on banks of the study's shape (576 locations x 592 features, Lite0 at 380 px) fitted by each route, in one run.

    .venv/bin/python benchmarks/padim_score.py [--locations 576] [--test 516]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/padim_score.py   # the users' kernel

Prints the BLAS kernel (threadpoolctl), the seconds of each way and their ratio, and the largest difference
of the squared distances (relative).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info

from lowdata.detectors.gaussian import GaussianBank, LocationBlocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--locations", type=int, default=576)
    ap.add_argument("--features", type=int, default=592)
    ap.add_argument("--test", type=int, default=516, help="test images (ELPV mono: 516, poly: 682)")
    ap.add_argument("--train", default="10,220,1100", help="training samples: <= d/2 Woodbury, more Cholesky")
    args = ap.parse_args()
    kernels = sorted({f"{i['internal_api']} {i.get('architecture')} x{i.get('num_threads')}" for i in threadpool_info()})
    print(f"BLAS: {', '.join(kernels)}; {args.locations} locations x {args.features} features, {args.test} test maps")
    rng = np.random.default_rng(0)
    L, d, T = args.locations, args.features, args.test
    Z = rng.normal(size=(T, L, d)).astype(np.float32)
    for n in (int(v) for v in args.train.split(",")):
        bank = GaussianBank().fit(rng.normal(size=(n, L, d)).astype(np.float32))
        t = time.perf_counter()
        a = bank.mahalanobis(Z)
        chunked = time.perf_counter() - t
        t = time.perf_counter()
        b = bank.mahalanobis_blocks(LocationBlocks(Z))
        blocks = time.perf_counter() - t
        diff = float(np.max(np.abs(a - b) / np.abs(a)))
        print(f"n={n:5d} route {bank.route:9s}: chunk by chunk {chunked:6.2f} s, by location blocks {blocks:6.2f} s, "
              f"ratio {chunked / blocks:.2f}; largest relative difference {diff:.1e}")


if __name__ == "__main__":
    main()
