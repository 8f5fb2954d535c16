"""Polluted training sets and their refinement (SROC, ensemble): closed forms and planted outliers."""

import numpy as np
import pandas as pd
import pytest
from conftest import MVTEC_ROOT, requires_mvtec

from lowdata.core.errors import LowdataError
from lowdata.detectors.crossfit import folds_of, out_of_fold_scores
from lowdata.detectors.mahalanobis import chi2_score as chi2_cut
from lowdata.experiments.refine import SROCConfig, ensemble_refine, flag, removal_quality, robust_z, sroc


class _Data:
    """The part of CategoryData that pollute() reads."""

    def __init__(self, n_train, n_good_test, n_bad_test):
        self.category = "thing"
        self.train = list(range(n_train))
        self.test_labels = np.array([0] * n_good_test + [1] * n_bad_test)
        self.test = list(range(n_good_test + n_bad_test))


def test_pollution_rate_is_defects_over_training_images():
    from lowdata.experiments.polluted import defects_needed, pollute

    assert defects_needed(0.10, 209) == 23  # 23 / 232 = 9.9 %
    assert defects_needed(0.20, 200) == 50  # 50 / 250 exactly
    assert defects_needed(0.0, 209) == 0
    data = _Data(200, 20, 60)
    split = pollute(data, 0.2, seed=0, replicate=1)
    assert len(split.moved) == 50 and set(split.moved) <= set(range(20, 80))
    assert len(split.test_rows) == 30 and not set(split.moved) & set(split.test_rows)
    again = pollute(data, 0.2, seed=0, replicate=1)
    np.testing.assert_array_equal(split.moved, again.moved)  # same seed, same polluted set
    assert not np.array_equal(split.moved, pollute(data, 0.2, seed=0, replicate=2).moved)


def test_pollution_bad_rates_are_errors_never_a_smaller_rate():
    from lowdata.experiments.polluted import feasible_rates, pollute

    data = _Data(200, 20, 30)
    with pytest.raises(LowdataError, match=r"rate 20.0% needs 50 defective images.*has 30.*largest rate it allows is 12.7%"):
        pollute(data, 0.2)
    for bad in (1.0, -0.1, 1.5, "0.1"):
        with pytest.raises(LowdataError, match="pollution rate must be in"):
            pollute(data, bad)
    ok, no = feasible_rates(data, (0, 0.05, 0.1, 0.15, 0.2))
    assert ok == [0, 0.05, 0.1] and no == [0.15, 0.2]


def test_robust_z_and_rules():
    s = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    z = robust_z(s)
    assert z[2] == 0 and z[4] == pytest.approx(97 / 1.4826)  # median 3, MAD 1
    np.testing.assert_array_equal(flag(s, "zscore", 3.0), [False, False, False, False, True])
    np.testing.assert_array_equal(flag(s, "quantile", 0.8), [False, False, False, False, True])
    from scipy.stats import chi2
    assert chi2_cut([4, 9], 0.01) == pytest.approx(np.sqrt(chi2.ppf(0.99, 4)) + np.sqrt(chi2.ppf(0.99, 9)))
    with pytest.raises(LowdataError, match="needs a Mahalanobis scorer"):
        flag(s, "chi2", 0.01)


def test_folds_partition_and_out_of_fold_never_judges_itself():
    f = folds_of(23, 5, seed=3)
    assert sorted(np.bincount(f)) == [4, 4, 5, 5, 5]
    seen = []

    def fit_score(train, score):
        assert not set(train) & set(score)  # an image is never in the model that scores it
        seen.extend(score)
        return np.zeros(len(score))

    out_of_fold_scores(fit_score, np.arange(23), 5, seed=3)
    assert sorted(seen) == list(range(23))
    with pytest.raises(LowdataError, match="cannot be split into 5 folds"):
        folds_of(4, 5, 0)


def _gaussian_with_outliers(n=200, d=5, bad=20, shift=6.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + bad, d))
    X[n:] += shift
    return X, np.arange(n, n + bad)


def _maha_fit_score(X):
    from lowdata.detectors.registry import make_detector

    def fs(train, score):
        return make_detector("maha-lw").fit([X[train]]).anomaly_score([X[score]])
    return fs


def test_sroc_removes_planted_outliers():
    X, bad = _gaussian_with_outliers()
    ref = sroc(_maha_fit_score(X), len(X), SROCConfig())
    q = removal_quality(ref.removed, bad)
    assert q["recall"] == 1.0 and q["precision"] > 0.8, q
    # each round scores what the rounds before kept and drops only from it; the rounds' drops are the removal;
    # here the outliers go in two rounds and a third finds nothing left to drop, which ends the refinement
    kept = len(X)
    for r in ref.rounds:
        assert r["scored"] == kept and r["removed"] == len(r["dropped"])
        kept -= r["removed"]
    assert sorted(i for r in ref.rounds for i in r["dropped"]) == sorted(ref.removed.tolist())
    assert [r["removed"] for r in ref.rounds] == [9, 11, 0] and len(ref.kept) == kept == len(X) - len(bad)
    # min_keep bounds what may go, whatever the rule says
    ref = sroc(_maha_fit_score(X), len(X), SROCConfig(rule="quantile", threshold=0.5, max_rounds=5, min_keep=0.8))
    assert len(ref.kept) == int(np.ceil(0.8 * len(X)))
    with pytest.raises(LowdataError, match="unknown SROC rule"):
        sroc(_maha_fit_score(X), len(X), SROCConfig(rule="median"))


def test_ensemble_refine_removes_planted_outliers():
    X, bad = _gaussian_with_outliers()
    one = removal_quality(ensemble_refine(_maha_fit_score(X), len(X), members=5, quantile=0.9, max_rounds=1).removed,
                          bad)
    two = removal_quality(ensemble_refine(_maha_fit_score(X), len(X), members=5, quantile=0.9, max_rounds=2).removed,
                          bad)
    # the outliers go first (round 1 is mostly outliers), all of them by round 2; a quantile rule then
    # keeps removing about a tenth of what is left each round, which the study's rows show
    assert one["precision"] >= 0.8 and two["recall"] == 1.0 and two["precision"] > 0.7, (one, two)


def test_pollution_study_on_a_tiny_folder(tiny_mvtec, tmp_path):
    from lowdata.features.backbones import load_backbone
    from lowdata.data.sources import load_category
    from lowdata.features.encode import cache_for
    from lowdata.experiments.pollution import PollutionConfig, recovery, run_pollution_study

    # widget: 6 good training images, 2 + 2 test images; rate 0.25 moves 2 defects: too many (one must stay)
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    bb = load_backbone("efficientnet-lite0", input_size=96)
    cfg = PollutionConfig(methods=("knn", "maha-lw", "padim"), rates=(0.0, 0.125, 0.25), reps=1, factors=(0, 1),
                          sroc=SROCConfig(folds=2, max_rounds=2), ensemble_members=2, ablation_rate=0.125,
                          ablation=(("folds", 3),))
    out = tmp_path / "p.csv"
    df = run_pollution_study(data, bb, cache_for(bb, tmp_path / "cache"), cfg, out, progress=False)
    assert set(df["rate"]) == {0.0, 0.125}  # 0.25 skipped, said on stdout
    moved = pd.read_csv(str(out) + ".moved.csv")
    assert len(moved) == 1 and moved["file"].str.contains("scratch").all()
    one = df[(df.rate == 0.125) & (df.method == "knn") & (df.aug_factor == 0)]
    assert set(one.refinement) == {"oracle", "none", "sroc", "ensemble"}
    assert (one.n_defects == 1).all() and (one.n_test == 3).all()
    assert one.set_index("refinement").loc["none", "n_kept"] == 7
    assert set(df[df.method == "padim"].aug_factor) == {0}  # PaDiM with copies is not run by default
    assert set(df[df.aug_factor == 1].refinement) == {"oracle", "none"}  # refinement without copies only
    assert (df[df.ablation != ""].params == "folds=3").all()
    rec = recovery(df)
    assert set(rec.refinement) == {"oracle", "none", "sroc", "ensemble"}


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from lowdata.data.sources import load_category
from lowdata.experiments import table as T
from lowdata.experiments.pollution import PollutionConfig, run_pollution_study
from lowdata.experiments.refine import SROCConfig
from lowdata.features.backbones import load_backbone
from lowdata.features.encode import cache_for

root, cache, out, after = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
keep = T.ResultsTable.keep

def keep_then_die(self, row):  # the row is journaled, then the process is killed as by kill -9
    keep(self, row)
    if len(self.rows) == after:
        os.kill(os.getpid(), signal.SIGKILL)

T.ResultsTable.keep = keep_then_die
bb = load_backbone("efficientnet-lite0", input_size=96)
cfg = PollutionConfig(methods=("knn", "maha-lw"), rates=(0.0, 0.125), reps=1, factors=(0,),
                      sroc=SROCConfig(folds=2, max_rounds=2), ensemble_members=2, ablation_rate=None)
run_pollution_study(load_category("mvtec", "widget", root=root), bb, cache_for(bb, cache), cfg, out, progress=False)
"""


def test_a_pollution_study_killed_midway_loses_no_finished_row(tiny_mvtec, tmp_path):
    import signal
    import subprocess
    import sys

    from lowdata.data.sources import load_category
    from lowdata.experiments import table as T
    from lowdata.experiments.pollution import PollutionConfig, run_pollution_study
    from lowdata.features.backbones import load_backbone
    from lowdata.features.encode import cache_for

    out, cache = tmp_path / "killed.parquet", tmp_path / "cache"
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    run = subprocess.run([sys.executable, str(script), str(tiny_mvtec), str(cache), str(out), "5"],
                         capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    journal = out.with_name(out.name + ".journal.jsonl")
    assert not out.exists() and len(journal.read_text().splitlines()) == 5  # the five finished rows are on disk

    made = []
    keep = T.ResultsTable.keep
    T.ResultsTable.keep = lambda self, row: (made.append(row), keep(self, row))[1]
    try:
        bb = load_backbone("efficientnet-lite0", input_size=96)
        cfg = PollutionConfig(methods=("knn", "maha-lw"), rates=(0.0, 0.125), reps=1, factors=(0,),
                              sroc=SROCConfig(folds=2, max_rounds=2), ensemble_members=2, ablation_rate=None)
        data = load_category("mvtec", "widget", root=tiny_mvtec)
        with pytest.warns(UserWarning, match="stale lock"):  # the killed run's lock is taken over, said
            resumed = run_pollution_study(data, bb, cache_for(bb, cache), cfg, out, progress=False)
        assert len(resumed) == 16 and len(made) == 11  # 2 rates x 2 methods x 4 refinements; 5 were kept
        assert not journal.exists()
        made.clear()
        whole = run_pollution_study(data, bb, cache_for(bb, cache), cfg, tmp_path / "whole.parquet", progress=False)
        assert len(made) == 16
    finally:
        T.ResultsTable.keep = keep
    numbers = ["rate", "replicate", "method", "refinement", "params", "auroc", "n_kept", "removed", "precision"]
    pd.testing.assert_frame_equal(resumed[numbers], whole[numbers])  # the same numbers as a run never killed


@requires_mvtec
def test_refine_command_lists_the_defects_planted_in_a_folder(tmp_path, capsys):
    import shutil

    from lowdata.cli import main

    folder = tmp_path / "parts"
    folder.mkdir()
    goods = sorted((MVTEC_ROOT / "bottle" / "train" / "good").glob("*.png"))[:30]
    bads = sorted((MVTEC_ROOT / "bottle" / "test" / "broken_large").glob("*.png"))[:3]
    for p in goods:
        shutil.copy(p, folder / f"good_{p.name}")
    for p in bads:
        shutil.copy(p, folder / f"broken_{p.name}")
    keep = tmp_path / "keep.txt"
    args = ["refine", str(folder), "--method", "maha-lw", "--input-size", "224", "--cache", str(tmp_path / "cache"),
            "--keep-list", str(keep), "--csv", str(tmp_path / "scores.csv"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    scores = pd.read_csv(tmp_path / "scores.csv")
    removed = set(scores.loc[scores.verdict == "remove", "image"].map(lambda s: s.split("/")[-1]))
    assert {f"broken_{p.name}" for p in bads} <= removed, removed  # the 3 defects are found
    assert len(removed) <= 6 and "nothing is deleted" in out
    kept = keep.read_text().split()
    assert len(kept) == 33 - len(removed) and len(list(folder.iterdir())) == 33  # nothing deleted
    # bad input: too few images, a missing folder
    assert main(["refine", str(tmp_path / "nope"), "--no-progress"]) == 2
    small = tmp_path / "small"
    small.mkdir()
    for p in goods[:4]:
        shutil.copy(p, small / p.name)
    assert main(["refine", str(small), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no folder" in err and "has 4 images; SROC with 5 folds needs at least 10" in err
