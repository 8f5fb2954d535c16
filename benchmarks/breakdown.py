"""Where a `make run` went: time per part (from the run record), fits and scores per results table, encoding,
disk per folder, and (with --time-log, the output of `/usr/bin/time -v`) peak memory.

    /usr/bin/time -v -o time.log make run
    .venv/bin/python benchmarks/breakdown.py --time-log time.log [--markdown]

Prints one table; ``--markdown`` prints it as the book's reproduction page shows it. Nothing is estimated:
each figure is read from what the run wrote (or measured on the folders now).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def du(path: Path) -> float:
    """GB on disk (du -sb: apparent bytes)."""
    if not path.exists():
        return 0.0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1e9 if out else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO, help="the checkout that ran make run")
    ap.add_argument("--time-log", type=Path, help="the output of /usr/bin/time -v make run")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    root = args.root
    run = json.loads((root / "book" / "results" / "run.json").read_text())
    rows = []
    for part in ("categories", "pollution", "workflow", "beyond", "autoaug"):
        for r in run.get(part, []):
            rows.append({"part": part if part != "categories" else "study", "what": f"{r['source']}/{r['category']}",
                         "minutes": r.get("seconds", 0) / 60})
    summaries = sum(r.get("seconds", 0) for r in run.get("summaries", []))
    rows.append({"part": "summaries", "what": f"{len(run.get('summaries', []))} notebooks", "minutes": summaries / 60})
    if "build_seconds" in run:
        rows.append({"part": "book build", "what": "jupyter-book", "minutes": run["build_seconds"] / 60})
    rows.append({"part": "lowdata book", "what": "in all", "minutes": run.get("total_seconds", 0) / 60})
    table = pd.DataFrame(rows)
    fits = []
    for path in sorted((root / "data" / "results").glob("*.parquet")):
        df = pd.read_parquet(path)
        if {"fit_seconds", "score_seconds"} <= set(df.columns):
            fits.append({"table": path.name, "rows": len(df), "fit min": df["fit_seconds"].sum() / 60,
                         "score min": df["score_seconds"].sum() / 60})
    disk = {"data/cache/maps (feature packs)": du(root / "data" / "cache" / "maps"),
            "data/cache/embeddings (entries)": du(root / "data" / "cache" / "embeddings"),
            "data/cache/store (older lowdata)": du(root / "data" / "cache" / "store"),
            "data/results": du(root / "data" / "results"), "data (all)": du(root / "data"),
            ".venv": du(root / ".venv"), "_build": du(root / "_build")}
    memory = {}
    if args.time_log and args.time_log.is_file():
        text = args.time_log.read_text()
        for label, pattern in (("peak RSS GB (largest process)", r"Maximum resident set size \(kbytes\): (\d+)"),):
            m = re.search(pattern, text)
            if m:
                memory[label] = int(m.group(1)) / 1e6
        m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
        if m:
            parts = [float(x) for x in m.group(1).split(":")]
            memory["make run wall minutes"] = (parts[-3] * 60 if len(parts) == 3 else 0) + parts[-2] + parts[-1] / 60
    show = (lambda df: df.to_markdown(index=False, floatfmt=".2f")) if args.markdown else \
        (lambda df: df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(show(table))
    print()
    if fits:
        print(show(pd.DataFrame(fits)))
        print()
    print(show(pd.DataFrame({"folder": list(disk), "GB": list(disk.values())})))
    if memory:
        print()
        print(show(pd.DataFrame({"figure": list(memory), "value": list(memory.values())})))


if __name__ == "__main__":
    main()
