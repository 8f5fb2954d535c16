"""The few-shot table of "Beyond the paper": ours per data set, each followed by that data set's published values."""
import pandas as pd

from lowdata.book.beyond import anchors, fewshot_table


def results(rows):
    cols = ["source", "category", "backbone", "method", "n_train", "aug_factor", "augment_only", "auroc", "skipped"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def test_ours_per_data_set_beside_that_data_sets_published_values():
    bb = "efficientnet-lite0-380px-abc"
    df = results([("visa", "candle", bb, "knn", 1, 0, False, 0.80, ""), ("visa", "candle", bb, "knn", 1, 0, False, 0.90, ""),
                  ("visa", "pcb1", bb, "knn", 2, 0, False, 0.70, ""), ("elpv", "mono", bb, "knn", 1, 0, False, 0.60, ""),
                  ("elpv", "mono", bb, "knn", 4, 0, False, 0.99, "too few images")])
    t = fewshot_table(df)
    assert list(t.index.get_level_values("dataset").unique()) == ["VisA", "ELPV"]  # a data set with anchors first
    visa = t.loc["VisA"]
    assert visa.loc[("ours", "KNN"), "1"] == 85.0 and visa.loc[("ours", "KNN"), "data"] == "candle, pcb1"
    assert visa.loc[("published", "WinCLIP+"), ["1", "2", "4"]].tolist() == [83.8, 84.6, 87.3]
    assert visa.loc[("published", "VisionAD"), "1"] == 94.8 and "2504.11895" in visa.loc[("published", "VisionAD"), "source"]
    assert t.loc["ELPV"].loc[("ours", "KNN"), "1"] == 60.0 and pd.isna(t.loc["ELPV"].loc[("ours", "KNN"), "4"])
    assert "MVTec AD" not in t.index.get_level_values("dataset")  # VisA's anchors are the ones that apply
    # data without anchors of its own: MVTec AD's follow, named as such
    alone = fewshot_table(df[df["source"] == "elpv"])
    assert list(alone.index.get_level_values("dataset").unique()) == ["ELPV", "MVTec AD"]
    assert alone.loc["MVTec AD"].loc[("published", "AnomalyDINO"), "1"] == 96.6


def test_every_anchor_names_its_data_set_and_paper():
    a = anchors()
    assert set(a["dataset"]) == {"mvtec", "visa"} and a["source"].str.contains(r"et al\. 20\d\d").all()
    assert ((a["image_auroc"] > 50) & (a["image_auroc"] <= 100)).all()


def test_the_gain_of_test_time_views_is_taken_fit_by_fit():
    from lowdata.book.beyond import test_aug_gain

    cols = ["source", "category", "method", "aug_factor", "augment_only", "n_train", "replicate", "test_aug", "auroc",
            "score_seconds", "skipped"]
    rows = [("elpv", "mono", "knn", 0, False, 4, r, k, auroc, secs, "")
            for r, (a0, a4) in enumerate([(0.80, 0.85), (0.70, 0.71)])
            for k, auroc, secs in ((0, a0, 1.0), (4, a4, 5.0))]
    df = pd.DataFrame(rows, columns=cols).assign(params="")
    # another fit's views (other detector parameters) in the same table are not paired with these fits
    other = df[df["test_aug"] == 4].assign(params='{"k":3}', auroc=0.1)
    t = test_aug_gain(pd.concat([df, other])).loc[("KNN", "none", 4, 4)]
    assert t["AUROC without"] == 0.75 and t["gain"] == 0.03 and t["fits"] == 2 and t["scoring time x"] == 5.0
    assert t["gain sd"] == round(float(pd.Series([0.05, 0.01]).std()), 4)
    assert "No test-time views" in test_aug_gain(pd.DataFrame([rows[0]], columns=cols)).data
