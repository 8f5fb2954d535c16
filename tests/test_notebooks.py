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


def test_book_runner_builds_a_page_per_category(tiny_mvtec, tmp_path, capsys):
    import shutil

    from lowdata.cli import main

    root = tmp_path / "bookroot"
    (root / "book" / "_mathjax" / "mathjax").mkdir(parents=True)
    (root / "book" / "_mathjax" / "mathjax" / "tex-chtml.js").write_text("// stand-in\n")
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    for f in (REPO / "book").glob("*.md"):
        shutil.copy(f, root / "book" / f.name)
    args = ["book", "--data", str(tiny_mvtec), "--no-elpv", "--input-size", "96", "--methods", "knn,maha-lw",
            "--sizes", "3,max", "--reps", "1", "--aug", "0", "--out", str(tmp_path / "res"), "--cache",
            str(tmp_path / "cache"), "--root", str(root), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "absent: mvtec/bottle" in out and "mvtec/widget: done" in out
    page = root / "_build" / "html" / "book" / "categories" / "mvtec-widget.html"
    assert page.is_file() and "AUROC" in page.read_text()
    # a failing study is reported with its error (its page is the executed notebook), and the exit status says so
    assert main(args + ["--methods", "knn", "--sizes", "50"]) == 1
    assert "mvtec/widget: failed" in capsys.readouterr().out and "N=50 is larger than the 6" in page.read_text()
