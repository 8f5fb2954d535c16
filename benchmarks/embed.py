"""Embedding throughput: the whole pipeline against the raw forward pass, in one run.

For each backbone (random weights: the speed does not depend on their values), this encodes the
same image files twice:

* raw forward: the images are read, decoded and resized beforehand (not timed); only
  ``Backbone.forward`` on the pre-made batches is timed;
* pipeline: ``lowdata.features.encode.encode`` into an empty cache, i.e. read, decode, resize, forward and
  cache write, all timed.

It prints images/s of each and their ratio (goal: the pipeline within 15% of the raw forward pass,
ratio >= 0.85). Images: the MVTec AD bottle test set (900x900 PNG) when ``../shared`` is there,
else ELPV cells (300x300 PNG); ``--source`` picks one.

    .venv/bin/python benchmarks/embed.py [--backbones efficientnet-lite0,efficientnet-b4] [--images 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lowdata.features.backbones import load_backbone
from lowdata.features.encode import cache_for, encode, load_for

REPO = Path(__file__).resolve().parents[1]
MVTEC_BOTTLE = REPO.parent / "shared" / "data" / "mvtec_ad" / "bottle"


def image_files(n: int, source: str) -> tuple[str, list[Path]]:
    if source == "mvtec" or (source == "auto" and MVTEC_BOTTLE.is_dir()):
        files = sorted((MVTEC_BOTTLE / "train" / "good").glob("*.png"))
        return "MVTec AD bottle train 900x900 PNG", files[:n]
    from lowdata.data.elpv import load_elpv

    return "ELPV mono 300x300 PNG", [s.path for s in load_elpv("mono").train[:n]]


def bench(name: str, files: list[Path], batch_size: int, size: int | None, repeats: int) -> dict:
    bb = load_backbone(name, size, weights=None)
    tensors = np.stack([load_for(bb, p) for p in files]).astype(np.float32)
    bb.forward(tensors[:batch_size])  # warm-up: trace the graph once
    raw = pipe = float("inf")
    for _ in range(repeats):  # alternate the two, best of each: the machine's noise hits both alike
        t0 = time.perf_counter()
        for i in range(0, len(files), batch_size):
            bb.forward(tensors[i:i + batch_size])
        raw = min(raw, time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            emb = encode(bb, files, cache_for(bb, tmp), batch_size=batch_size, progress=False)
            assert emb.stats.encoded == len(files)
            pipe = min(pipe, emb.stats.seconds)
            cached_t0 = time.perf_counter()
            encode(bb, files, cache_for(bb, tmp), batch_size=batch_size, progress=False)
            cached = time.perf_counter() - cached_t0
    n = len(files)
    return dict(backbone=name, size=bb.input_size, n=n, raw=n / raw, pipeline=n / pipe, cached=n / cached)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", default="efficientnet-lite0,efficientnet-b4")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs of each")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--source", choices=["auto", "mvtec", "elpv"], default="auto",
                    help="which image files to encode (auto: MVTec bottle if present, else ELPV)")
    args = ap.parse_args()
    what, files = image_files(args.images, args.source)
    print(f"images: {len(files)} x {what}; batch {args.batch_size}; best of {args.repeats}; CPU cores: {os.cpu_count()}")
    print(f"{'backbone':<20}{'px':>5}{'raw fwd img/s':>15}{'pipeline img/s':>16}{'ratio':>8}{'cached img/s':>14}")
    for name in args.backbones.split(","):
        r = bench(name.strip(), files, args.batch_size, args.input_size, args.repeats)
        print(f"{r['backbone']:<20}{r['size']:>5}{r['raw']:>15.1f}{r['pipeline']:>16.1f}"
              f"{r['pipeline'] / r['raw']:>8.2f}{r['cached']:>14.0f}", flush=True)
    print("goal: pipeline / raw forward >= 0.85")
    return 0


if __name__ == "__main__":
    sys.exit(main())
