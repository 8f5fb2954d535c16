"""The paper's study of one category, timed: fitting seconds per method, under both BLAS settings and both
subset schemes, and the ratio to the per-fit path of an older lowdata, in one run.

Default: MVTec AD bottle (``../shared/data/mvtec_ad``), EfficientNet-Lite0 at 380 px, the paper's grid
(``--sizes auto``: 26 sizes), 5 replicates, augmentation factors 0 and 10, the four methods: 1008 fits.
Each setting runs in a child process on a fresh results table (the embedding cache and its feature packs
warm: the first child builds what is missing, and says how long that took):

* BLAS: ``as-set`` (the environment as it is), ``native`` (``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
  unset: what users' machines run) and ``haswell`` (``OPENBLAS_CORETYPE=Haswell``, as our build machines
  set it); each child prints the kernel threadpoolctl reports. ``as-set`` is skipped when it is one of the
  other two.
* subsets: ``independent`` and ``nested`` (``--subsets``; the AUROC difference between them is printed per
  method at the full training set and as the mean over the grid).
* ``--baseline SRC`` (the ``src`` folder of an older lowdata checkout, e.g. ``git worktree add /tmp/base
  e4e8277``): the same study at ``--baseline-sizes`` with one replicate, fitted there (each fit reads its
  subset from the cache), against the same fits of this run (replicate 0): the per-method speed ratio.

    .venv/bin/python benchmarks/study.py [--category bottle] [--blas native,haswell] [--subsets independent,nested]
        [--baseline /tmp/base/src] [--reps 5] [--sizes auto] [--aug 0,10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MVTEC = REPO.parent / "shared" / "data" / "mvtec_ad"
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def child(args) -> None:
    """One study in this process; prints one JSON line of figures."""
    import numpy as np
    from threadpoolctl import threadpool_info

    from lowdata.data.sources import load_category
    from lowdata.experiments.study import run_study
    from lowdata.experiments.design import StudyConfig, parse_factors, parse_sizes
    from lowdata.features.backbones import load_backbone
    from lowdata.features.encode import cache_for

    kernels = sorted({f"{i['internal_api']} {i.get('architecture')}" for i in threadpool_info()})
    floor = floor_seconds()
    data = load_category("mvtec", args.category, root=args.data)
    backbone = load_backbone("efficientnet-lite0", 380)
    cache = cache_for(backbone, args.cache)
    sizes = parse_sizes(args.sizes, len(data.train))
    cfg = dict(methods=args.methods.split(","), sizes=sizes, reps=args.reps, factors=parse_factors(args.aug))
    if hasattr(StudyConfig, "subsets") or "subsets" in getattr(StudyConfig, "__dataclass_fields__", {}):
        cfg["subsets"] = args.subsets
    out = Path(tempfile.mkdtemp(prefix="lowdata-bench-")) / "study.csv"
    t0 = time.perf_counter()
    if args.warm:  # encode (the cache and its packs): one fit of each kind, not timed as the study
        warm = dict(cfg, sizes=[sizes[-1]], reps=1, methods=["padim"])
        run_study(data, backbone, cache, StudyConfig(**warm), out.with_name("warm.csv"), progress=False)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = run_study(data, backbone, cache, StudyConfig(**cfg), out, progress=False)
    wall = time.perf_counter() - t0
    rows = df[["method", "n_train", "replicate", "aug_factor", "auroc", "fit_seconds"]].to_dict("records")
    import lowdata

    print(json.dumps({"lowdata": str(Path(lowdata.__file__).parent), "kernels": kernels, "warm_seconds": warm_s, "wall_seconds": wall, "fits": len(df), "floor": floor,
                      "rows": rows, "peak_rss_mb": _peak_rss_mb()}, default=float))


def floor_seconds() -> dict:
    """The BLAS floor of the largest PaDiM fit, measured in this process (the best of 3): the float32 batched
    Gram of 576 locations x 592 features x 2299 samples, and the float64 Cholesky factors of 576 592 x 592
    covariances (LAPACK, one matrix at a time)."""
    import numpy as np
    from scipy.linalg.lapack import dpotrf

    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 2299, 592), dtype=np.float32)
    gram = []
    for _ in range(3):
        t = time.perf_counter()
        g = np.matmul(np.swapaxes(x, 1, 2), x)
        gram.append((time.perf_counter() - t) * 24)
    A = g.astype(np.float64) / 2299 + np.eye(592) * 0.1
    chol = []
    for _ in range(3):
        B = A.copy()
        t = time.perf_counter()
        for j in range(len(B)):
            dpotrf(B[j].T, lower=0, clean=1, overwrite_a=1)
        chol.append((time.perf_counter() - t) * 24)
    return {"gram": min(gram), "cholesky": min(chol)}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_env(blas: str) -> dict:
    """The environment of a child under a BLAS setting: ``as-set``, ``native`` (both variables unset) or
    ``haswell`` (``OPENBLAS_CORETYPE=Haswell``)."""
    env = dict(os.environ)
    if blas in ("native", "haswell"):
        for v in BLAS_VARS:
            env.pop(v, None)
    if blas == "haswell":
        env["OPENBLAS_CORETYPE"] = "Haswell"
    return env


def run_child(args, blas: str, subsets: str, sizes: str, reps: int, pythonpath: str | None = None,
              warm: bool = False) -> dict:
    env = blas_env(blas)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, __file__, "--child", "--category", args.category, "--data", str(args.data),
           "--sizes", sizes, "--reps", str(reps), "--aug", args.aug, "--methods", args.methods,
           "--subsets", subsets] + (["--cache", str(args.cache)] if args.cache else []) + (["--warm"] if warm else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the child ({blas}, {subsets}) failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def fit_table(rows, keep=None) -> dict:
    """Fitting seconds per method (and in all), over the rows ``keep`` accepts."""
    out = {}
    for r in rows:
        if keep is None or keep(r):
            out[r["method"]] = out.get(r["method"], 0.0) + r["fit_seconds"]
    out["total"] = sum(out.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--category", default="bottle")
    ap.add_argument("--data", type=Path, default=MVTEC)
    ap.add_argument("--cache", type=Path, default=None, help="default $LOWDATA_CACHE or data/cache")
    ap.add_argument("--sizes", default="auto")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--aug", default="0,10")
    ap.add_argument("--methods", default="knn,maha-emp,maha-lw,padim")
    ap.add_argument("--blas", default="native,haswell", help="comma-separated: as-set, native, haswell")
    ap.add_argument("--subsets", default="independent,nested")
    ap.add_argument("--baseline", default=None, help="src folder of an older lowdata (the per-fit path)")
    ap.add_argument("--baseline-sizes", default="5,50,100,max")
    ap.add_argument("--baseline-blas", default=None, help="BLAS settings of the baseline (default: --blas)")
    ap.add_argument("--save", type=Path, default=None, help="a folder: each child's figures and rows as JSON")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if not (args.data / args.category / "train" / "good").is_dir():
        sys.exit(f"no MVTec AD {args.category} under {args.data}: download MVTec AD, or give --data")
    blas = [b.strip() for b in args.blas.split(",") if b.strip()]
    if "as-set" in blas and not any(v in os.environ for v in BLAS_VARS):
        print("(as-set is native here: neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE is set)")
        blas = [b for b in blas if b != "as-set"] or ["native"]
    schemes = [s.strip() for s in args.subsets.split(",") if s.strip()]
    methods = args.methods.split(",")
    results, first = {}, True
    for b in blas:
        for s in schemes:
            r = run_child(args, b, s, args.sizes, args.reps, warm=first)
            results[(b, s)] = r
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{b}-{s}.json").write_text(json.dumps(r))
            if first:
                print(f"cache and feature packs made ready in {r['warm_seconds']:.0f} s (one PaDiM fit included)")
            first = False
            fit = fit_table(r["rows"])
            print(f"[{b:7s} {s:11s}] {', '.join(r['kernels'])}; {r['fits']} fits, wall {r['wall_seconds']:.0f} s, "
                  f"fitting {fit['total']:.0f} s (" + ", ".join(f"{m} {fit[m]:.0f}" for m in methods if m in fit)
                  + f"), peak RSS {r['peak_rss_mb']:.0f} MB; BLAS floor of the largest PaDiM fit: Gram "
                  f"{r['floor']['gram']:.1f} s + Cholesky {r['floor']['cholesky']:.1f} s", flush=True)
    if len(schemes) == 2:
        import pandas as pd

        for b in blas:
            a, c = (pd.DataFrame(results[(b, s)]["rows"]) for s in schemes)
            mean = {s: d.groupby(["method", "aug_factor"])["auroc"].mean() for s, d in zip(schemes, (a, c))}
            diff = (mean[schemes[1]] - mean[schemes[0]]).round(4)
            print(f"\n[{b}] mean AUROC over the grid, {schemes[1]} minus {schemes[0]}:\n{diff.unstack().to_string()}")
            break  # the AUROCs do not depend on the BLAS kernel beyond rounding: one table
    if args.baseline:
        for b in [x.strip() for x in (args.baseline_blas or ",".join(blas)).split(",") if x.strip()]:
            base = run_child(args, b, "independent", args.baseline_sizes, 1, pythonpath=args.baseline)
            if args.save:
                (args.save / f"{b}-baseline.json").write_text(json.dumps(base))
            ours = results[(b, "independent")] if (b, "independent") in results else next(iter(results.values()))
            keys = {(r["method"], r["n_train"], r["aug_factor"]) for r in base["rows"]}
            new = fit_table(ours["rows"], lambda r: r["replicate"] == 0 and (r["method"], r["n_train"],
                                                                            r["aug_factor"]) in keys)
            old = fit_table(base["rows"])
            print(f"\n[{b}] baseline lowdata: {base['lowdata']}")
            print(f"\n[{b}] the same {len(base['rows'])} fits (sizes {args.baseline_sizes}, replicate 0), "
                  f"per-fit path of {args.baseline} / this run:")
            for m in methods + ["total"]:
                if m in old and m in new and new[m] > 0:
                    print(f"  {m:9s} {old[m]:8.1f} s / {new[m]:7.1f} s = {old[m] / new[m]:5.1f}x")


if __name__ == "__main__":
    main()
