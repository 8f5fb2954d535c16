"""Detector speed and memory, in one run, on real features (EfficientNet-Lite0, ImageNet, 380 px).

1. Fit and score seconds of every method at N = 5, 50 and the category's maximum, without and with
   10x augmentation (the study's setting: training subset plus 10 augmented copies of each image;
   scoring = the whole test set). Data: the MVTec AD bottle when ``../shared`` is there, else ELPV mono.
2. PaDiM, vectorized (:class:`lowdata.detectors.padim.PaDiM`) against a per-location scikit-learn loop
   (``sklearn.covariance.ledoit_wolf`` + ``numpy.linalg.inv`` at each of the 576 locations), at N = 10
   the maximum, and the maximum with 10x augmentation: seconds, ratio (goal >= 20x), peak memory of each (``tracemalloc``: numpy's
   allocations), and the largest relative difference of their test scores (goal <= 1e-4).
3. PaDiM's peak memory when fitting on 11 x 400 = 4400 images (the most the study asks for), on
   random features streamed in chunks: the fit must not hold all the maps at once.

    .venv/bin/python benchmarks/detectors.py [--source auto|mvtec|elpv] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from lowdata.data.augment import policy_for
from lowdata.features.backbones import load_backbone
from lowdata.data.sources import load_category
from lowdata.detectors.inputs import MapStream, align_levels
from lowdata.detectors.padim import PaDiM
from lowdata.detectors.registry import make_detector, method_names
from lowdata.features.encode import cache_for, encode, source_key
from lowdata.features.embeddings import Embeddings
from lowdata.metrics import image_auroc
from lowdata.experiments.design import draw_subset
from lowdata.features.pool import encode_augmented

REPO = Path(__file__).resolve().parents[1]
MVTEC = REPO.parent / "shared" / "data" / "mvtec_ad"


def measured(fn):
    """(result, seconds, peak MiB of traced allocations) of ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return out, sec, peak


def per_location_loop(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The straightforward reference: scikit-learn's Ledoit-Wolf and an inverse at every location."""
    from sklearn.covariance import ledoit_wolf

    L = train.shape[1]
    out = np.empty((len(test), L))
    for j in range(L):
        x = train[:, j].astype(np.float64)
        cov, _ = ledoit_wolf(x)
        prec = np.linalg.inv(cov)
        z = test[:, j].astype(np.float64) - x.mean(axis=0)
        out[:, j] = np.sqrt(np.maximum(np.einsum("td,de,te->t", z, prec, z), 0))
    return out.max(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=["auto", "mvtec", "elpv"], default="auto")
    ap.add_argument("--skip-synthetic", action="store_true", help="skip part 3 (about a minute)")
    args = ap.parse_args()

    if args.source == "mvtec" or (args.source == "auto" and (MVTEC / "bottle").is_dir()):
        data = load_category("mvtec", "bottle", MVTEC)
    else:
        data = load_category("elpv", "mono")
    bb = load_backbone("efficientnet-lite0")
    cache = cache_for(bb)
    paths = [s.path for s in data.train]
    hashes = [source_key(p) for p in paths]
    train = encode(bb, paths, cache, keys=hashes, desc="train")
    test = encode(bb, [s.path for s in data.test], cache, desc="test")
    copies = encode_augmented(bb, paths, hashes, cache, policy_for(data.category), 10, seed=0)
    test_maps = np.concatenate([align_levels(m) for m in test.iter_spatial()])
    n_max = len(paths)
    L = test_maps.shape[1] * test_maps.shape[2]
    print(f"\n{data.source}/{data.category}: {n_max} training, {len(test)} test images; {bb.name} at "
          f"{bb.input_size}px; PaDiM grid {test_maps.shape[1]}x{test_maps.shape[2]} = {L} locations x "
          f"{test_maps.shape[3]} features; 2 cores\n")

    print("1. fit and score seconds (score = whole test set; PaDiM's test maps are read once beforehand); AUROC of that fit")
    print(f"{'method':<10}{'N':>5}{'aug':>5}{'fit on':>8}{'fit s':>9}{'score s':>9}{'AUROC':>8}")
    for m in method_names():
        for n in (5, 50, n_max):
            idx = draw_subset(n_max, n, seed=0, replicate=0)
            for f in (0, 10):
                fit_set = Embeddings.concat([train.subset(idx)] + [c.subset(idx) for c in copies[:f]])
                det = make_detector(m)
                t0 = time.perf_counter()
                det.fit(fit_set)
                t1 = time.perf_counter()
                scores = det.anomaly_score(test_maps if det.consumes == "maps" else test)
                t2 = time.perf_counter()
                print(f"{m:<10}{n:>5}{f:>5}{len(fit_set):>8}{t1 - t0:>9.2f}{t2 - t1:>9.2f}"
                      f"{image_auroc(data.test_labels, scores):>8.3f}", flush=True)

    print("\n2. PaDiM: vectorized vs a per-location scikit-learn loop, both on the same training maps in memory")
    print("   (fit + score of the whole test set; 'read s' = reading and aligning the training maps from the cache)")
    print(f"{'N':>5}{'read s':>8}{'vectorized s':>14}{'peak MiB':>10}{'loop s':>9}{'peak MiB':>10}{'ratio':>8}"
          f"{'max rel diff':>14}")
    H, W, D = test_maps.shape[1:]
    for n, f in ((10, 0), (n_max, 0), (n_max, 10)):  # the last one takes the full (n > d) route
        idx = draw_subset(n_max, n, seed=0, replicate=0)
        sub = Embeddings.concat([train.subset(idx)] + [c.subset(idx) for c in copies[:f]])
        n = len(sub)
        t0 = time.perf_counter()
        tr = np.concatenate([align_levels(m) for m in sub.iter_spatial()])
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()  # timed without tracemalloc (it slows numpy's allocations), then traced
        fast = PaDiM().fit(tr).anomaly_score(test_maps)
        t_fast = time.perf_counter() - t0
        _, _, m_fast = measured(lambda: PaDiM().fit(tr).anomaly_score(test_maps))
        slow, t_slow, m_slow = measured(lambda: per_location_loop(tr.reshape(n, L, D), test_maps.reshape(-1, L, D)))
        diff = np.max(np.abs(fast - slow) / np.abs(slow))
        print(f"{n:>5}{t_read:>8.2f}{t_fast:>14.2f}{m_fast:>10.0f}{t_slow:>9.2f}{m_slow:>10.0f}{t_slow / t_fast:>7.1f}x"
              f"{diff:>14.1e}", flush=True)

    if not args.skip_synthetic:
        n, d = 11 * 400, test_maps.shape[3]
        H, W = test_maps.shape[1:3]
        rng = np.random.default_rng(0)

        def chunks():
            for i in range(0, n, 64):
                yield [rng.normal(size=(min(64, n - i), H, W, d)).astype(np.float32)]

        det = PaDiM()
        _, sec, peak = measured(lambda: det.fit(MapStream(n, chunks)))
        maps_gib = n * H * W * d * 4 / 2 ** 30
        print(f"\n3. PaDiM fit on {n} streamed images ({H}x{W}x{d}; {maps_gib:.1f} GiB of float32 maps in all): "
              f"{sec:.1f} s, peak {peak / 1024:.2f} GiB ({det.bank_.route} route)")


if __name__ == "__main__":
    main()
