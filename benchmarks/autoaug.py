"""How long an automatic augmentation search takes (issue 17's goal: N = 10 under 5 minutes on 2 cores, Lite0).

For each method, the same search (budget 32, successive halving at 2, 4 and 8 copies, 5 folds, seed 0) on
the first seeded subset of N training images, run twice in one child process: **cold** (a fresh, empty
cache: every original, synthetic defect and copy is encoded) and **warm** (the same cache again: the fits
only). Printed per method and BLAS setting (``native``: OpenBLAS's own kernel, as users' machines have it;
``haswell``: this farm's ``OPENBLAS_CORETYPE=Haswell``): seconds in all, of which encoding and fits, the
images encoded, and the policy chosen.

    .venv/bin/python benchmarks/autoaug.py                       # bottle, maha-lw,padim,knn,patchcore, N = 10
    .venv/bin/python benchmarks/autoaug.py --category mono --data '' --methods maha-lw --blas native
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MVTEC = REPO.parent / "shared" / "data" / "mvtec_ad"


def child(args) -> None:
    from threadpoolctl import threadpool_info

    from lowdata.autoaug.search import SearchConfig, search_policy
    from lowdata.data.sources import load_category
    from lowdata.experiments.design import draw_subset
    from lowdata.features.backbones import load_backbone
    from lowdata.features.encode import cache_for

    data = load_category("mvtec" if args.data else "elpv", args.category, root=args.data or None)
    idx = draw_subset(len(data.train), args.n, 0, 0)
    paths = [data.train[i].path for i in idx]
    bb = load_backbone("efficientnet-lite0")
    kernel = ",".join(sorted({i.get("architecture", "?") for i in threadpool_info() if i.get("internal_api") == "openblas"}))
    out = {"kernel": kernel, "methods": {}}
    with tempfile.TemporaryDirectory(prefix="lowdata-bench-autoaug-") as tmp:
        cache = cache_for(bb, tmp)
        for m in args.methods.split(","):
            runs = []
            for label in ("cold", "warm"):
                t = time.perf_counter()
                res = search_policy(paths, m, bb, cache, SearchConfig(), progress=False)
                runs.append({"run": label, "seconds": time.perf_counter() - t, "encode": res.encode_seconds,
                             "fits": res.fit_seconds, "chosen": f"{res.best.name}: {res.best_rows(1)['transforms'].iloc[0]}",
                             "fitness": float(res.best_rows(1)["fitness"].iloc[0])})
            out["methods"][m] = runs
            cache = cache_for(bb, Path(tmp) / m)  # the next method starts cold too
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--category", default="bottle")
    ap.add_argument("--data", default=str(MVTEC), help="an MVTec-layout root; '' for the embedded ELPV data")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--methods", default="maha-lw,padim,knn,patchcore")
    ap.add_argument("--blas", default="native,haswell")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from study import blas_env  # benchmarks/study.py, beside this script

    print(f"policy search, {args.category}, N = {args.n}, budget 32, rungs 2/4/8 copies, 5 folds, Lite0 at 380 px")
    for blas in args.blas.split(","):
        cmd = [sys.executable, __file__, "--child", "--category", args.category, "--data", args.data, "--n",
               str(args.n), "--methods", args.methods]
        done = subprocess.run(cmd, env=blas_env(blas), capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            sys.exit(f"the child ({blas}) failed:\n{done.stderr[-3000:]}")
        res = json.loads(lines[-1])
        print(f"\nBLAS {blas} (OpenBLAS kernel {res['kernel']}):")
        print(f"  {'method':<10} {'run':<5} {'total s':>8} {'encode s':>9} {'fits s':>7}  chosen (fitness)")
        for m, runs in res["methods"].items():
            for r in runs:
                print(f"  {m:<10} {r['run']:<5} {r['seconds']:8.1f} {r['encode']:9.1f} {r['fits']:7.1f}  "
                      f"{r['chosen']} ({r['fitness']:.4f})")


if __name__ == "__main__":
    main()
