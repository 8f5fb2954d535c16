"""The study protocol on a tiny MVTec-layout folder with the real Lite0 weights at 96 px."""

import numpy as np

from lowdata.detectors.inputs import stack_maps
from lowdata.features.packs import Pack
import pandas as pd
from pathlib import Path
import pytest

import lowdata.book.study_report as study_report
import lowdata.experiments.fits as fits_module
import lowdata.experiments.study as study
from lowdata.features.cache import EmbeddingCache
from lowdata.cli import main
from lowdata.data.sources import load_category
from lowdata.detectors.knn import KNN
from lowdata.detectors.padim import PaDiM
from lowdata.features.encode import encode
from lowdata.core.errors import LowdataError
from lowdata.metrics import image_auroc
from lowdata.experiments.study import run_study
from lowdata.experiments.design import StudyConfig, draw_subset, parse_factors, parse_sizes, size_grid


def test_size_grid_is_the_papers():
    assert size_grid(209) == list(range(5, 51, 5)) + list(range(60, 201, 10)) + [209]
    assert size_grid(60) == list(range(5, 51, 5)) + [60]
    assert size_grid(50) == list(range(5, 51, 5))
    assert size_grid(3) == [3]


def test_parse_sizes_and_factors():
    assert parse_sizes("10,5,max", 30) == [5, 10, 30]
    assert parse_sizes("auto", 12) == [5, 10, 12]
    with pytest.raises(LowdataError, match="N=40 is larger than the 30"):
        parse_sizes("5,40", 30)
    with pytest.raises(LowdataError, match="'ten'"):
        parse_sizes("ten", 30)
    assert parse_factors("10,0") == [0, 10]
    with pytest.raises(LowdataError, match="'2.5' is not an integer"):
        parse_factors("0,2.5")
    with pytest.raises(LowdataError, match="augmentation factor must be at least 0, got -1"):
        parse_factors("-1")


def test_subsets_are_seeded_without_replacement_and_independent_of_the_grid():
    a = draw_subset(50, 10, seed=3, replicate=1)
    assert len(set(a)) == 10 and a.max() < 50 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, draw_subset(50, 10, seed=3, replicate=1))
    assert not np.array_equal(a, draw_subset(50, 10, seed=3, replicate=2))
    assert not np.array_equal(a, draw_subset(50, 10, seed=4, replicate=1))
    np.testing.assert_array_equal(draw_subset(7, 7, 0, 4), np.arange(7))
    with pytest.raises(LowdataError, match="N=8 is larger"):
        draw_subset(7, 8, 0, 0)


def test_nested_subsets_grow_by_adding_images_and_are_seeded():
    sizes = [5, 10, 20, 40]
    for r in range(3):
        sets = [set(draw_subset(50, n, seed=3, replicate=r, scheme="nested")) for n in sizes]
        assert [len(x) for x in sets] == sizes
        assert all(small < large for small, large in zip(sets, sets[1:]))  # each inside the next
    first = draw_subset(50, 10, 3, 1, "nested")
    np.testing.assert_array_equal(first, draw_subset(50, 10, 3, 1, "nested"))
    assert not np.array_equal(first, draw_subset(50, 10, 3, 2, "nested"))
    assert not np.array_equal(first, draw_subset(50, 10, 3, 1))  # not the independent draw
    # the independent scheme is the default, and unchanged: the subsets of every table already written
    np.testing.assert_array_equal(draw_subset(50, 10, 3, 1, "independent"), draw_subset(50, 10, 3, 1))
    np.testing.assert_array_equal(draw_subset(7, 7, 0, 4, "nested"), np.arange(7))
    with pytest.raises(LowdataError, match="--subsets 'nestled': choose independent .* or nested"):
        draw_subset(50, 10, 3, 1, "nestled")
    with pytest.raises(LowdataError, match="--subsets 'Nested'"):
        StudyConfig(methods=["knn"], sizes=[2], subsets="Nested").validate()


@pytest.fixture
def widget(tiny_mvtec):
    return load_category("mvtec", "widget", root=tiny_mvtec)


CONFIG = dict(methods=["knn", "maha-emp", "maha-lw", "padim"], sizes=[2, 6], reps=2, factors=[0, 1],
              augment_only=[1], seed=1, pixel_size=32)


def test_study_rows_subsets_and_values(widget, lite0_small, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    df = run_study(widget, lite0_small, cache, StudyConfig(**CONFIG), tmp_path / "r.parquet", progress=False)
    # N=2: 2 replicates, N=6 (all 6 images): 1; 3 runs (f=0, f=1, f=1 only); 4 methods
    assert len(df) == (2 * 3 + 1 * 3) * 4
    assert set(df.columns) == set(study.COLUMNS)
    # the same subset for every method and factor at a given (N, replicate)
    assert df.groupby(["n_train", "replicate"])["subset"].nunique().eq(1).all()
    row = df[(df.method == "knn") & (df.n_train == 2) & (df.replicate == 1) & (df.aug_factor == 0)].iloc[0]
    idx = [int(i) for i in row.subset.split()]
    np.testing.assert_array_equal(idx, draw_subset(6, 2, seed=1, replicate=1))
    # its AUROC is that of a KNN fitted on those two images
    train = encode(lite0_small, [widget.train[i].path for i in idx], cache, progress=False)
    test = encode(lite0_small, [s.path for s in widget.test], cache, progress=False)
    assert row.auroc == pytest.approx(image_auroc(widget.test_labels, KNN().fit(train).anomaly_score(test)))
    assert (df.n_fit == np.where(df.augment_only, df.n_train * df.aug_factor, df.n_train * (df.aug_factor + 1))).all()
    padim = df[df.method == "padim"]
    assert padim.pixel_auroc.between(0, 1).all() and df[df.method != "padim"].pixel_auroc.isna().all()
    assert df.auroc.between(0, 1).all() and (df.fit_seconds >= 0).all()
    # augmented copies went through the cache: 6 train + 4 test + 6 copies
    assert len(list(cache.dir.rglob("*.npz"))) == 16
    assert not (tmp_path / "r.parquet.journal.jsonl").exists()
    # PaDiM fitted on the packs' maps, aligned on read, gives the numbers of PaDiM fitted on aligned arrays
    row = padim[(padim.n_train == 2) & (padim.replicate == 1) & (padim.aug_factor == 0)].iloc[0]
    direct = PaDiM().fit(stack_maps(train))
    assert row.auroc == pytest.approx(image_auroc(widget.test_labels, direct.anomaly_score(stack_maps(test))), rel=1e-9)
    # each map is on disk once: 16 rows in the packs, each image's key in one row; no second, aligned copy
    packs = [Pack.open(p) for p in (tmp_path / "cache" / "maps").rglob("*.pack")]
    keys = [k for p in packs for k in p.keys]
    assert len(keys) == len(set(keys)) == 16
    assert {p.label for p in packs} == {"mvtec/widget"}
    assert not (tmp_path / "cache" / "store").exists()


def test_study_resumes_after_an_interruption(widget, lite0_small, tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    out = tmp_path / "r.csv"
    full = run_study(widget, lite0_small, cache, StudyConfig(**CONFIG), tmp_path / "ref.csv", progress=False)

    real = fits_module.make_detector
    calls = []

    def failing(method):
        calls.append(method)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(method)

    monkeypatch.setattr(fits_module, "make_detector", failing)
    with pytest.raises(KeyboardInterrupt):
        run_study(widget, lite0_small, cache, StudyConfig(**CONFIG), out, progress=False)
    journal = tmp_path / "r.csv.journal.jsonl"
    assert len(journal.read_text().splitlines()) == 6 and not out.exists()

    calls.clear()
    monkeypatch.setattr(fits_module, "make_detector", lambda m: (calls.append(m), real(m))[1])
    resumed = run_study(widget, lite0_small, cache, StudyConfig(**CONFIG), out, progress=False)
    assert len(calls) == len(full) - 6  # only the fits that were missing
    assert not journal.exists()
    cols = ["method", "n_train", "replicate", "aug_factor", "augment_only", "auroc", "subset"]
    pd.testing.assert_frame_equal(resumed[cols].reset_index(drop=True), full[cols].reset_index(drop=True))


def test_study_bad_input(widget, lite0_small, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    with pytest.raises(LowdataError, match="N=7 is larger than the 6"):
        run_study(widget, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[7]), tmp_path / "r.csv")
    config = StudyConfig(methods=["padim"], sizes=[1], factors=[], augment_only=[1])
    assert config.skip_reason(1, 1, True, "padim") == ("padim needs at least 2 training images; N=1 with augmentation "
                                                        "factor 1 (augment only) gives 1")
    assert config.skip_reason(1, 1, False, "padim") == ""  # 1 image + 1 copy: a covariance of 2
    with pytest.raises(LowdataError, match=r"patchcore: coreset must be a number in \(0, 1\], got 0"):
        StudyConfig(methods=["patchcore"], sizes=[2], params={"coreset": 0}).validate()
    with pytest.raises(LowdataError, match=r"--param k: no such parameter of padim, patchcore; their parameters: "
                                           r"padim: estimator .*\| patchcore: coreset"):
        StudyConfig(methods=["padim", "patchcore"], sizes=[2], params={"k": 3}).validate()
    with pytest.raises(LowdataError, match="seed must be at least 0, got -1"):
        StudyConfig(methods=["knn"], sizes=[2], seed=-1).validate()
    with pytest.raises(LowdataError, match="augmentation factor must be a whole number, got 2.5"):
        StudyConfig(methods=["knn"], sizes=[2], factors=[2.5]).validate()
    with pytest.raises(LowdataError, match="nothing to run"):
        StudyConfig(methods=["knn"], sizes=[2], factors=[]).validate()
    with pytest.raises(LowdataError, match="unknown method 'lof'"):
        run_study(widget, lite0_small, cache, StudyConfig(methods=["lof"], sizes=[2]), tmp_path / "r.csv")
    with pytest.raises(LowdataError, match="unknown augmentation policy"):
        run_study(widget, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2]), tmp_path / "r.csv",
                  policy="sparkle")


def test_summary_needs_the_full_training_set():
    rows = [dict(category="c", aug_factor=0, augment_only=False, method="knn", n_train=n, n_pool=20, auroc=a,
                 fit_seconds=0.0, score_seconds=0.0, pixel_auroc=float("nan"), seed=0, aug_seed=0, policy_digest="p")
            for n, a in [(5, 0.6), (10, 0.8)]]
    table = study_report.summarize(pd.DataFrame(rows))["table"]
    assert np.isnan(table.auroc_max_n[0]) and np.isnan(table.area[0])  # N=10 is not "the full training set"
    rows.append({**rows[0], "n_train": 20, "auroc": 1.0})
    table = study_report.summarize(pd.DataFrame(rows))["table"]
    assert table.auroc_max_n[0] == 1.0 and table.area[0] == pytest.approx(0.625 / 0.75)
    said = study_report.format_summary(pd.DataFrame(rows[:2]))  # issue 29, point 17: in words, not an empty frame
    assert "Image AUROC at the largest size run (c N=10 of 20; not the full training set" in said
    assert "no area under the AUC-percent curve" in said and "Empty DataFrame" not in said
    assert "one sample size only" in study_report.format_summary(pd.DataFrame(rows[2:]))


def test_cli_study(tiny_mvtec, tmp_path, capsys):
    out = tmp_path / "res.csv"
    args = ["study", "--data", str(tiny_mvtec), "--category", "widget", "--input-size", "96", "--sizes", "3,max",
            "--reps", "2", "--aug", "0,1", "--methods", "knn,maha-lw", "--out", str(out), "--cache",
            str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Image AUROC at the full training set" in text and "Area under the AUC-percent curve" in text
    df = pd.read_csv(out)
    assert len(df) == (2 + 1) * 2 * 2 and set(df.method) == {"knn", "maha-lw"}
    bad = ["study", "--data", str(tiny_mvtec), "--category", "widget", "--methods", "knn,svm"]
    assert main(bad) == 2
    assert "unknown method 'svm'" in capsys.readouterr().err
    assert set(df.subsets) == {"independent"}
    # nested subsets into the same table: rows of their own, recorded as such
    assert main(args + ["--subsets", "nested"]) == 0
    both = pd.read_csv(out)
    nested = both[both.subsets == "nested"]
    assert len(nested) == len(df) and len(both) == 2 * len(df)
    row = nested[(nested.n_train == 3) & (nested.replicate == 1)].iloc[0]
    np.testing.assert_array_equal([int(i) for i in row.subset.split()], draw_subset(6, 3, 0, 1, "nested"))
    # a table written before --subsets existed (no such column) is resumed as independent: nothing refitted
    both[both.subsets == "independent"].drop(columns="subsets").to_csv(out, index=False)
    capsys.readouterr()
    assert main(args) == 0
    again = pd.read_csv(out)
    assert len(again) == len(df) and set(again.subsets) == {"independent"}
    np.testing.assert_array_equal(again.sort_values(study.KEY[:8]).fit_seconds,  # the same timings: kept, not refitted
                                  df.sort_values(study.KEY[:8]).fit_seconds)
    assert main(args[:-1] + ["--subsets", "nestled", "--no-progress"]) == 2
    assert "--subsets 'nestled': choose independent" in capsys.readouterr().err


def test_one_file_for_several_runs_returns_each_runs_rows(widget, lite0_small, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    out = tmp_path / "r.parquet"
    a = run_study(widget, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2, 6], reps=2, seed=0), out,
                  progress=False)
    b = run_study(widget, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2, 6], reps=2, seed=5), out,
                  progress=False)
    assert len(a) == len(b) == 3 and set(a.seed) == {0} and set(b.seed) == {5}
    assert len(study.read_results(out)) == 6  # the file keeps both runs


def test_few_shot_sizes_fit_what_can_be_fitted_and_record_the_rest_as_skipped(widget, lite0_small, tmp_path, capsys):
    """N = 1 and 2: KNN and PatchCore from one image, the Gaussians from two (or one plus its copies); a fit
    that cannot be made is a row with its reason and no metric, never an error, and is not tried again."""
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    config = StudyConfig(methods=["knn", "maha-lw", "padim", "patchcore"], sizes=[1, 2], reps=1, factors=[0, 1],
                         seed=2, pixel_size=32, params={"coreset": 0.5})
    out = tmp_path / "few.parquet"
    df = run_study(widget, lite0_small, cache, config, out, progress=True)
    assert "skipped: maha-lw needs at least 2 training images; N=1 with augmentation factor 0 gives 1" \
        in capsys.readouterr().err
    skipped = df[df.skipped != ""]
    assert sorted(skipped.method) == ["maha-lw", "padim"] and (skipped.n_train == 1).all() \
        and (skipped.aug_factor == 0).all()
    assert skipped.auroc.isna().all() and (skipped.n_fit == 0).all()
    made = df[df.skipped == ""]
    assert len(made) == 2 * 2 * 4 - 2 and made.auroc.between(0, 1).all()
    pc = made[made.method == "patchcore"]
    assert (pc.params == '{"coreset":0.5}').all() and (made[made.method != "patchcore"].params == "").all()
    assert pc.pixel_auroc.between(0, 1).all() and pc.aupro.between(0, 1).all()  # it gives maps: localization
    assert made.ap.between(0, 1).all() and made.f1_max.between(0, 1).all()
    # the table keeps the skipped rows; readers get the fits only, and the reasons apart
    assert len(study.read_results(out)) == len(made) and len(study.read_results(out, skipped=True)) == len(df)
    assert len(study.skipped_fits(study.read_results(out, skipped=True))) == 2
    assert "skipped (2): maha-lw needs at least 2" in study_report.format_summary(df)
    # resumed: nothing is fitted or skipped again
    again = run_study(widget, lite0_small, cache, config, out, progress=False)
    pd.testing.assert_frame_equal(again.drop(columns=["fit_seconds", "score_seconds"]),
                                  df.drop(columns=["fit_seconds", "score_seconds"]))
    # another coreset is another fit (part of the key); the other methods' rows are kept
    more = run_study(widget, lite0_small, cache, StudyConfig(**{**config.__dict__, "params": {"coreset": "1"}}), out,
                     progress=False)
    assert (more[more.method == "patchcore"].params == '{"coreset":1.0}').all()
    assert len(study.read_results(out, skipped=True)) == len(df) + 4


def _inside_a_page(path, column: str) -> int:
    """The last byte of ``column``'s last page: page data, which its CRC covers (a page header or the page indexes,
    which no reader of ours uses, are not covered, and a flip there leaves every value as it was)."""
    import pyarrow.parquet as pq

    group = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(group.column(j) for j in range(group.num_columns) if group.column(j).path_in_schema == column)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page and chunk.dictionary_page_offset else \
        chunk.data_page_offset
    return start + chunk.total_compressed_size - 1


def test_a_damaged_results_table_is_set_aside_and_its_fits_made_again(widget, lite0_small, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    config = dict(methods=["knn"], sizes=[2, 6], reps=2, factors=[0], seed=1)
    out = tmp_path / "r.parquet"
    first = run_study(widget, lite0_small, cache, StudyConfig(**config), out, progress=False)
    raw = bytearray(out.read_bytes())
    raw[_inside_a_page(out, "auroc")] ^= 0xFF  # a flipped bit in a page: its CRC no longer matches
    out.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=rf"the results table {out} is damaged \(.*\): set aside as r.parquet.damaged; "
                                         "its fits are made again"):
        again = run_study(widget, lite0_small, cache, StudyConfig(**config), out, progress=False)
    assert (tmp_path / "r.parquet.damaged").read_bytes() == bytes(raw)  # kept as it was, not deleted
    cols = ["n_train", "replicate", "auroc"]
    pd.testing.assert_frame_equal(first[cols], again[cols])


def test_an_old_table_with_a_coreset_column_still_reads_and_resumes(widget, lite0_small, tmp_path):
    """tests/experiments/study-with-a-coreset-column.csv: made by lowdata before the ``params`` column (76ceca5), on this
    widget: KNN, and PatchCore at coreset 0.5 and at 0.1 (its default), with PatchCore's coreset a column of its
    own. Read with this version, its fits are found again (none is made), each PatchCore fit under its parameters."""
    out = tmp_path / "old.csv"
    old = pd.read_csv(Path(__file__).parent / "study-with-a-coreset-column.csv")
    old.assign(backbone=lite0_small.key).to_csv(out, index=False)  # the same weights, whatever the runtime here
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    made = []
    real = fits_module.make_detector
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fits_module, "make_detector", lambda *a, **k: made.append(a) or real(*a, **k))
        config = StudyConfig(methods=["knn", "patchcore"], sizes=[2], reps=1, pixel_size=32)
        half = run_study(widget, lite0_small, cache, StudyConfig(**{**config.__dict__, "params": {"coreset": 0.5}}),
                         out, progress=False)
        default = run_study(widget, lite0_small, cache, config, out, progress=False)
    assert made == []  # nothing fitted again: every row was found under its key
    assert list(half.params) == ["", '{"coreset":0.5}'] and list(default.params) == ["", ""]
    by_coreset = old.set_index(old.coreset.fillna(-1))["aupro"]
    assert half.aupro.iloc[1] == by_coreset[0.5] and default.aupro.iloc[1] == by_coreset[0.1]
    assert half.fit_seconds.tolist() == old.fit_seconds.iloc[[0, 1]].tolist()  # the old rows, not new fits
    assert "coreset" not in pd.read_csv(out).columns and len(pd.read_csv(out)) == 3  # rewritten with params


def test_test_time_views_average_the_scores_of_each_image_and_its_views(widget, lite0_small, tmp_path):
    """--test-aug 0,2: each fit scored twice; K = 0 is the study without views, bit for bit; K = 2 is the mean of
    the image's score and its first two views' (encoded like training copies: same policy, seed and numbering);
    the pixel metrics are the un-augmented image's."""
    from lowdata.data.augment import policy_for
    from lowdata.features.cache import entry_key
    from lowdata.features.encode import source_key
    from lowdata.features.pool import encode_augmented

    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    config = dict(methods=["knn", "padim"], sizes=[3], reps=2, factors=[0], seed=1, pixel_size=32, aug_seed=5)
    plain = run_study(widget, lite0_small, cache, StudyConfig(**config), tmp_path / "a.parquet", progress=False)
    both = run_study(widget, lite0_small, cache, StudyConfig(**config, test_aug=[0, 2]), tmp_path / "b.parquet",
                     progress=False)
    assert sorted(both["test_aug"].unique()) == [0, 2] and len(both) == 2 * len(plain)
    key = ["method", "replicate"]
    zero = both[both["test_aug"] == 0].sort_values(key).reset_index(drop=True)
    pd.testing.assert_series_equal(zero["auroc"], plain.sort_values(key)["auroc"].reset_index(drop=True))
    two = both[both["test_aug"] == 2].sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(two["pixel_auroc"].to_numpy(), zero["pixel_auroc"].to_numpy())  # NaN for KNN
    # by hand: KNN on the subset, scored on the test images and on their views 1 and 2
    paths = [s.path for s in widget.test]
    hashes = [source_key(p) for p in paths]
    policy = policy_for(widget.category)
    views = encode_augmented(lite0_small, paths, hashes, cache, policy, 2, 5, progress=False)
    assert cache.read_pooled(entry_key(hashes[0], policy.digest(), 5, 2)) is not None  # keyed like a training copy
    train = encode(lite0_small, [s.path for s in widget.train], cache, progress=False)
    test = encode(lite0_small, paths, cache, progress=False)
    for r in range(2):
        det = KNN().fit(train.subset(draw_subset(len(widget.train), 3, 1, r)))
        mean = (det.anomaly_score(test) + det.anomaly_score(views[0]) + det.anomaly_score(views[1])) / 3
        got = two[(two["method"] == "knn") & (two["replicate"] == r)]["auroc"].item()
        assert got == pytest.approx(image_auroc(widget.test_labels, mean), abs=1e-12)
    # a resumed run with another K adds its rows only; the rows of the K asked for are returned
    again = run_study(widget, lite0_small, cache, StudyConfig(**config, test_aug=[0, 2, 3]), tmp_path / "b.parquet",
                      progress=False)
    assert sorted(again["test_aug"].unique()) == [0, 2, 3]
    from lowdata.experiments.design import parse_test_aug

    assert parse_test_aug(None) == [0] and parse_test_aug("4,0") == [0, 4] and parse_test_aug("2,4") == [0, 2, 4]
    for bad, says in (("0", "--test-aug 0: give a number of views of at least 1"), ("-2", "at least 0, got -2"),
                      ("two", "'two'")):
        with pytest.raises(LowdataError, match=says):
            parse_test_aug(bad)
