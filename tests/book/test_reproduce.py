"""The reviewer's check: the embedded default's expected figures, and the comparison `lowdata verify` makes."""

import numpy as np
import pandas as pd
import pytest

from lowdata.book.reproduce import check, comparable, figures, read_expected, verdict, write_expected
from lowdata.cli import main
from lowdata.core.errors import LowdataError


def _rows(category, n_pool, curve, aug=0):
    return [dict(source="elpv", category=category, method=m, n_train=n, n_pool=n_pool, replicate=r, aug_factor=aug,
                 augment_only=False, auroc=a + d + (0.01 if r else -0.01))
            for m, d in (("knn", 0.0), ("maha-lw", 0.02)) for n, a in curve.items() for r in (0, 1)]


def _results():
    rows = _rows("mono", 50, {10: 0.7, 50: 0.8}) + _rows("poly", 60, {10: 0.6, 60: 0.7})
    rows += _rows("mono", 50, {10: 0.75, 50: 0.85}, aug=10) + _rows("poly", 60, {10: 0.65, 60: 0.75}, aug=10)
    return pd.DataFrame(rows)


def test_figures_are_our_elpv_values_of_tables_1_5_7():
    fig = figures(_results()).set_index(["table", "group", "method", "aug_factor"])["value"]
    assert fig[(5, "mono", "knn", 0)] == pytest.approx(0.8) and fig[(5, "poly", "maha-lw", 0)] == pytest.approx(0.72)
    assert fig[(1, "all", "knn", 0)] == pytest.approx(0.75)  # the mean of mono and poly
    assert fig[(7, "all", "maha-lw", 10)] == pytest.approx((0.87 + 0.77) / 2)
    assert len(fig) == 2 * (2 + 1) + 2 * 2 * 1  # Table 5: 2 categories x 2 methods, Table 1 and 7: the all row


def test_expected_figures_round_trip_and_a_changed_figure_is_caught(tmp_path):
    results = _results()
    path = tmp_path / "expected.csv"
    meta = {"commit": "abc1234", "started": "2026-12-03 16:00:00 UTC", "minutes": "44.2", "backbone": "efficientnet-lite0",
            "input_size": "None", "seed": "0"}
    write_expected(results, path, meta)
    with pytest.raises(LowdataError, match="exists: give another file, or --force"):
        write_expected(results, path, meta)
    expected, got = read_expected(path)
    assert got["commit"] == "abc1234" and got["minutes"] == "44.2"
    same = check(results, expected)
    assert same["within"].all() and np.allclose(same["diff"], 0) and verdict(same).startswith("10 of 10")
    off = results.copy()
    off.loc[(off["category"] == "mono") & (off["method"] == "knn") & (off["n_train"] == 50) & (off["aug_factor"] == 0),
            "auroc"] += 0.006  # beyond the tolerance on mono, and on the mean of mono and poly
    t = check(off, expected).set_index(["table", "group", "method", "aug_factor"])
    assert not t.loc[(5, "mono", "knn", 0), "within"] and t.loc[(1, "all", "knn", 0), "within"]  # 0.003 on the mean
    assert t["within"].sum() == 9
    fewer = check(results[results["category"] == "mono"], expected)
    assert "missing from this run" in verdict(fewer) and not fewer["within"].all()
    params = {"backbone": "efficientnet-lite0", "input_size": None, "seed": 0}
    assert comparable({"params": params}, got) == []
    assert comparable({"params": {**params, "input_size": 96}}, got) == ["input_size is 96, the expected run's 'None'"]
    assert "no run record" in comparable({}, got)[0]


def test_a_malformed_expected_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("# commit: x\ntable,group\n1,all\n")
    with pytest.raises(LowdataError, match="bad.csv has columns"):
        read_expected(bad)
    with pytest.raises(LowdataError, match="cannot read the expected figures"):
        read_expected(tmp_path / "none.csv")


def test_the_shipped_expected_figures_are_the_embedded_defaults():
    expected, meta = read_expected()  # shipped with the package: a missing file fails here
    assert set(expected["group"]) == {"all", "mono", "poly"} and meta["backbone"] == "efficientnet-lite0"
    assert meta["seed"] == "0" and meta["input_size"] == "None" and expected["value"].between(0.5, 1).all()
    assert set(expected["table"]) == {1, 5, 7} and len(expected) == 20
    from lowdata.book.params import CATEGORY

    default = CATEGORY.preset("default")  # the expected run was the default preset
    assert {k: meta[k] for k in default} == {k: str(v) for k, v in default.items()}
    # Table 1's "all" is the mean of mono and poly (Table 5), as computed
    t = expected.set_index(["table", "group", "method", "aug_factor"])["value"]
    assert t[(1, "all", "padim", 0)] == pytest.approx((t[(5, "mono", "padim", 0)] + t[(5, "poly", "padim", 0)]) / 2,
                                                      abs=1e-6)


def test_verify_without_results_says_which_command_makes_them(tmp_path, capsys):
    assert main(["verify", "--results", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no study results in" in err and "make run" in err and err.count("\n") == 1
