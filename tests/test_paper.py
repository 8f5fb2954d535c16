"""The paper's tables in the package, and the same tables computed from study rows."""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from lowdata.errors import LowdataError
from lowdata.paper import compare, group_means, paper_tables

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
