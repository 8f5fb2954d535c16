"""PatchCore on MVTec AD bottle (EfficientNet-Lite0, 380 px), timed: fit and score of the whole test set at
N = 10 and at N = 209 (every training image) with a 10 % coreset, each step apart (patch features, projection,
greedy coreset, nearest neighbours), the nearest-neighbour engines side by side on the same bank (ours:
float32 BLAS blocks; scikit-learn's brute force; faiss-cpu's exact ``IndexFlatL2`` when it is importable),
the image AUROC, pixel AUROC and AUPRO of each fit, and the ablations the book mentions (stages 4+6 only;
the coreset's projection). Each BLAS setting runs in its own child process (``native``: the
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` variables unset, what users' machines run; ``haswell``: as our
build machines set them); each prints the kernel threadpoolctl reports.

    .venv/bin/python benchmarks/patchcore.py [--blas native,haswell] [--sizes 10,209] [--coreset 0.1]
        [--full]  # also coreset 1.0 at N = 209 (every patch: minutes)
    PYTHONPATH=/path/to/faiss benchmarks/patchcore.py   # to compare faiss-cpu (pip install faiss-cpu)

The embedding cache (``$LOWDATA_CACHE`` or ``--cache``) and its feature packs are filled on the first run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MVTEC = REPO.parent / "shared" / "data" / "mvtec_ad"


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    import numpy as np
    from threadpoolctl import threadpool_info

    from lowdata.data.dataset import load_mask
    from lowdata.data.sources import load_category
    from lowdata.detectors import patchcore as pc
    from lowdata.experiments.design import draw_subset
    from lowdata.features.backbones import load_backbone
    from lowdata.features.encode import cache_for, encode, source_key
    from lowdata.features.embeddings import map_rows
    from lowdata.metrics import aupro, image_auroc, pixel_auroc

    kernels = sorted({f"{i['internal_api']} {i.get('architecture')}" for i in threadpool_info()})
    data = load_category("mvtec", args.category, root=args.data)
    bb = load_backbone("efficientnet-lite0", 380)
    cache = cache_for(bb, args.cache)
    train_keys = [source_key(s.path) for s in data.train]
    test_keys = [source_key(s.path) for s in data.test]
    encode(bb, [s.path for s in data.train], cache, keys=train_keys, progress=False)
    encode(bb, [s.path for s in data.test], cache, keys=test_keys, progress=False)
    train_maps = np.concatenate(list(map_rows(cache, train_keys).chunks()))
    test_maps = np.concatenate(list(map_rows(cache, test_keys).chunks()))
    labels = data.test_labels
    masks = np.stack([load_mask(s, (224, 224)) for s in data.test])
    out = {"kernels": kernels, "fits": []}

    def one(n: int, coreset: float, **params):
        idx = draw_subset(len(data.train), n, 0, 0)
        X = np.ascontiguousarray(train_maps[idx])
        det = pc.PatchCore(coreset=coreset, **params)
        t0 = time.perf_counter()
        det.fit(X)
        t1 = time.perf_counter()
        scores, maps = det.scores_and_maps(test_maps)
        t2 = time.perf_counter()
        heat = det.heatmaps(maps=maps, size=224, reference=224)
        row = {"N": n, "coreset": coreset, **params, "bank": len(det.bank_), "patches": det.n_patches_,
               "fit_s": round(t1 - t0, 2), "score_s": round(t2 - t1, 2), "fit_score_s": round(t2 - t0, 2),
               "auroc": round(image_auroc(labels, scores), 4), "pixel_auroc": round(pixel_auroc(masks, heat), 4),
               "aupro": round(aupro(masks, heat), 4), "peak_rss_mb": round(_rss_mb())}
        out["fits"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        return det

    for n in args.sizes:
        one(min(n, len(data.train)), args.coreset)
    n_max = len(data.train)
    # the steps of the largest fit, apart
    X = np.ascontiguousarray(train_maps[:n_max])
    det = pc.PatchCore(coreset=args.coreset)
    t = time.perf_counter()
    P = np.concatenate([pc.neighbourhood_mean(X[i:i + 32]).reshape(-1, X.shape[3]) for i in range(0, n_max, 32)])
    steps = {"patch_features_s": time.perf_counter() - t}
    rng = np.random.default_rng([0, 1])
    proj = (rng.standard_normal((P.shape[1], pc.PROJECTION)) / np.sqrt(pc.PROJECTION)).astype(np.float32)
    t = time.perf_counter()
    Z = P @ proj
    steps["projection_s"] = time.perf_counter() - t
    keep = pc._kept(args.coreset, len(P))
    t = time.perf_counter()
    chosen = pc.greedy_kcenter(Z, keep, 0)
    steps["greedy_s"] = time.perf_counter() - t
    bank = P[np.sort(chosen)]
    Q = np.concatenate([pc.neighbourhood_mean(test_maps[i:i + 32]).reshape(-1, X.shape[3])
                        for i in range(0, len(test_maps), 32)])
    det.bank_, det.n_train_, det.grid_, det.d_total_, det.d_ = bank, n_max, X.shape[1:3], X.shape[3], X.shape[3]
    det._prepare()
    engines = {}
    t = time.perf_counter()
    idx_ours, d_ours = det.nearest(Q)
    engines["numpy float32 BLAS blocks"] = time.perf_counter() - t
    from sklearn.neighbors import NearestNeighbors

    t = time.perf_counter()
    d_sk, idx_sk = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(bank).kneighbors(Q)
    engines["scikit-learn brute"] = time.perf_counter() - t
    agree = {"scikit-learn brute": float(np.max(np.abs(d_ours - d_sk[:, 0]) / np.maximum(d_sk[:, 0], 1e-12)))}
    try:
        import faiss

        t = time.perf_counter()
        index = faiss.IndexFlatL2(bank.shape[1])
        index.add(bank)
        d_f, _ = index.search(np.ascontiguousarray(Q), 1)
        engines["faiss-cpu IndexFlatL2"] = time.perf_counter() - t
        agree["faiss-cpu IndexFlatL2"] = float(np.max(np.abs(d_ours - np.sqrt(np.maximum(d_f[:, 0], 0)))
                                                     / np.maximum(d_sk[:, 0], 1e-12)))
    except ImportError:
        engines["faiss-cpu IndexFlatL2"] = None
    out["steps"] = {k: round(v, 2) for k, v in steps.items()} | {"patches": len(P), "bank": keep,
                                                                "test_patches": len(Q)}
    out["engines"] = {k: (round(v, 2) if v is not None else "not installed") for k, v in engines.items()}
    out["engine_max_rel_diff"] = agree
    # ablations at the largest N: stages 4 and 6 only; the reweighting off
    one(n_max, args.coreset, features=272)
    one(n_max, args.coreset, reweight=1)
    if args.full:
        one(n_max, 1.0)
    out["peak_rss_mb"] = round(_rss_mb())
    print(json.dumps(out))


def run_child(args, blas: str) -> dict:
    from study import blas_env  # benchmarks/study.py, beside this script

    env = blas_env(blas)
    cmd = [sys.executable, __file__, "--child", "--category", args.category, "--data", str(args.data),
           "--sizes", ",".join(map(str, args.sizes)), "--coreset", str(args.coreset)] + \
        (["--cache", str(args.cache)] if args.cache else []) + (["--full"] if args.full else [])
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the child ({blas}) failed (exit {done.returncode})")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--category", default="bottle")
    ap.add_argument("--data", type=Path, default=MVTEC)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--blas", default="native,haswell")
    ap.add_argument("--sizes", default="10,209", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--coreset", type=float, default=0.1)
    ap.add_argument("--full", action="store_true", help="also coreset 1.0 at the largest N")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if not (args.data / args.category / "train" / "good").is_dir():
        sys.exit(f"no MVTec AD {args.category} under {args.data}")
    for blas in args.blas.split(","):
        t0 = time.perf_counter()
        r = run_child(args, blas)
        print(f"\n== BLAS {blas}: {', '.join(r['kernels'])} (child {time.perf_counter() - t0:.0f} s, peak RSS "
              f"{r['peak_rss_mb']} MB)")
        print(f"{'N':>4} {'coreset':>7} {'other':>12} {'bank':>7} {'fit s':>7} {'score s':>7} {'total s':>7} "
              f"{'AUROC':>6} {'pixel':>6} {'AUPRO':>6}")
        for f in r["fits"]:
            other = ",".join(f"{k}={f[k]}" for k in ("features", "reweight") if k in f) or "-"
            print(f"{f['N']:>4} {f['coreset']:>7g} {other:>12} {f['bank']:>7} {f['fit_s']:>7.2f} {f['score_s']:>7.2f} "
                  f"{f['fit_score_s']:>7.2f} {f['auroc']:>6.3f} {f['pixel_auroc']:>6.3f} {f['aupro']:>6.3f}")
        s = r["steps"]
        print(f"largest fit apart ({s['patches']} patches -> bank {s['bank']}; {s['test_patches']} test patches): "
              f"patch features {s['patch_features_s']} s, projection {s['projection_s']} s, greedy coreset "
              f"{s['greedy_s']} s")
        print("nearest neighbours of every test patch in that bank: " + "; ".join(
            f"{k} {v if isinstance(v, str) else f'{v:.2f} s'}" for k, v in r["engines"].items()))
        print("largest relative distance difference to ours: " + "; ".join(
            f"{k} {v:.1e}" for k, v in r["engine_max_rel_diff"].items()))


if __name__ == "__main__":
    main()
