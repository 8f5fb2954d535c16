"""notebooks/category.ipynb executed by papermill on a tiny MVTec-layout folder."""

import re

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
    run(tmp_path, data_root=str(tiny_mvtec), category="widget", input_size=96, methods="knn,maha-lw,padim",
        sizes="3,max", reps=2, aug="0", sweep="1", augment_only="2", out_dir=str(tmp_path / "res"),
        cache_dir=str(tmp_path / "cache"))
    df = pd.read_parquet(tmp_path / "res" / "study-mvtec-widget-efficientnet-lite0.parquet")
    fits = df.groupby(["method", "aug_factor", "augment_only"]).size().to_dict()
    # (2 + 1) subsets each: every method with aug 0 and augment-only 2; the sweep (factor 1) without PaDiM
    assert fits == {(m, 0, False): 3 for m in ("knn", "maha-lw", "padim")} | \
        {(m, 2, True): 3 for m in ("knn", "maha-lw", "padim")} | {(m, 1, False): 3 for m in ("knn", "maha-lw")}


def test_category_notebook_rejects_a_wrong_type_or_an_unknown_name(tiny_mvtec, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="reps must be int, got 'five'"):
        run(tmp_path, data_root=str(tiny_mvtec), category="widget", reps="five")
    with pytest.raises(papermill.PapermillExecutionError, match="unknown method 'svm'"):
        run(tmp_path, data_root=str(tiny_mvtec), category="widget", methods="knn,svm")
    with pytest.raises(papermill.PapermillExecutionError, match="gizmo"):
        run(tmp_path, data_root=str(tiny_mvtec), category="gizmo", out_dir=str(tmp_path / "res"))


def test_book_runner_builds_every_page(tiny_mvtec, tmp_path, capsys):
    import json
    import shutil

    from lowdata.cli import main

    root = tmp_path / "bookroot"
    (root / "book" / "_mathjax" / "mathjax").mkdir(parents=True)
    (root / "book" / "_mathjax" / "mathjax" / "tex-chtml.js").write_text("// stand-in\n")
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    for f in (REPO / "book").glob("*.md"):
        shutil.copy(f, root / "book" / f.name)
    for d in ("_ext", "_static"):
        shutil.copytree(REPO / "book" / d, root / "book" / d, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "book" / "categories").mkdir()
    (root / "book" / "pollution").mkdir()
    (root / "book" / "pollution" / "mvtec-gone.ipynb").write_text("{}")
    (root / "book" / "categories" / "mvtec-gone.ipynb").write_text("{}")  # a stale page of an earlier run
    args = ["book", "--data", str(tiny_mvtec), "--no-elpv", "--input-size", "96", "--methods", "knn,maha-lw,padim",
            "--sizes", "3,max", "--reps", "1", "--aug", "0", "--sweep", "1", "--augment-only", "1",
            "--out", str(tmp_path / "res"), "--cache", str(tmp_path / "cache"), "--root", str(root), "--no-progress",
            "--backbones", "efficientnet-lite0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "absent: mvtec/bottle" in out and "mvtec/widget: done" in out and "summary heatmaps: done" in out
    assert not (root / "book" / "categories" / "mvtec-gone.ipynb").exists()
    assert not (root / "book" / "pollution" / "mvtec-gone.ipynb").exists()
    assert "pollution mvtec/widget: done" in out
    assert "workflow mvtec/widget: done" in out
    walk = (root / "_build" / "html" / "book" / "workflow" / "mvtec-widget.html").read_text()
    assert "Workflow: MVTec AD widget" in walk and walk.count("<img") >= 4 and "fpr_measured" in walk
    assert "has 6 training images, fewer than n=10" in walk  # said, not silently changed
    polluted = (root / "_build" / "html" / "book" / "pollution" / "mvtec-widget.html").read_text()
    assert "Polluted training sets: MVTec AD widget" in polluted and "<img" in polluted and "oracle" in polluted
    html = root / "_build" / "html" / "book"
    page = html / "categories" / "mvtec-widget.html"
    assert page.is_file() and "MVTec AD: widget" in page.read_text() and "its row of Table 5" in page.read_text()
    sample = (html / "results" / "sample-size.html").read_text()
    assert "0.911" in sample and "MVTec AD (1 of 15)" in sample  # the paper's Table 1 KNN value beside ours
    assert "widget" in sample and "<img" in sample
    assert "<img" in (html / "results" / "heatmaps.html").read_text()
    assert "horizontal+vertical" in (html / "results" / "augmentation.html").read_text()  # Table 4
    run = json.loads((root / "book" / "results" / "run.json").read_text())
    assert run["params"]["seed"] == 0 and run["categories"][0]["status"] == "done" and "bottle" in run["absent"]
    assert "lowdata" in run["environment"]["versions"] and run["total_seconds"] > 0
    assert run["pollution"][0]["status"] == "done" and run["workflow"][0]["status"] == "done"
    assert run["beyond"][0]["status"] == "done" and "beyond mvtec/widget: done" in out
    beyond = (html / "beyond" / "mvtec-widget.html").read_text()
    assert "Beyond the paper: MVTec AD widget" in beyond and "AnomalyDINO" in beyond and "<img" in beyond
    assert "N = 8 left out: widget has 6 training images" in beyond  # the default grid, cut and said
    assert "PatchCore" in (html / "beyond.html").read_text()
    every = (html / "results" / "beyond-summary.html").read_text()
    assert "1 category, " in every and "AnomalyDINO" in every and every.count("<img") >= 2 and "aupro" in every
    assert run["backbones"][0]["status"] == "done" and "backbones mvtec/widget: done" in out
    chosen = (html / "backbones" / "mvtec-widget.html").read_text()
    assert "Which backbone? MVTec AD widget" in chosen and "<img" in chosen and "N = 10 left out" in chosen
    every = (html / "results" / "backbones-summary.html").read_text()
    assert "1 category, " in every and "<img" in every and "times the time" in every and "832" in every
    assert run["autoaug"][0]["status"] == "done" and "autoaug mvtec/widget: done" in out
    auto = (html / "autoaug" / "mvtec-widget.html").read_text()
    assert "Choosing the augmentation automatically: MVTec AD widget" in auto and auto.count("<img") >= 2
    assert "N = 10 left out: widget has 6 training images" in auto and "chosen automatically" in auto
    assert "Spearman: margin" in auto and "best AUROC" in auto  # the fitness check of replicate 0
    assert "successive halving" in (html / "autoaug.html").read_text()
    every = (html / "results" / "autoaug-summary.html").read_text()
    assert "1 category, 3 fits" in every and "<img" in every and "against the hand-made policy" in every
    assert "Spearman: fitness" in every
    # what readers see: no folder of this machine on any page, thebe's doubled script gone, tables as CSV
    for f in (root / "_build" / "html").rglob("*"):
        if f.suffix in (".html", ".ipynb"):
            text = f.read_text()
            assert str(tmp_path) not in text and str(REPO) not in text, f
    assert run["machine_paths"] == []
    assert "THEBE_JS_URL" not in sample and "injected-parameters" not in sample
    assert "<out_dir>" not in (html / "categories" / "mvtec-widget.html").read_text()  # the parameter cell is hidden
    link = "../../tables/book/results/sample-size/table-1.csv"
    assert link in sample and (html / "results" / link).resolve().is_file()
    csv = pd.read_csv((html / "results" / link).resolve(), header=None)
    assert csv.shape[0] > 1
    for f in html.rglob("*.html"):  # warnings are one line, without the source file that raised them
        assert not re.search(r"\.py:\d+: \w*Warning", f.read_text()), f
    repro = (html / "results" / "reproduction.html").read_text()
    assert "Run on" in repro and "--augment-only" in repro and "scikit-learn" in repro
    # a failing study is reported with its error, on its page and in the summary, and the exit status says so
    # (a size above the category's training images is left out and said, not a failure: N = 0 is one)
    assert main(args + ["--methods", "knn", "--sizes", "0", "--no-pollution"]) == 1
    assert "mvtec/widget: failed" in capsys.readouterr().out
    assert "sample size must be at least 1, got 0" in page.read_text() and "This study failed" in page.read_text()
    sample = (html / "results" / "sample-size.html").read_text()
    assert "failed" in sample and "sample size must be at least 1, got 0" in sample


def test_pollution_notebook_rejects_bad_parameters(tiny_mvtec, tmp_path):
    def run_p(**params):
        base = dict(data_root=str(tiny_mvtec), category="widget", input_size=96, methods="knn", rates="0",
                    reps=1, aug="0", ablation=False, out_dir=str(tmp_path / "res"), cache_dir=str(tmp_path / "cache"))
        papermill.execute_notebook(str(REPO / "notebooks" / "pollution.ipynb"), str(tmp_path / "p.ipynb"),
                                   parameters={**base, **params}, progress_bar=False, cwd=str(tmp_path),
                                   kernel_name="python3")
    with pytest.raises(papermill.PapermillExecutionError, match=r"pollution rate must be in \[0, 1\), got 1.2"):
        run_p(rates="0,1.2")
    with pytest.raises(papermill.PapermillExecutionError, match="ablation must be bool, got 'yes'"):
        run_p(ablation="yes")
    with pytest.raises(papermill.PapermillExecutionError, match="needs 2 defective images"):
        run_p(rates="0.25")  # 6 good images: 2 defects, and the test set must keep one of its 2


def test_workflow_notebook_rejects_bad_parameters(tiny_mvtec, tmp_path):
    def run_w(**params):
        base = dict(data_root=str(tiny_mvtec), category="widget", input_size=96, method="padim", methods="knn",
                    n=5, reps=1, fprs="0.05", rules="lognormal", out_dir=str(tmp_path / "res"),
                    cache_dir=str(tmp_path / "cache"))
        papermill.execute_notebook(str(REPO / "notebooks" / "workflow.ipynb"), str(tmp_path / "w.ipynb"),
                                   parameters={**base, **params}, progress_bar=False, cwd=str(tmp_path),
                                   kernel_name="python3")
    with pytest.raises(papermill.PapermillExecutionError, match="unknown threshold rule 'median'"):
        run_w(rules="lognormal,median")
    with pytest.raises(papermill.PapermillExecutionError, match="false-positive rate must be between 0 and 1"):
        run_w(fprs="0.05,2")
    with pytest.raises(papermill.PapermillExecutionError, match="unknown method 'svm'"):
        run_w(method="svm")
    with pytest.raises(papermill.PapermillExecutionError, match="n must be int, got '10'"):
        run_w(n="10")


def test_beyond_notebook_runs_patchcore_from_one_image_with_localization(tiny_mvtec, tmp_path):
    import nbformat

    out = tmp_path / "beyond.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "beyond.ipynb"), str(out), progress_bar=False,
                               cwd=str(tmp_path), kernel_name="python3",
                               parameters=dict(data_root=str(tiny_mvtec), category="widget", input_size=96,
                                               sizes="1,2,max", reps=1, aug="0,1", method_params="coreset=0.5", heat_n=3,
                                               out_dir=str(tmp_path / "res"), cache_dir=str(tmp_path / "cache")))
    df = pd.read_parquet(tmp_path / "res" / "beyond-mvtec-widget-efficientnet-lite0.parquet")
    skipped = df[df.skipped != ""]
    assert sorted(skipped.method) == ["maha-lw", "padim"] and (skipped.n_train == 1).all()
    pc = df[df.method == "patchcore"]
    assert len(pc) == 3 * 2 and pc.auroc.between(0, 1).all() and pc.aupro.between(0, 1).all()
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("data", {}).get("text/html", ""))
                     + str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                     for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "AnomalyDINO" in text and "96.6" in text  # the anchors beside ours
    assert "needs at least 2 training images" in text  # the skipped fits, said
    assert "aupro" in text  # the localization table (the widget has masks)
    assert "PatchCore: coreset 0.5, features 0, neighbourhood 3" in text  # the detectors' settings, said
    assert (pc.params == '{"coreset":0.5}').all()
    assert "image/png" in out.read_text()  # the curves and the heatmaps
