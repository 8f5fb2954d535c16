"""notebooks/category.ipynb executed by papermill on a tiny MVTec-layout folder."""

import pandas as pd
import pytest
from conftest import REPO

papermill = pytest.importorskip("papermill")


def run(tmp_path, **params):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "category.ipynb"), str(out), parameters=params,
                               progress_bar=False, cwd=str(tmp_path), kernel_name="python3")
    return out


def test_category_notebook_runs_the_study(tiny_mvtec, tmp_path):
    run(tmp_path, data_root=str(tiny_mvtec), category="widget", input_size=96, methods="knn,maha-lw",
        sizes="3,max", reps=2, aug="0", out_dir=str(tmp_path / "res"), cache_dir=str(tmp_path / "cache"))
    df = pd.read_parquet(tmp_path / "res" / "study-mvtec-widget-efficientnet-lite0.parquet")
    assert len(df) == (2 + 1) * 2 and set(df.method) == {"knn", "maha-lw"}


def test_category_notebook_rejects_a_wrong_type(tiny_mvtec, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="reps must be int, got 'five'"):
        run(tmp_path, data_root=str(tiny_mvtec), category="widget", reps="five")
