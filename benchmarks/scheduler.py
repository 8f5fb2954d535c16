"""Wall time of the embedded default book run, serial against Dask's ``--scheduler local``, in one run.

Each variant runs ``lowdata book`` (the default preset on ELPV mono and poly, with the pollution and
workflow chapters, then the summaries and the Jupyter Book build) in a fresh process with its **own
empty cache and results folder** and its own copy of the book's sources, so each one encodes and fits
everything: the figures compare like with like. Variants: ``none`` (serial), ``local`` (the default
LocalCluster: one worker per two cores) and, with ``--workers 2 ...``, local clusters of that size.
At the end the result tables of every variant are compared (they must be equal, timings aside).

    .venv/bin/python benchmarks/scheduler.py [--workers 2] [--keep DIR]

About 17 minutes per variant on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TIMINGS = ["fit_seconds", "score_seconds"]


def book_root(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, dest / f)
    (dest / "book").mkdir()
    for f in (REPO / "book").glob("*.md"):
        shutil.copy(f, dest / "book" / f.name)
    if (REPO / "book" / "_mathjax").is_dir():
        shutil.copytree(REPO / "book" / "_mathjax", dest / "book" / "_mathjax")
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="*", default=[], help="extra local cluster sizes to time")
    ap.add_argument("--keep", type=Path, help="keep the runs' folders here (default: a temporary folder)")
    args = ap.parse_args()
    lowdata = Path(sys.executable).with_name("lowdata")
    variants = [("none", []), ("local", [])] + [(f"local, {w} workers", ["--workers", str(w)]) for w in args.workers]
    base = args.keep or Path(tempfile.mkdtemp(prefix="lowdata-sched-"))
    times, tables = {}, {}
    try:
        for i, (name, extra) in enumerate(variants):
            d = base / f"run{i}"
            root = book_root(d / "root")
            cmd = [str(lowdata), "book", "--root", str(root), "--out", str(d / "results"), "--cache", str(d / "cache"),
                   "--scheduler", name.split(",")[0], "--no-progress", *extra]
            print(f"{name}: {' '.join(cmd)}", flush=True)
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            times[name] = time.perf_counter() - t0
            last = [line for line in done.stdout.splitlines() if line.strip()][-3:]
            print(f"  exit {done.returncode}, {times[name] / 60:.1f} min; " + " | ".join(last), flush=True)
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:])
                return 1
            tables[name] = pd.concat([pd.read_parquet(p) for p in sorted((d / "results").glob("study-*.parquet"))],
                                     ignore_index=True).drop(columns=TIMINGS)
            shutil.rmtree(d / "cache", ignore_errors=True)  # about 18 GB of embeddings per variant
        print("\nwall time of `lowdata book` (embedded default, cold cache), this machine:")
        ref = times["none"]
        for name, t in times.items():
            print(f"  {name:<18} {t / 60:6.1f} min   {ref / t:5.2f}x the serial speed")
        first = tables["none"]
        for name, df in tables.items():
            same = df.equals(first)
            print(f"  result tables of {name!r} equal to the serial run's: {same} ({len(df)} rows)")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
