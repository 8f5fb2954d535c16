"""``lowdata book`` over several data roots at once: each category's pages read from its own root, in its own
layout, and labelled with its own placeholder."""
import json
import shutil

import nbformat
import pandas as pd
import pytest

from conftest import REPO
from lowdata.cli import main
from miniatures import build_btad

pytest.importorskip("papermill")


def test_the_book_runs_the_categories_of_several_roots(tiny_mvtec, tmp_path, capsys, monkeypatch):
    btad = tmp_path / "BTAD"
    build_btad(btad)
    root = tmp_path / "bookroot"
    (root / "book").mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    monkeypatch.setenv("MVTEC_ROOT", str(tmp_path / "not-read"))  # --data replaces the environment's roots
    monkeypatch.chdir(tmp_path)  # a relative root is this folder's, though the notebooks run in the book's
    args = ["book", "--data", str(tiny_mvtec), "--data", "btad=BTAD", "--data", str(btad), "--no-elpv", "--input-size", "64",
            "--methods", "knn", "--sizes", "3,max", "--reps", "1", "--aug", "0", "--sweep", "", "--augment-only", "",
            "--out", str(tmp_path / "res"), "--cache", str(tmp_path / "cache"), "--root", str(root), "--no-build",
            "--no-pollution", "--no-workflow", "--no-beyond", "--no-backbones", "--no-autoaug",
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # BTAD given twice, once with its source: read once, in its layout
    assert f"data: btad={btad} (--data): btad/01" in out and f"data: {tiny_mvtec} (--data): mvtec/widget" in out
    assert out.count("data: ") == 2
    assert "mvtec/widget: done" in out and "btad/01: done" in out and "absent: mvtec/bottle" in out
    # each page reads its own root in its own layout; a page shows the root as its source's placeholder
    def injected(name):
        page = nbformat.read(root / "book" / "categories" / name, as_version=4)
        assert str(tmp_path) not in json.dumps(page)
        return next(c.source for c in page.cells if "injected-parameters" in c.metadata.get("tags", []))

    assert 'data_root = "$LOWDATA_BTAD_ROOT"' in injected("btad-01.ipynb")  # recognised as BTAD: no prefix needed
    assert 'data_root = "$MVTEC_ROOT"' in injected("mvtec-widget.ipynb")
    for source, category in (("btad", "01"), ("mvtec", "widget")):
        df = pd.read_parquet(tmp_path / "res" / f"study-{source}-{category}-efficientnet-lite0.parquet")
        assert set(df["source"]) == {source} and len(df) == (1 if source == "btad" else 2)
    run = json.loads((root / "book" / "results" / "run.json").read_text())
    assert run["data_roots"] == [str(tiny_mvtec), f"btad={btad}"]
    assert [(r["source"], r["category"], r["status"]) for r in run["categories"]] == [
        ("mvtec", "widget", "done"), ("btad", "01", "done")]
    # the summaries group by data set: BTAD's row beside MVTec AD's
    sample = json.dumps(nbformat.read(root / "book" / "results" / "sample-size.ipynb", as_version=4))
    assert "BTAD (01)" in sample and "MVTec AD (1 of 15)" in sample
