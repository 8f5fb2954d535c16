"""The practitioner workflow's speed, in one run: fit on 10 good images, score one new image.

EfficientNet-Lite0 with its ImageNet weights at 380 px, on this machine's cores. Data: ten seeded
training images of the MVTec AD bottle when ``../shared`` is there, else of ELPV mono; the new image
is the category's first test image. Printed:

1. the backbone's load time (once per process: ``lowdata fit`` and ``lowdata score`` pay it each run);
2. per method, the median of ``--repeats`` runs, each with an empty embedding cache: encoding the ten
   images, fitting the detector (embedding excluded: the paper claims under 2 s at N = 10), setting
   the threshold (one fit per fold: leave-one-out), saving and loading the model, scoring one new
   image (its encoding included) and the model's size;
3. the two commands end to end (``lowdata fit`` then ``lowdata score`` in fresh processes), wall
   seconds, backbone loading and Python start-up included.

    .venv/bin/python benchmarks/workflow.py [--source auto|mvtec|elpv] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lowdata.features.backbones import load_backbone
from lowdata.data.sources import load_category
from lowdata.experiments.design import draw_subset
from lowdata.book.walkthrough import time_workflow

REPO = Path(__file__).resolve().parents[1]
MVTEC = REPO.parent / "shared" / "data" / "mvtec_ad"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=["auto", "mvtec", "elpv"], default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    source = args.source if args.source != "auto" else ("mvtec" if (MVTEC / "bottle").is_dir() else "elpv")
    data = load_category(source, "bottle" if source == "mvtec" else "mono", root=MVTEC if source == "mvtec" else None)
    goods = [data.train[i].path for i in draw_subset(len(data.train), 10, 0, 0)]
    one = data.test[0].path
    print(f"data: {source}/{data.category}, 10 training images, new image {one.name}; "
          f"{len(os.sched_getaffinity(0))} cores")

    t0 = time.perf_counter()
    bb = load_backbone("efficientnet-lite0")
    print(f"backbone efficientnet-lite0 at {bb.input_size} px loaded in {time.perf_counter() - t0:.2f} s")
    df = time_workflow(goods, one, ["knn", "maha-emp", "maha-lw", "padim"], bb, repeats=args.repeats)
    print(f"\nseconds per step, median of {args.repeats} runs with an empty cache:")
    print(df.round(4).to_string(index=False))

    print("\nthe commands end to end (fresh processes, empty cache):")
    lowdata = Path(sys.executable).with_name("lowdata")
    with tempfile.TemporaryDirectory(prefix="lowdata-bench-") as tmp:
        folder = Path(tmp) / "good"
        folder.mkdir()
        for p in goods:
            shutil.copy(p, folder / p.name)
        env = {**os.environ, "LOWDATA_CACHE": str(Path(tmp) / "cache")}
        for method in ("maha-lw", "padim"):
            steps = [("fit", [str(lowdata), "fit", str(folder), "--method", method, "--out", str(Path(tmp) / method),
                              "--no-progress"]),
                     ("score", [str(lowdata), "score", str(Path(tmp) / method), str(one), "--no-progress"]
                      + (["--heatmaps", str(Path(tmp) / "heat")] if method == "padim" else []))]
            for name, cmd in steps:
                t = time.perf_counter()
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stdout, done.stderr)
                    return 1
                print(f"  lowdata {name:<5} {method:<8} {time.perf_counter() - t:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
