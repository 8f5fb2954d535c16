"""Re-make the nbval references: the book's notebooks executed by papermill on a tiny configuration.

    .venv/bin/python tests/notebooks/make_reference.py

Runs ``notebooks/category.ipynb`` on ELPV mono (the embedded data) at 96 px with 3 sizes, 2
replicates and small augmentation factors, then the summary notebooks on its results, and writes
the executed notebooks here, plus ``reference-results.csv`` (the seeded study rows). Commit them
when a change of numbers is intended; ``tests/notebooks/test_nbval.py`` re-executes them under nbval and
compares. Results go to a temporary folder; embeddings to ``$LOWDATA_CACHE`` (default: the
repository's ``data/cache``).

The references are made on the TensorFlow runtime (``LOWDATA_RUNTIME=tensorflow`` unless set), the one they were
first made on, so that re-making them after a change that moves no number leaves ``reference-*.csv`` byte for
byte as they are. nbval runs the notebooks on the default runtime (ONNX Runtime) and compares within the
tolerance of ``sanitize.cfg``: one PaDiM AUROC of ``reference-results.csv`` differs by 1.8e-5 there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

#: the tiny configuration (results_dir and out_dir are relative: nbval runs a notebook in its folder)
CATEGORY = {"data_root": None, "category": "mono", "backbone": "efficientnet-lite0", "input_size": 96,
            "methods": "knn,maha-emp,maha-lw,padim", "sizes": "5,10,max", "reps": 2, "aug": "0,2", "sweep": "1",
            "augment_only": "1", "out_dir": "nbval-results", "cache_dir": None, "seed": 0}
SUMMARY = {"results_dir": "nbval-results", "run_file": "no-run.json", "backbone": "efficientnet-lite0",
           "input_size": 96, "cache_dir": None, "seed": 0, "heat_source": "elpv", "heat_category": "mono",
           "data_root": None}
POLLUTION = {"data_root": None, "category": "mono", "backbone": "efficientnet-lite0", "input_size": 96,
             "methods": "knn,maha-lw", "rates": "0,0.1", "reps": 1, "aug": "0,1", "ablation": True,
             "out_dir": "nbval-results", "cache_dir": None, "seed": 0, "progress": False}
WORKFLOW = {"data_root": None, "category": "mono", "backbone": "efficientnet-lite0", "input_size": 96,
            "method": "padim", "methods": "knn,maha-lw,padim", "n": 10, "reps": 2, "fprs": "0.05,0.01",
            "rules": "lognormal,conformal,chi2", "out_dir": "nbval-results", "cache_dir": None, "seed": 0,
            "progress": False}
#: executed in this order (the summaries read the category's results)
NOTEBOOKS = [("category", "category-mono", CATEGORY), ("sample-size", "sample-size", SUMMARY),
             ("augmentation", "augmentation", SUMMARY), ("heatmaps", "heatmaps", SUMMARY),
             ("reproduction", "reproduction", SUMMARY), ("pollution", "pollution-mono", POLLUTION),
             ("workflow", "workflow-mono", WORKFLOW)]
KEY = ["category", "method", "n_train", "replicate", "aug_factor", "augment_only"]
POLLUTION_KEY = ["category", "method", "rate", "replicate", "aug_factor", "refinement", "params"]


def main() -> int:
    import nbformat
    import pandas as pd
    import papermill

    os.environ.setdefault("LOWDATA_CACHE", str(REPO / "data" / "cache"))
    os.environ.setdefault("LOWDATA_RUNTIME", "tensorflow")
    with tempfile.TemporaryDirectory() as tmp:
        for template, name, params in NOTEBOOKS:
            print(f"executing {template} -> {name}.ipynb", flush=True)
            papermill.execute_notebook(str(REPO / "notebooks" / f"{template}.ipynb"), str(Path(tmp) / f"{name}.ipynb"),
                                       parameters=params, cwd=tmp, progress_bar=False, kernel_name="python3")
        for _, name, _ in NOTEBOOKS:  # without the PNGs, which nbval does not compare: a small reference
            nb = nbformat.read(Path(tmp) / f"{name}.ipynb", as_version=4)
            for cell in nb.cells:
                for out in cell.get("outputs", []):
                    for key in [k for k in out.get("data", {}) if k.startswith("image/")]:
                        del out["data"][key]
            nbformat.write(nb, HERE / f"{name}.ipynb")
        df = pd.read_parquet(Path(tmp) / "nbval-results" / "study-elpv-mono-efficientnet-lite0.parquet")
        df[KEY + ["auroc"]].sort_values(KEY).to_csv(HERE / "reference-results.csv", index=False, float_format="%.6f")
        pol = pd.read_parquet(Path(tmp) / "nbval-results" / "pollution-elpv-mono-efficientnet-lite0.parquet")
        pol[POLLUTION_KEY + ["auroc", "n_kept"]].sort_values(POLLUTION_KEY).to_csv(
            HERE / "reference-pollution.csv", index=False, float_format="%.6f")
    print(f"wrote {len(NOTEBOOKS)} notebooks and reference-results.csv ({len(df)} rows) to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
