"""The chapter "Which backbone?": the study again per backbone on the same subsets, its tables, figure and costs."""
import numpy as np
import pandas as pd
import pytest

from lowdata.book.backbones import (area_by_backbone, auroc_by_backbone, backbone_figure, encoding_cost, name_of,
                                    paper_choice, parse_backbones, run_backbones_category)
from lowdata.core.errors import LowdataError
from lowdata.data.sources import load_category
from lowdata.experiments.design import StudyConfig
from lowdata.experiments.study import fitted, run_study
from lowdata.features.backbones import load_backbone
from lowdata.features.encode import cache_for
from lowdata.metrics import auc_percent_area


def test_backbone_names_are_checked():
    assert parse_backbones(" efficientnet-lite1, efficientnet-lite0,efficientnet-lite1") == [
        "efficientnet-lite1", "efficientnet-lite0"]
    with pytest.raises(LowdataError, match="unknown backbone 'resnet50'; choose from efficientnet-lite0"):
        parse_backbones("efficientnet-lite0,resnet50")
    with pytest.raises(LowdataError, match="--backbones: no backbone named"):
        parse_backbones(" , ")
    assert name_of("efficientnet-lite1-380px-579344248a93e230-onnxruntime") == "efficientnet-lite1"
    assert name_of("dinov2-vits14-448px-abc") == "dinov2-vits14"


def _rows():
    """Two categories (pools of 20 and 40), two backbones, KNN, N = 5 and the full set, 2 replicates at N = 5."""
    rows = []
    for cat, pool in (("a", 20), ("b", 40)):
        for b, shift in (("efficientnet-lite0", 0.0), ("efficientnet-lite1", 0.05)):
            for n, reps in ((5, (0.6, 0.7)), (pool, (0.9,))):
                for r, auc in enumerate(reps):
                    rows.append({"source": "mvtec", "category": cat, "method": "knn", "n_train": n, "n_pool": pool,
                                 "replicate": r, "aug_factor": 0, "augment_only": False, "backbone_name": b,
                                 "auroc": auc + shift + (0.1 if cat == "b" else 0)})
    return pd.DataFrame(rows)


def test_auroc_and_area_by_backbone_against_hand_computations():
    df = _rows()
    t = auroc_by_backbone(df, "knn")
    assert list(t.index) == ["5", "max"] and list(t.columns) == [("none", "efficientnet-lite0"), ("none", "efficientnet-lite1")]
    assert t.loc["5", ("none", "efficientnet-lite0")] == pytest.approx((0.65 + 0.75) / 2)  # replicates, then categories
    assert t.loc["max", ("none", "efficientnet-lite1")] == pytest.approx((0.95 + 1.05) / 2)
    area = area_by_backbone(df)
    want = np.mean([auc_percent_area([5, 5, pool], [0.6 + d, 0.7 + d, 0.9 + d], pool) for pool, d in ((20, 0), (40, 0.1))])
    assert area.loc[("KNN", "none"), "efficientnet-lite0"] == pytest.approx(want)
    assert area.loc[("KNN", "none"), "efficientnet-lite1"] == pytest.approx(want + 0.05)
    fig = backbone_figure(df)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["5", "max"]
    assert area_by_backbone(df[df["n_train"] == 5]).empty  # no size reaches the full set: no area


def test_the_study_is_run_again_per_backbone_on_the_same_subsets(tiny_mvtec, tmp_path):
    kw = dict(data_root=str(tiny_mvtec), category="widget", backbone="efficientnet-lite0", input_size=64,
              methods="knn", sizes="3,10,max", reps=2, aug="0", out_dir=str(tmp_path / "res"),
              cache_dir=str(tmp_path / "cache"), seed=0, progress=False)
    df = run_backbones_category(backbones="efficientnet-lite0,efficientnet-lite1", **kw)
    assert df.attrs["note"] == "N = 10 left out: widget has 6 training images"
    assert sorted((tmp_path / "res").glob("*.parquet")) == [
        tmp_path / "res" / f"backbones-mvtec-widget-efficientnet-lite{i}.parquet" for i in (0, 1)]
    per = {b: g.sort_values(["n_train", "replicate"]) for b, g in df.groupby("backbone_name")}
    assert list(per["efficientnet-lite0"]["subset"]) == list(per["efficientnet-lite1"]["subset"])  # the same images
    # Lite0's rows are the study's own: run by hand, the same AUROCs
    bb = load_backbone("efficientnet-lite0", 64)
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    alone = fitted(run_study(data, bb, cache_for(bb, tmp_path / "cache"), StudyConfig(methods=["knn"], sizes=[3, 6], reps=2,
                                                                                        factors=[0]),
                             tmp_path / "alone.parquet", progress=False)).sort_values(["n_train", "replicate"])
    np.testing.assert_array_equal(per["efficientnet-lite0"]["auroc"].to_numpy(), alone["auroc"].to_numpy())
    with pytest.raises(LowdataError, match="unknown backbone 'lite9'"):
        run_backbones_category(backbones="lite9", **kw)


def test_encoding_cost_and_the_papers_choice(elpv_images):
    cost = encoding_cost(["efficientnet-lite0"], 64, elpv_images[0][:2], paper=False)
    row = cost.loc["efficientnet-lite0"]
    assert row["feature width"] == "80 + 192 + 320 = 592" and row["images / s"] > 0 and row["cost vs first"] == 1.0
    fake = pd.DataFrame({"input px": [380, 380], "images / s": [40.0, 5.0], "images / s, TensorFlow": [20.0, 2.0],
                         "ms / image, TensorFlow": [50.0, 500.0], "weights": ["ImageNet", "random (timing only)"],
                         "runtime": ["onnxruntime", "tensorflow"], "cost vs first": [1.0, 10.0],
                         "feature width": ["80 + 192 + 320 = 592", "112 + 272 + 448 = 832"]},
                        index=["efficientnet-lite0", "efficientnet-b4"])
    text = paper_choice(fake, pd.DataFrame())
    assert "**10.0 times the time**" in text and "832 dimensions against 592" in text and "not measured here" in text
    df = _rows().replace({"efficientnet-lite1": "efficientnet-b4"})
    assert "KNN (none) +0.0500" in paper_choice(fake, df)
