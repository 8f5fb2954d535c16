"""The paper's tables in the package, and the same tables computed from study rows."""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from lowdata.core.errors import LowdataError
from lowdata.book.paper import SAME, WHOLE, auc_at, compare, group_means, paper_tables, table_view

SHARED = REPO.parent / "shared" / "papers" / "low-data-augmentation-tables.csv"


def test_package_copy_equals_the_shared_csv():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not here")
    pd.testing.assert_frame_equal(paper_tables(), pd.read_csv(SHARED, dtype={"n_train": str}))


@pytest.mark.parametrize("per_category,groups", [(5, 1), (6, 2)])
def test_group_means_of_the_papers_categories_give_its_group_tables(per_category, groups):
    """The aggregation rule, checked on the paper itself: Table 5 (6) averaged gives Table 1 (2)."""
    t = paper_tables()
    cats = t[t.table == per_category].rename(columns={"group": "category"})[["category", "method", "value"]]
    ours = group_means(cats).merge(t[t.table == groups], on=["group", "method"], suffixes=("", "_paper"))
    assert len(ours) == 12 and (ours.n_categories == ours.of).all()
    np.testing.assert_allclose(ours.value, ours.value_paper, atol=6e-4)  # the paper rounds to 3 decimals


def _rows(category, n_pool, curve, aug=0):
    return [dict(category=category, method="maha-lw", n_train=n, n_pool=n_pool, replicate=r, aug_factor=aug,
                 augment_only=False, auroc=a + (0.01 if r else -0.01)) for n, a in curve.items() for r in (0, 1)]


def test_compare_from_study_rows():
    rows = _rows("bottle", 40, {10: 0.8, 30: 0.9, 40: 1.0}) + _rows("carpet", 60, {10: 0.7, 30: 0.8, 60: 0.9})
    rows += _rows("bottle", 40, {10: 0.85, 30: 0.95, 40: 1.0}, aug=10)
    results = pd.DataFrame(rows)
    t5 = compare(5, results).set_index(["group", "method"])
    assert t5.loc[("bottle", "maha-lw"), "ours"] == pytest.approx(1.0)
    assert t5.loc[("bottle", "maha-lw"), "diff"] == pytest.approx(1.0 - 1.0)  # paper: 1.000
    assert np.isnan(t5.loc[("grid", "maha-lw"), "ours"]) and t5.loc[("grid", "maha-lw"), "n_categories"] == 0
    t1 = compare(1, results).set_index(["group", "method"])
    assert t1.loc[("all", "maha-lw"), "ours"] == pytest.approx((1.0 + 0.9) / 2)
    assert t1.loc[("all", "maha-lw"), "n_categories"] == 2 and t1.loc[("textures", "maha-lw"), "n_categories"] == 1
    t8 = compare(8, results).set_index(["group", "method", "aug_factor"])  # AUC at N = 30
    assert t8.loc[("objects", "maha-lw", 0), "ours"] == pytest.approx(0.9)
    assert t8.loc[("objects", "maha-lw", 10), "ours"] == pytest.approx(0.95)
    t6 = compare(6, results).set_index(["group", "method"])  # bottle: x = 0.25, 0.75, 1
    area = (0.5 * (0.8 + 0.9) / 2 + 0.25 * (0.9 + 1.0) / 2) / 0.75
    assert t6.loc[("bottle", "maha-lw"), "ours"] == pytest.approx(area)
    with pytest.raises(LowdataError, match="no Table 4 of results"):
        compare(4, results)


def test_other_data_sits_beside_the_papers_all_row_and_is_labelled():
    rows = [dict(r, source="mvtec") for r in _rows("bottle", 40, {10: 0.8, 30: 0.9, 40: 1.0})]
    rows += [dict(r, source="elpv") for r in _rows("mono", 50, {10: 0.7, 30: 0.75, 50: 0.8})]
    rows += [dict(r, source="elpv") for r in _rows("poly", 60, {10: 0.6, 30: 0.65, 60: 0.7})]
    t1 = compare(1, pd.DataFrame(rows)).set_index(["data", "group", "method"])
    assert t1.loc[("elpv", "all", "maha-lw"), "ours"] == pytest.approx(0.75)  # mean of mono and poly
    assert t1.loc[("elpv", "all", "maha-lw"), "paper_group"] == 0.962  # beside the paper's MVTec "all", for reading
    assert np.isnan(t1.loc[("elpv", "all", "maha-lw"), "paper"]) and np.isnan(t1.loc[("elpv", "all", "maha-lw"), "diff"])
    assert t1.loc[("mvtec", "all", "maha-lw"), "ours"] == pytest.approx(1.0)
    assert ("elpv", "textures", "maha-lw") not in t1.index  # ELPV has no textures / objects
    view = table_view(1, pd.DataFrame(rows))
    assert view.loc[("all", "ELPV (mono, poly)", "Mahalanobis (Ledoit)"), "ours"] == "0.750"
    # like with like: bottle's own paper value (Table 5: 1.000), not the mean of all 15 (0.962)
    assert view.loc[("all", "MVTec AD (1 of 15)", "Mahalanobis (Ledoit)"), "diff"] == "+0.000"
    assert view.loc[("all", "MVTec AD (1 of 15)", "Mahalanobis (Ledoit)"), WHOLE] == "0.962"
    assert view.loc[("all", "ELPV (mono, poly)", "Mahalanobis (Ledoit)"), "diff"] == "—"
    assert view.loc[("textures", "(none)", "KNN"), "ours"] == "—"  # the paper's row stays, ours empty
    t5 = table_view(5, pd.DataFrame(rows))
    assert t5.loc[("mono", "ELPV", "Mahalanobis (Ledoit)"), "paper"] == "—"  # not a paper category
    assert t5.loc[("mono", "ELPV", "Mahalanobis (Ledoit)"), "ours"] == "0.800"
    numeric = table_view(5, pd.DataFrame(rows), na_rep=None)
    assert numeric.loc[("bottle", "(none)", "KNN"), "paper"] == 0.996 and np.isnan(
        numeric.loc[("bottle", "(none)", "KNN"), "ours"])  # only maha-lw ran


def test_table_view_with_augmentation_factors_and_auc_at():
    rows = _rows("bottle", 40, {10: 0.8, 30: 0.9, 40: 1.0}) + _rows("bottle", 40, {10: 0.85, 30: 0.95, 40: 1.0}, aug=10)
    t8 = table_view(8, pd.DataFrame(rows))
    assert list(t8.columns.get_level_values(0).unique()) == [0, 10]
    assert t8.loc[("objects", "MVTec AD (1 of 10)", "Mahalanobis (Ledoit)"), (10, "ours")] == "0.950"
    assert t8.loc[("objects", "MVTec AD (1 of 10)", "Mahalanobis (Ledoit)"), (10, WHOLE)] == "0.939"
    # the paper gives Table 8 per group only: no same-category value, so no difference
    assert t8.loc[("objects", "MVTec AD (1 of 10)", "Mahalanobis (Ledoit)"), (10, SAME)] == "—"
    assert t8.loc[("objects", "MVTec AD (1 of 10)", "Mahalanobis (Ledoit)"), (10, "diff")] == "—"
    at = auc_at(pd.DataFrame(rows))
    assert at.loc[("bottle", "Mahalanobis (Ledoit)", "x10"), "30"] == pytest.approx(0.95)
    assert at.loc[("bottle", "Mahalanobis (Ledoit)", "none"), "max"] == pytest.approx(1.0)


def test_group_rows_compare_like_with_like():
    """A group row puts the paper's mean over the same categories beside ours (from its Tables 5 and 6), the
    difference taken against it; the whole group's value stays in its own column. Where the paper has group
    values only (Table 8), a complete group is compared with it and a partial one is not."""
    t = paper_tables()
    t5 = t[(t.table == 5) & (t.method == "maha-lw")].set_index("group")["value"]
    rows = _rows("bottle", 40, {10: 0.8, 30: 0.9, 40: 0.95}) + _rows("carpet", 60, {10: 0.7, 30: 0.8, 60: 0.9})
    t1 = compare(1, pd.DataFrame(rows)).set_index(["group", "method"])
    same = (t5["bottle"] + t5["carpet"]) / 2
    assert t1.loc[("all", "maha-lw"), "paper"] == pytest.approx(same)
    assert t1.loc[("all", "maha-lw"), "diff"] == pytest.approx((0.95 + 0.9) / 2 - same)
    assert t1.loc[("all", "maha-lw"), "paper_group"] == 0.962
    assert t1.loc[("objects", "maha-lw"), "paper"] == pytest.approx(t5["bottle"])  # bottle is the only object
    assert "the same 2 categories" in t1.loc[("all", "maha-lw"), "basis"]
    t6 = t[(t.table == 6) & (t.method == "maha-lw")].set_index("group")["value"]
    t2 = compare(2, pd.DataFrame(rows)).set_index(["group", "method"])
    assert t2.loc[("textures", "maha-lw"), "paper"] == pytest.approx(t6["carpet"])
    textures = sum((_rows(c, 60, {10: 0.7, 30: 0.8, 60: 0.9}) for c in ("carpet", "grid", "leather", "tile", "wood")), [])
    t8 = compare(8, pd.DataFrame(textures)).set_index(["group", "method", "aug_factor"])
    row = t8.loc[("textures", "maha-lw", 0)]
    assert row["paper"] == row["paper_group"] and row["basis"] == "the whole group"
    assert row["diff"] == pytest.approx(0.8 - row["paper_group"])
    partial = compare(8, pd.DataFrame(rows)).set_index(["group", "method", "aug_factor"]).loc[("textures", "maha-lw", 0)]
    assert np.isnan(partial["paper"]) and np.isnan(partial["diff"]) and "group's value only" in partial["basis"]


def test_a_group_with_a_category_of_our_own_is_not_the_papers_whole_group():
    """14 MVTec categories and one of ours make 15 in 'all', but not the paper's 15: no comparison at N = 30."""
    from lowdata.data.mvtec import MVTEC_CATEGORIES

    cats = [c for c in MVTEC_CATEGORIES if c != "hazelnut"] + ["widget"]
    rows = sum((_rows(c, 60, {10: 0.7, 30: 0.8, 60: 0.9}) for c in cats), [])
    row = compare(8, pd.DataFrame(rows)).set_index(["group", "method", "aug_factor"]).loc[("all", "maha-lw", 0)]
    assert row["n_categories"] == row["of"] == 15
    assert np.isnan(row["paper"]) and np.isnan(row["diff"]) and row["paper_group"] == 0.913
    t1 = compare(1, pd.DataFrame(rows)).set_index(["group", "method"]).loc[("all", "maha-lw")]
    assert np.isnan(t1["diff"]) and t1["basis"] == "some of these categories are not the paper's"


def test_another_data_sets_category_of_an_mvtec_name_gets_no_paper_value():
    import pandas as pd

    from lowdata.book.paper import compare
    from lowdata.book.plots import category_names

    rows = [dict(source=src, category="bottle", method="knn", n_train=20, n_pool=20, aug_factor=0, augment_only=False,
                 auroc=auroc, replicate=r) for src, auroc in (("mvtec", 0.9), ("btad", 0.5)) for r in range(2)]
    df = pd.DataFrame(rows)
    t = compare(5, df).set_index(["data", "group", "method"])
    assert t.loc[("mvtec", "bottle", "knn"), "paper"] == 0.996 and t.loc[("mvtec", "bottle", "knn"), "ours"] == 0.9
    assert pd.isna(t.loc[("btad", "bottle", "knn"), "paper"]) and pd.isna(t.loc[("btad", "bottle", "knn"), "diff"])
    # tables and panels over several data sets name a category with its data set
    assert list(category_names(df).unique()) == ["MVTec AD bottle", "BTAD bottle"]
    assert list(category_names(df[df["source"] == "btad"]).unique()) == ["bottle"]
