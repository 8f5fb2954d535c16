"""TensorFlow against ONNX Runtime for the backbone's forward pass (``$LOWDATA_RUNTIME``), on real ELPV cells.

For each input size: images per second through ``Backbone.forward`` (every image alone, as encoding runs it),
the two runtimes interleaved round by round on the same images (ratios measured in one run); the time to
build each backbone (ONNX Runtime: the tf2onnx conversion included); the largest difference of the features
per level (absolute, and relative to the level's largest value); whether a second call gives the same bits;
and, since the forward pass runs on oneDNN / MLAS rather than BLAS, the BLAS kernel threadpoolctl reports
(for the record: ``OPENBLAS_CORETYPE`` does not reach this code).

    .venv/bin/python benchmarks/runtime.py [--sizes 380,96] [--images 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from lowdata.data.elpv import load_elpv
from lowdata.data.images import read_image, resize_rgb
from lowdata.features.backbones import load_backbone


def build(runtime: str, size: int):
    os.environ["LOWDATA_RUNTIME"] = runtime
    t0 = time.perf_counter()
    bb = load_backbone("efficientnet-lite0", size)
    bb.forward(np.zeros((1, size, size, 3), np.float32))  # warm-up: the first call traces or plans
    return bb, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="380,96")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '?')}" for i in threadpool_info()
                         if i.get("user_api") == "blas") or "none loaded"
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"cores {os.cpu_count()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"BLAS: {blas}")
    cells = load_elpv("mono").train[:args.images]
    for size in (int(s) for s in args.sizes.split(",")):
        images = np.stack([resize_rgb(read_image(s.path), size) for s in cells]).astype(np.float32)
        (tf_bb, tf_build), (ort_bb, ort_build) = build("tensorflow", size), build("onnxruntime", size)
        rates = {"tensorflow": [], "onnxruntime": []}
        for _ in range(args.rounds):
            for name, bb in (("tensorflow", tf_bb), ("onnxruntime", ort_bb)):
                t0 = time.perf_counter()
                bb.forward(images)
                rates[name].append(len(images) / (time.perf_counter() - t0))
        a, b = tf_bb.forward(images[:4]), ort_bb.forward(images[:4])
        again = ort_bb.forward(images[:4])
        print(f"\n{size} px, {len(images)} images x {args.rounds} rounds (images/s: min / median / max)")
        for name, build_s in (("tensorflow", tf_build), ("onnxruntime", ort_build)):
            r = rates[name]
            print(f"  {name:<12} {min(r):6.1f} / {statistics.median(r):6.1f} / {max(r):6.1f}   built in {build_s:.1f} s")
        print(f"  ratio of medians (onnxruntime / tensorflow): "
              f"{statistics.median(rates['onnxruntime']) / statistics.median(rates['tensorflow']):.2f}")
        for level, x, y in zip(tf_bb.levels, a, b):
            diff = float(np.abs(x - y).max())
            print(f"  {level}: max |tf - ort| {diff:.2e} ({diff / float(np.abs(x).max()):.1e} of the level's largest)")
        print(f"  onnxruntime gives the same bits twice: {all(np.array_equal(x, y) for x, y in zip(b, again))}")


if __name__ == "__main__":
    main()
