"""Does an image's feature map depend on the other images in its batch? And what does a fixed batch cost?

oneDNN picks convolution kernels (and their blocking / reduction order) by the shape of the input, so
the same image can come out slightly different when encoded alone and in a batch. This script
measures, on real ELPV cells and ``efficientnet-lite0`` (ImageNet weights):

1. the difference between image 0 encoded alone and in batches of 2, 4, 8, 12 and 16, padded either
   with other real images or with zeros (max abs diff; max abs diff / max |feature| of the level), at
   380 px and 96 px; whether a batch size with zero padding gives the same bits as with real images
   (only the size matters?); whether image 0's position in the batch matters; whether repeated calls
   with the same batch are bit-identical;
2. timing (median of 5 after warm-up) at 380 px: 1 image alone, 1 image padded to 16, 16 images in
   one batch, 16 images one at a time;
   and ``Backbone.forward`` (which runs every image alone: the same bits for an image however it is
   batched?);
   any larger batch?);
3. pooled vectors (mean over h, w): their differences, and the effect on ``maha-lw`` and ``knn``
   scores (fitted on 10 images encoded in one batch of 10; 2 other images scored, encoded alone vs in
   a batch of 12).

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/batch_layout.py [--sizes 380,96] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from lowdata.features.backbones import load_backbone
from lowdata.detectors.registry import make_detector
from lowdata.data.elpv import load_elpv
from lowdata.features.encode import load_for

BATCHES = (2, 4, 8, 12, 16)


def image_paths(n: int) -> list:
    data = load_elpv("mono")
    return [s.path for s in data.train[:n]]


def raw(bb, batch: np.ndarray) -> list[np.ndarray]:
    """The network on exactly this batch (``Backbone.forward`` runs every image alone)."""
    return [o.numpy() for o in bb._forward(np.asarray(batch, np.float32))]


def diffs(ref: list[np.ndarray], other: list[np.ndarray]) -> list[tuple[float, float]]:
    """Per level: (max abs diff, max abs diff / max |ref|)."""
    out = []
    for r, o in zip(ref, other):
        d = float(np.max(np.abs(r.astype(np.float64) - o.astype(np.float64))))
        out.append((d, d / float(np.max(np.abs(r)))))
    return out


def fmt(ds: list[tuple[float, float]]) -> str:
    return "  ".join(f"{a:9.2e} {r:9.2e}" for a, r in ds)


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def first(outputs: list[np.ndarray], j: int = 0) -> list[np.ndarray]:
    return [o[j:j + 1] for o in outputs]


def pooled(maps: list[np.ndarray]) -> list[np.ndarray]:
    return [m.mean(axis=(1, 2), dtype=np.float64) for m in maps]


def layout_study(size: int, paths: list) -> None:
    bb = load_backbone("efficientnet-lite0", input_size=size)
    X = np.stack([load_for(bb, p) for p in paths]).astype(np.float32)  # 32 images
    x0 = X[:1]
    zeros = np.zeros_like(X)
    print(f"\n=== efficientnet-lite0 @ {size}px, levels {bb.levels}, shapes {bb.level_shapes}")

    alone = raw(bb, x0)
    print("columns per level: max|diff|  max|diff|/max|f|   (image 0 vs image 0 encoded alone)")
    print(f"{'batch':>5} {'padding':<8} | " + " | ".join(f"{lv:^19}" for lv in bb.levels))
    by_size = {}
    for B in BATCHES:
        real = raw(bb, X[:B])  # image 0 with images 1..B-1
        other = raw(bb, np.concatenate([x0, X[12:12 + B - 1]]))  # image 0 with different real images
        zpad = raw(bb, np.concatenate([x0, zeros[:B - 1]]))
        last = raw(bb, np.concatenate([X[1:B], x0]))  # image 0 at the last position
        by_size[B] = real
        print(f"{B:>5} {'real':<8} | {fmt(diffs(alone, first(real)))}")
        print(f"{B:>5} {'zeros':<8} | {fmt(diffs(alone, first(zpad)))}")
        print(f"      same bits: zeros vs real {same_bits(first(real), first(zpad))}, "
              f"real vs other real {same_bits(first(real), first(other))}, "
              f"position 0 vs {B - 1} {same_bits(first(real), first(last, B - 1))}")

    # all 12 images: alone vs batch of 12, worst over images
    b12 = by_size[12]
    worst = np.zeros((len(bb.levels), 2))
    worst_pool = np.zeros((len(bb.levels), 2))
    for j in range(12):
        a = raw(bb, X[j:j + 1])
        worst = np.maximum(worst, np.array(diffs(a, first(b12, j))))
        worst_pool = np.maximum(worst_pool, np.array(diffs(pooled(a), pooled(first(b12, j)))))
    print(f"all 12 images, alone vs batch 12, worst maps  | {fmt([tuple(w) for w in worst])}")
    print(f"all 12 images, alone vs batch 12, worst pooled| {fmt([tuple(w) for w in worst_pool])}")

    # batch 16 vs batch 12 for the shared images (do two batch sizes > 1 also differ?)
    print(f"image 0, batch 12 vs batch 16 (maps)          | {fmt(diffs(first(b12), first(by_size[16])))}")

    # other batch sizes > 1: same bits as batch 2?
    extra = {B: same_bits(first(by_size[2]), first(raw(bb, X[:B]))) for B in (3, 5, 7, 13, 17, 32)}
    print("image 0 in batch B bit-identical to batch 2: " + ", ".join(f"{B}: {v}" for B, v in extra.items()))

    # determinism: the same batch, 3 calls
    det = {}
    for B in (1, 12, 16):
        runs = [raw(bb, X[:B]) for _ in range(3)]
        det[B] = all(same_bits(runs[0], r) for r in runs[1:])
    mine = bb.forward(X[:12])  # what lowdata encodes: every image alone
    print(f"Backbone.forward of 12 images vs each image run alone: same bits "
          f"{all(same_bits(first(mine, j), raw(bb, X[j:j + 1])) for j in range(12))}; "
          f"reversed batch: {same_bits(mine, [m[::-1] for m in bb.forward(X[:12][::-1])])}")
    print("repeat calls bit-identical: " + ", ".join(f"batch {B}: {v}" for B, v in det.items()))
    import hashlib
    digest = lambda maps: hashlib.sha256(b"".join(m.tobytes() for m in maps)).hexdigest()[:16]
    print(f"sha256 of image 0's maps (compare across processes): alone {digest(alone)}, "
          f"batch 12 {digest(first(b12))}")
    return bb, X


def timing(bb, X: np.ndarray, repeats: int) -> dict:
    x0 = X[:1]
    pad16 = np.concatenate([x0, np.zeros((15,) + x0.shape[1:], np.float32)])
    pad2 = pad16[:2]
    X16 = X[:16]
    cases = {
        "1 image alone (batch 1)": (lambda: raw(bb, x0), 1),
        "1 image zero-padded to 2": (lambda: raw(bb, pad2), 1),
        "Backbone.forward, 1 image": (lambda: bb.forward(x0), 1),
        "1 image zero-padded to 16": (lambda: raw(bb, pad16), 1),
        "16 images, one batch of 16": (lambda: raw(bb, X16), 16),
        "16 images, one at a time": (lambda: [raw(bb, X16[i:i + 1]) for i in range(16)], 16),
        "Backbone.forward, 16 images": (lambda: bb.forward(X16), 16),
    }
    print(f"\n=== timing @ {bb.input_size}px, median of {repeats} after warm-up (useful images per call)")
    res = {}
    for name, (fn, n) in cases.items():
        fn()  # warm-up (oneDNN builds its primitives for this shape)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        med = float(np.median(ts))
        res[name] = (med, n / med)
        print(f"{name:<28} {med:8.3f} s/call  {n / med:7.2f} img/s   (min {min(ts):.3f}, max {max(ts):.3f})")
    a, p = res["1 image alone (batch 1)"][0], res["1 image zero-padded to 16"][0]
    b16, b1 = res["16 images, one batch of 16"][1], res["16 images, one at a time"][1]
    p2 = res["1 image zero-padded to 2"][0]
    print(f"padding 1 image to 16 costs {p / a:.2f}x the time of running it alone (to 2: {p2 / a:.2f}x)")
    print(f"throughput batch 16 / batch 1 = {b16 / b1:.2f}  (batch 1 runs at {b1 / b16:.2f} of batch-16 speed)")
    return res


def score_study(bb, X: np.ndarray) -> None:
    print(f"\n=== scores @ {bb.input_size}px: fit on 10 images encoded in one batch of 10, "
          "score 2 other images encoded alone vs in a batch of 12")
    fit = pooled(raw(bb, X[12:22]))
    tests_alone = [pooled(raw(bb, X[i:i + 1])) for i in (22, 23)]
    alone = [np.concatenate([t[j] for t in tests_alone]) for j in range(len(fit))]
    batch = pooled(raw(bb, np.concatenate([X[22:24], X[:10]])))
    batch = [b[:2] for b in batch]
    print(f"pooled vectors alone vs batch | {fmt(diffs(alone, batch))}")
    fit_alone = [np.concatenate(v) for v in zip(*[pooled(raw(bb, X[i:i + 1])) for i in range(12, 22)])]
    for method in ("maha-lw", "knn"):
        det = make_detector(method).fit(fit)
        sa, sb = det.anomaly_score(alone), det.anomaly_score(batch)
        rel = np.abs(sa - sb) / np.abs(sa)
        det2 = make_detector(method).fit(fit_alone)
        s2 = det2.anomaly_score(alone)
        rel2 = np.abs(s2 - sa) / np.abs(sa)
        print(f"{method:<8} scores alone {np.array2string(sa, precision=6)}  batch {np.array2string(sb, precision=6)}"
              f"  rel diff {np.array2string(rel, precision=2)}")
        print(f"{'':<8} fit on the 10 encoded one at a time instead of in a batch: rel score change "
              f"{np.array2string(rel2, precision=2)}")


def simd() -> str:
    """The widest vector instructions the CPU offers (oneDNN's kernels, and so the bits, depend on them)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "instruction set unknown"
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "neither AVX2 nor AVX-512"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="380,96")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    paths = image_paths(32)
    print(f"{len(paths)} ELPV mono training cells (300x300); TF intra-op threads default, "
          f"{os.cpu_count()} CPUs, {simd()}")
    for k, size in enumerate(int(s) for s in args.sizes.split(",")):
        bb, X = layout_study(size, paths)
        score_study(bb, X)
        if k == 0 and size == 380:
            timing(bb, X, args.repeats)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
