"""Which backbone? (issue 33, point 1, as a measurement outside the book; the book's chapter is
``lowdata book --backbones``, :mod:`lowdata.book.backbones`.)

The sample-size study for each backbone on each category, the same seeded subsets for all, then per detector the
image AUROC at each N and the area under the AUC-percent curve by backbone (mean over categories and replicates),
and what each backbone costs: images per second through its forward pass on real images (every image alone, as
encoding runs it; a warm-up first), the width of its features per level, and EfficientNet-B4 (the paper's choice)
timed with random weights when its ImageNet weights are not here (the architecture's cost is the weights').

    .venv/bin/python benchmarks/backbones.py [--categories elpv:mono,elpv:poly,mvtec:bottle] [--data ROOT]
        [--backbones efficientnet-lite0,efficientnet-lite1,efficientnet-lite2] [--sizes 5,10,max] [--reps 2]
        [--aug 0] [--methods knn,maha-lw,padim,patchcore] [--input-size 380] [--out DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

from lowdata.book.backbones import forward_speed
from lowdata.core.errors import LowdataError
from lowdata.data.sources import load_category
from lowdata.experiments.design import StudyConfig, parse_factors, parse_sizes
from lowdata.experiments.study import fitted, run_study
from lowdata.features.backbones import load_backbone
from lowdata.features.encode import cache_for
from lowdata.metrics import auc_percent_area


def speed(bb, paths, rounds: int = 2) -> float:
    """Images per second through the forward pass, each image alone, best of ``rounds``."""
    return forward_speed(bb, paths, rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--categories", default="elpv:mono,elpv:poly")
    ap.add_argument("--data", help="the root of the categories of a folder layout (mvtec:bottle...)")
    ap.add_argument("--backbones", default="efficientnet-lite0,efficientnet-lite1,efficientnet-lite2")
    ap.add_argument("--sizes", default="5,10,max")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--aug", default="0")
    ap.add_argument("--methods", default="knn,maha-lw,padim,patchcore")
    ap.add_argument("--input-size", type=int, default=380)
    ap.add_argument("--images", type=int, default=16, help="images timed per backbone")
    ap.add_argument("--out", default="data/results/backbones")
    ap.add_argument("--cache")
    args = ap.parse_args()
    cats = [c.split(":", 1) for c in args.categories.split(",")]
    datasets = [load_category(s, c, root=None if s == "elpv" else args.data) for s, c in cats]
    rows, costs = [], []
    timed = [s.path for s in datasets[0].test[:args.images]]
    for name in args.backbones.split(","):
        bb = load_backbone(name, args.input_size)
        tf_speed = speed(load_backbone(name, args.input_size, runtime="tensorflow"), timed)
        costs.append({"backbone": name, "weights": "ImageNet", "img/s": round(speed(bb, timed), 1),
                      "img/s TensorFlow": round(tf_speed, 1),
                      "feature width": " + ".join(str(s[2]) for s in bb.level_shapes),
                      "grids": ", ".join(f"{h}x{w}" for h, w, _ in bb.level_shapes)})
        for data in datasets:
            config = StudyConfig(methods=args.methods.split(","), sizes=parse_sizes(args.sizes, len(data.train)),
                                 reps=args.reps, factors=parse_factors(args.aug))
            out = Path(args.out) / f"backbones-{data.source}-{data.category}-{name}.parquet"
            df = fitted(run_study(data, bb, cache_for(bb, args.cache), config, out, progress=False))
            rows.append(df.assign(backbone_name=name))
            print(f"{name} {data.source}/{data.category}: {len(df)} fits", flush=True)
    try:  # the paper's choice: its cost, even without its weights (on TensorFlow: B4 with random weights keeps its
        # Normalization's statistics as free tensors, which the ONNX conversion takes for inputs)
        b4 = load_backbone("efficientnet-b4", args.input_size, runtime="tensorflow")
        weights = "ImageNet"
    except LowdataError:
        b4 = load_backbone("efficientnet-b4", args.input_size, weights=None, runtime="tensorflow")
        weights = "random (timing only)"
    costs.append({"backbone": "efficientnet-b4", "weights": weights, "img/s": float("nan"),
                  "img/s TensorFlow": round(speed(b4, timed), 1),
                  "feature width": " + ".join(str(s[2]) for s in b4.level_shapes),
                  "grids": ", ".join(f"{h}x{w}" for h, w, _ in b4.level_shapes)})
    df = pd.concat(rows, ignore_index=True)
    df["N"] = np.where(df["n_train"] == df["n_pool"], "max", df["n_train"].astype(str))
    print(f"\nimage AUROC (mean over {len(datasets)} categories and {args.reps} replicates; 1 at max), "
          f"{args.input_size} px, augmentation {args.aug}:")
    t = df.groupby(["method", "aug_factor", "N", "backbone_name"])["auroc"].mean().unstack("backbone_name")
    print(t.round(4).to_string())
    areas = []
    for (m, f, name, src, cat), g in df.groupby(["method", "aug_factor", "backbone_name", "source", "category"]):
        curve = g.groupby("n_train")["auroc"].mean()
        n_pool = int(g["n_pool"].max())
        if n_pool in curve.index and len(curve) > 1:
            areas.append({"method": m, "aug_factor": f, "backbone": name,
                          "area": auc_percent_area(curve.index, curve.values, n_pool)})
    if areas:
        print("\narea under the AUC-percent curve (mean over categories):")
        print(pd.DataFrame(areas).groupby(["method", "aug_factor", "backbone"])["area"].mean().unstack("backbone")
              .round(4).to_string())
    print(f"\nencoding cost at {args.input_size} px ({args.images} real images, each alone, best of 2):")
    print(pd.DataFrame(costs).set_index("backbone").to_string())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
