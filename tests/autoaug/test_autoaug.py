"""The automatic augmentation search: synthetic defects, the search space, the fitness (against a hand
computation with scikit-learn), successive halving, the commands and the validation experiment."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import copied

from lowdata.autoaug.search import SearchConfig, check_search_images, search_policy
from lowdata.autoaug.space import DEFAULT_SPACE, check_space, load_space, policy_of, sample_candidates
from lowdata.core.errors import LowdataError
from lowdata.data.augment import DEFAULT_POLICY, load_policy
from lowdata.data.images import read_image, resize_rgb
from lowdata.data.synthetic import GENERATORS, check_generators, defect_key, defect_sources, defect_examples, \
    make_defect
from lowdata.detectors.crossfit import folds_of
from lowdata.detectors.registry import make_detector
from lowdata.features.encode import cache_for, encode, source_key
from lowdata.features.pool import encode_augmented


@pytest.fixture(scope="module")
def elpv_goods():
    from lowdata.data.elpv import load_elpv

    data = load_elpv("mono")
    return [s.path for s in data.train[:8]], data


def _real(path, size=96):
    return resize_rgb(read_image(path), size)


# ------------------------------------------------------------------------------------------ synthetic defects
@pytest.mark.parametrize("generator", GENERATORS)
def test_defects_change_only_their_region_and_are_reproducible(generator, elpv_goods):
    img = _real(elpv_goods[0][0])
    out, mask = make_defect(img, generator, seed=0, content_hash="h", variant=0)
    again, mask2 = make_defect(img, generator, seed=0, content_hash="h", variant=0)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, again) and np.array_equal(mask, mask2)
    changed = (out != img).any(axis=2)
    assert changed.any() and mask.any()
    if generator != "blob":  # a blob's soft edge reaches past its core (the mask), fading out
        assert not (changed & ~mask).any()
    else:
        assert changed[mask].mean() > 0.5
    area = mask.mean()
    assert 0.0005 < area < 0.05, area  # small, local defects: 0.05 % to 5 % of the image
    other, _ = make_defect(img, generator, seed=0, content_hash="h", variant=1)
    assert not np.array_equal(other, out)
    assert not np.array_equal(make_defect(img, generator, seed=1, content_hash="h", variant=0)[0], out)


def test_patch_area_and_stroke_sizes_are_the_documented_ones(elpv_goods):
    img = _real(elpv_goods[0][0], 200)
    areas = [make_defect(img, "patch", seed=0, content_hash="h", variant=v)[1].mean() for v in range(30)]
    assert 0.004 <= min(areas) and max(areas) <= 0.022  # 0.5 to 2 % of the area (rounded to pixels)
    for v in range(10):
        m = make_defect(img, "scar", seed=0, content_hash="h", variant=v)[1]
        assert m.sum() <= (0.03 * 200 + 2) * (0.20 * 200 + 2)


def test_defect_keys_sources_and_bad_input(elpv_goods, lite0_small):
    keys = {defect_key("abc", g, 0, v) for g in GENERATORS for v in range(3)}
    assert len(keys) == 12 and all(k.startswith("abc-syn") for k in keys)
    assert defect_key("abc", "patch", 0, 0) != defect_key("abc", "patch", 1, 0)
    paths = elpv_goods[0][:2]
    sources, keys, owner = defect_sources(paths, ["h0", "h1"], ("patch", "noise"), 2, 0, lite0_small.preprocessing)
    assert len(sources) == 8 and owner == [0, 0, 0, 0, 1, 1, 1, 1] and len(set(keys)) == 8
    made = sources[0]()
    assert made.shape == (96, 96, 3)
    assert np.array_equal(made, make_defect(_real(paths[0]), "patch", seed=0, content_hash="h0", variant=0)[0])
    with pytest.raises(LowdataError, match="unknown synthetic defect 'crack'"):
        check_generators(["patch", "crack"])
    with pytest.raises(LowdataError, match="no synthetic defect"):
        check_generators([])
    with pytest.raises(LowdataError, match="uint8 image of at least 8 x 8"):
        make_defect(np.zeros((4, 4, 3), np.uint8), "patch", seed=0, content_hash="h", variant=0)
    fig = defect_examples(_real(paths[0]), variants=1)
    assert len(fig.axes) == 1 + len(GENERATORS)


# ------------------------------------------------------------------------------------------------ the space
def test_space_checks_name_the_family_or_value(tmp_path):
    with pytest.raises(LowdataError, match="unknown transform 'shear'"):
        check_space({"shear": [0, 5]})
    with pytest.raises(LowdataError, match="'rot90': values must be true or false"):
        check_space({"rot90": [0, 1]})
    with pytest.raises(LowdataError, match="'translate_px': a shift is a whole number"):
        check_space({"translate_px": [0, 2.5]})
    with pytest.raises(LowdataError, match="'zoom': a half-width below 1"):
        check_space({"zoom": [0, 1.5]})
    with pytest.raises(LowdataError, match="'fill': 'wrap' is not one of"):
        check_space({"fill": ["constant", "wrap"]})
    with pytest.raises(LowdataError, match="non-empty list"):
        check_space({"add": []})
    f = tmp_path / "space.json"
    f.write_text("{not json")
    with pytest.raises(LowdataError, match=f"search space file {f} is not valid JSON"):
        load_space(f)
    f.write_text(json.dumps({"rotate_deg": [5, 0, 5]}))
    space = load_space(f)
    assert space["rotate_deg"] == [0.0, 5.0] and space["rot90"] == [False]  # off first, distinct; others off
    with pytest.raises(LowdataError, match="not found"):
        load_space(tmp_path / "none.json")


def test_candidates_are_seeded_distinct_and_start_with_none_and_default():
    c = sample_candidates(DEFAULT_SPACE, 32, seed=0)
    assert len(c) == 32 and len({p.digest() for p in c}) == 32
    assert c[0].is_identity() and c[0].name == "none"
    assert c[1].digest() == DEFAULT_POLICY.digest() and c[1].name == "default"
    assert [p.digest() for p in sample_candidates(DEFAULT_SPACE, 32, seed=0)] == [p.digest() for p in c]
    assert [p.digest() for p in sample_candidates(DEFAULT_SPACE, 32, seed=1)][2:] != [p.digest() for p in c][2:]
    enabled = [sum(1 for f in ("flip_horizontal", "flip_vertical", "rot90") if getattr(p, f)) for p in c[2:]]
    assert 0 < np.mean(enabled) < 3  # each family is off half the time: sparse and dense policies are drawn
    small = sample_candidates({"flip_horizontal": [False, True]}, 10, seed=0)
    assert [p.name for p in small] == ["none", "auto-2"] and small[1].flip_horizontal  # the space holds 2
    with pytest.raises(LowdataError, match="budget must be a whole number .* at least 1, got 0"):
        sample_candidates(DEFAULT_SPACE, 0, seed=0)
    p = policy_of({"rotate_deg": 10, "fill": "edge", "zoom": 0.05}, "x")
    assert p.rotate_deg == (-10.0, 10.0) and p.zoom == (0.95, 1.05) and p.fill == "edge"
    assert policy_of({"flip_vertical": True, "fill": "edge"}, "y").fill == "constant"  # nothing to pad


def test_rungs_and_too_few_images():
    assert SearchConfig().rungs() == [2, 4, 8]
    assert SearchConfig(eta=3, first_copies=1, max_copies=10).rungs() == [1, 3, 9, 10]
    with pytest.raises(LowdataError, match="budget .* at least 1, got 0"):
        SearchConfig(budget=0).validate()
    with pytest.raises(LowdataError, match="eta .* at least 2"):
        SearchConfig(eta=1).validate()
    with pytest.raises(LowdataError, match="unknown synthetic defect"):
        SearchConfig(generators=("dent",)).validate()
    with pytest.raises(LowdataError, match="2 good image.* too few .* maha-lw .* at least 3 images"):
        check_search_images(2, 5, "maha-lw")
    assert check_search_images(3, 5, "maha-lw") == 3 and check_search_images(12, 5, "maha-lw") == 5
    assert check_search_images(2, 5, "knn") == 2


# ----------------------------------------------------------------------------------------------- the search
SMALL = dict(budget=5, first_copies=1, max_copies=2, folds=3, variants=1)


def test_fitness_equals_a_hand_computation_with_scikit_learn(elpv_goods, lite0_small, tmp_path):
    paths = elpv_goods[0][:6]
    cache = cache_for(lite0_small, tmp_path / "cache")
    config = SearchConfig(**SMALL, objective="auroc", prior_z=0)  # the fold AUROC ranks; no prior
    res = search_policy(paths, "maha-lw", lite0_small, cache, config, progress=False)
    t = res.table
    assert list(t.groupby("rung").size()) == [5, 3]  # successive halving: ceil(5 / 2) go on
    assert res.best.digest() in set(t[t["rung"] == 1]["digest"])
    assert res.summary()["candidates"] == 5 and res.folds == 3

    hashes = [source_key(p) for p in paths]
    orig = encode(lite0_small, paths, cache, keys=hashes, progress=False).pooled_concat()
    src, keys, owner = defect_sources(paths, hashes, config.generators, 1, 0, lite0_small.preprocessing)
    defects = encode(lite0_small, src, cache, keys=keys, progress=False).pooled_concat()
    owner = np.asarray(owner)
    folds = folds_of(6, 3, 0)
    cands = sample_candidates(DEFAULT_SPACE, 5, 0)
    for cand in (cands[0], cands[2]):  # no augmentation, and a random policy at the first rung (1 copy)
        copies = [] if cand.is_identity() else [e.pooled_concat() for e in
                                                 encode_augmented(lite0_small, paths, hashes, cache, cand, 1, 0, False)]
        aucs = []
        for j in range(3):
            tr, held = np.flatnonzero(folds != j), np.flatnonzero(folds == j)
            X = np.concatenate([orig[tr]] + [c[tr] for c in copies])
            det = make_detector("maha-lw").fit(_levels(lite0_small, X))
            d = np.flatnonzero(np.isin(owner, held))
            s = np.r_[det.anomaly_score(_levels(lite0_small, orig[held])), det.anomaly_score(_levels(lite0_small, defects[d]))]
            aucs.append(roc_auc_score(np.r_[np.zeros(len(held)), np.ones(len(d))], s))
        row = t[(t["rung"] == 0) & (t["digest"] == cand.digest())].iloc[0]
        assert row["fitness"] == pytest.approx(np.mean(aucs), abs=1e-12)
        d2 = ((orig[:, None].astype(float) - orig[None].astype(float)) ** 2).sum(-1) + np.diag(np.full(6, np.inf))
        shift = np.median([((c - orig) ** 2).sum(1) for c in copies]) / np.median(d2.min(1)) if copies else 0.0
        assert row["copy_shift"] == pytest.approx(shift, rel=1e-6)
        assert row["copies"] == (0 if cand.is_identity() else 1)

    again = search_policy(paths, "maha-lw", lite0_small, cache, config, progress=False)
    assert again.best.digest() == res.best.digest()
    pd.testing.assert_frame_equal(again.table.drop(columns="seconds"), t.drop(columns="seconds"))


def _levels(bb, X):
    dims = [s[2] for s in bb.level_shapes]
    return np.split(X, np.cumsum(dims)[:-1], axis=1)


def test_the_search_picks_the_turns_the_good_parts_vary_by(elpv_goods, lite0_small, tmp_path):
    """Good parts photographed at any quarter turn: copies turned by rot90 cover the turns a fold has not
    seen, so held-out good cells no longer look like defects: the search prefers rot90 to nothing, and rot90
    gains more fitness than on the same cells all photographed upright (the control)."""
    from PIL import Image

    gains = {}
    for turned in (True, False):
        folder = tmp_path / f"turned-{turned}"
        folder.mkdir()
        for i, p in enumerate(elpv_goods[0][:8]):
            Image.fromarray(np.rot90(_real(p, 128), k=i % 4 if turned else 0).copy()).save(folder / f"{i}.png")
        res = search_policy(sorted(folder.glob("*.png")), "maha-lw", lite0_small,
                            cache_for(lite0_small, tmp_path / "cache"),
                            SearchConfig(budget=2, first_copies=4, max_copies=4, folds=4, variants=2),
                            space={"rot90": [False, True]}, progress=False)
        t = res.table.set_index("policy")
        gains[turned] = t.loc["auto-2", "fitness"] - t.loc["none", "fitness"]
        if turned:
            assert res.best.rot90, res.format()
    assert gains[True] > 0 and gains[True] > gains[False] + 0.03, gains


# --------------------------------------------------------------------------------------------- the commands
@pytest.fixture
def goods_folder(tmp_path, elpv_goods):
    return copied(tmp_path / "good", elpv_goods[0][:6])


def test_policy_search_command_writes_a_policy_that_fit_reads(goods_folder, tmp_path, capsys, monkeypatch):
    from lowdata.cli import main

    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "policy.json"
    args = ["policy", "search", str(goods_folder), "--out", str(out), "--input-size", "96", "--budget", "4",
            "--search-folds", "3", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "chosen: " in text and "best 5 at the last rung" in text
    policy = load_policy(out)  # what --policy and fit --aug read
    table = pd.read_csv(tmp_path / "policy.search.csv")
    assert len(table[table["rung"] == 0]) == 4 and policy.digest() in set(table["digest"])
    assert main(args) == 2  # not replaced
    assert "exists: give another file, or --force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    capsys.readouterr()

    model = tmp_path / "m"
    assert main(["fit", str(goods_folder), "--aug", str(out), "--copies", "2", "--input-size", "96", "--out", str(model),
                 "--no-progress"]) == 0
    meta = json.loads((model / "model.json").read_text())
    assert meta["augmentation"]["digest"] == policy.digest()


def test_fit_aug_auto_records_the_search_in_the_model(goods_folder, tmp_path, capsys, monkeypatch):
    from lowdata.cli import main
    from lowdata.inspection.model import load_model

    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m"
    assert main(["fit", str(goods_folder), "--aug", "auto", "--budget", "3", "--copies", "2", "--input-size", "96",
                 "--out", str(model), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "policy search: 3 candidates" in text and "chosen automatically" in text
    loaded = load_model(model)
    found = loaded.meta["policy_search"]
    assert found["candidates"] == 3 and found["config"]["budget"] == 3 and found["top"]
    chosen = found["chosen"]  # the best by fitness, or the default the prior kept
    assert chosen == ("default" if found["config"]["kept_default"] else found["top"][0]["policy"])
    aug = loaded.meta["augmentation"]
    assert (aug is None) == (chosen == "none")
    if aug is not None:
        assert aug["policy"]["name"] == chosen and aug["copies"] == 2


def test_commands_refuse_bad_search_input(goods_folder, tmp_path, capsys, monkeypatch):
    from lowdata.cli import main

    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "cache"))
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"rot90": [False, True], "warp": [0, 1]}))
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(goods_folder.iterdir())[:2]:
        shutil.copy(p, few / p.name)
    cases = [
        (["policy", "search", str(goods_folder), "--out", str(tmp_path / "a.json"), "--budget", "0"],
         "budget (--budget) must be a whole number of at least 1, got 0"),
        (["policy", "search", str(goods_folder), "--out", str(tmp_path / "a.json"), "--space", str(space)],
         "unknown transform 'warp'"),
        (["policy", "search", str(few), "--out", str(tmp_path / "a.json")], "2 good image(s) are too few"),
        (["policy", "search", str(goods_folder), "--out", str(tmp_path / "a.txt")], "written as a .json file"),
        (["policy", "search", "--category", "mono", "--out", str(tmp_path / "a.json")], "--category needs --n"),
        (["policy", "search", "--category", "mono", "--n", "5000", "--out", str(tmp_path / "a.json")],
         "--n 5000: mono has 441 training images"),
        (["policy", "search", str(goods_folder), "--method", "svm", "--out", str(tmp_path / "a.json")],
         "unknown method 'svm'"),
        (["fit", str(goods_folder), "--out", str(tmp_path / "m"), "--budget", "4"], "give them with --aug auto"),
        (["policy", "search", str(goods_folder), "--coreset", "0.5", "--out", str(tmp_path / "a.json")],
         "--param coreset: no such parameter of maha-lw; their parameters: maha-lw: no parameters"),
        (["fit", str(goods_folder), "--out", str(tmp_path / "m"), "--aug", "auto", "--space", str(space)],
         "unknown transform 'warp'"),
    ]
    for argv, words in cases:
        assert main(argv + ["--no-progress"]) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "m").exists()


# --------------------------------------------------------------------------------- the validation experiment
def test_validation_rows_resume_and_never_show_the_search_a_test_image(tiny_mvtec, lite0_small, tmp_path, monkeypatch):
    import lowdata.experiments.autoaug as exp
    from lowdata.data.sources import load_category

    data = load_category("mvtec", "widget", root=tiny_mvtec)
    seen = []
    real = exp.search_policy

    def spy(paths, *a, **k):
        seen.append(list(paths))
        return real(paths, *a, **k)

    monkeypatch.setattr(exp, "search_policy", spy)
    config = exp.AutoAugConfig(methods=["maha-lw", "knn"], sizes=[4], reps=2, factor=2,
                               search=SearchConfig(**{**SMALL, "budget": 3}))
    out = tmp_path / "auto.csv"
    cache = cache_for(lite0_small, tmp_path / "cache")
    df = exp.run_autoaug(data, lite0_small, cache, config, out, progress=False)
    assert len(df) == 2 * 2 * 3 and set(df["kind"]) == {"none", "hand", "auto"}
    train = {str(s.path) for s in data.train}
    assert len(seen) == 4 and all({str(p) for p in ps} <= train and len(ps) == 4 for ps in seen)
    hand = df[df["kind"] == "hand"]
    assert set(hand["policy"]) == {"default"} and set(hand["aug_factor"]) == {2}  # widget has no Table 4 row
    assert set(df[df["kind"] == "none"]["aug_factor"]) == {0}
    assert df["auroc"].between(0, 1).all()
    assert df[df["kind"] != "none"]["search_fitness"].notna().all()  # auto and default are both candidates
    for (m, r), g in df.groupby(["method", "replicate"]):
        assert g["subset"].nunique() == 1  # the three fits share the replicate's subset
    # the none fit equals a direct fit on the subset
    row = df[(df["kind"] == "none") & (df["method"] == "knn") & (df["replicate"] == 0)].iloc[0]
    idx = [int(i) for i in row["subset"].split()]
    tr = encode(lite0_small, [data.train[i].path for i in idx], cache, progress=False)
    te = encode(lite0_small, [s.path for s in data.test], cache, progress=False)
    assert row["auroc"] == pytest.approx(roc_auc_score(data.test_labels, make_detector("knn").fit(tr).anomaly_score(te)))
    seen.clear()
    again = exp.run_autoaug(data, lite0_small, cache, config, out, progress=False)
    assert seen == [] and len(again) == len(df)  # resumed: nothing searched or fitted again
    table = exp.comparison(again)
    assert set(table["method"]) == {"maha-lw", "knn"} and "auto - hand" in table.columns
    with pytest.raises(LowdataError, match="larger than the 6 training images"):
        exp.run_autoaug(data, lite0_small, cache, exp.AutoAugConfig(sizes=[7]), tmp_path / "x.csv", progress=False)
    with pytest.raises(LowdataError, match="too few for a policy search"):
        exp.run_autoaug(data, lite0_small, cache, exp.AutoAugConfig(sizes=[2]), tmp_path / "x.csv", progress=False)


# ----------------------------------------------------------------------------------- graded defects, objectives
def test_graded_defects_move_the_good_image_part_of_the_way(elpv_goods, lite0_small):
    from lowdata.data.synthetic import check_grades, graded

    assert check_grades("0.25,0.5") == (1.0, 0.5, 0.25) and check_grades([1, 0.5, 0.5]) == (1.0, 0.5)
    for bad in ("0", "1.5", "x", "nan"):
        with pytest.raises(LowdataError, match="a defect strength must be a number in \\(0, 1\\]"):
            check_grades(bad)
    img = _real(elpv_goods[0][0])
    out, mask = make_defect(img, "blob", seed=0, content_hash="h", variant=0)
    assert graded(img, out, 1.0) is out
    half = graded(img, out, 0.5)
    assert np.array_equal(half[~mask & (out == img).all(-1)], img[~mask & (out == img).all(-1)])
    want = np.clip(np.rint(img.astype(float) + 0.5 * (out.astype(float) - img)), 0, 255)
    assert np.array_equal(half, want.astype(np.uint8)) and 0 < np.abs(half.astype(int) - img).sum() < np.abs(
        out.astype(int) - img).sum()
    # full-strength keys are those of before grades existed (their cached features stay valid); graded ones differ
    assert defect_key("h", "blob", 0, 1) == defect_key("h", "blob", 0, 1, 1.0) and "-a" not in defect_key("h", "blob", 0, 1)
    assert defect_key("h", "blob", 0, 1, 0.25).endswith("-v1-a0.25")
    src, keys, owner = defect_sources(elpv_goods[0][:1], ["h0"], ("blob",), 1, 0, lite0_small.preprocessing, (1.0, 0.5))
    assert [s.strength for s in src] == [1.0, 0.5] and len(set(keys)) == 2 and owner == [0, 0]
    assert np.array_equal(src[1](), graded(lite0_small.preprocessing.apply(img), src[0](), 0.5))


def test_fold_fitness_against_counts_by_hand():
    from lowdata.autoaug.search import fold_fitness

    f = fold_fitness(np.array([1.0, 2.0]), np.array([3.0, 1.5, 0.5, 2.0]), np.array([True, False, False, True]))
    assert f["auroc"] == pytest.approx((2 + 1.5) / 4)  # 3 beats both; 2 beats 1, ties 2
    assert f["graded"] == pytest.approx((2 + 1 + 0 + 1.5) / 8)
    assert f["tpr"] == pytest.approx(1 / 4)  # only 3 is above every good image (2 is not above 2)
    assert f["margin"] == pytest.approx((np.log(3) + np.log(2)) / 2 - np.log(2) / 2)  # full-strength defects only


def test_objectives_and_the_search_identity():
    from lowdata.experiments.autoaug import AutoAugConfig

    # the settings of before grades, objectives and the prior keep their identity: their rows are not searched again
    assert AutoAugConfig(search=SearchConfig(objective="auroc", prior_z=0)).search_digest() == "7f379079c33900be"
    assert AutoAugConfig().search_digest() != "7f379079c33900be"  # the default since: the margin, the prior
    graded_cfg = AutoAugConfig(search=SearchConfig(grades="0.25", objective="tpr"))
    assert graded_cfg.validate().search.grades == (1.0, 0.25) and graded_cfg.search_digest() != "7f379079c33900be"
    with pytest.raises(LowdataError, match="unknown search objective 'f1'; choose from auroc, graded, tpr, margin"):
        SearchConfig(objective="f1").validate()
    with pytest.raises(LowdataError, match="the tpr objective needs faint defects too"):
        SearchConfig(objective="tpr").validate()
    assert SearchConfig(objective="margin").validate().grades == (1.0,)  # the margin of full-strength defects


def test_the_default_prior_keeps_default_unless_the_winner_beats_it_beyond_the_folds_noise(elpv_goods, lite0_small,
                                                                                         tmp_path):
    paths = elpv_goods[0][:6]
    cache = cache_for(lite0_small, tmp_path / "cache")
    free = search_policy(paths, "maha-lw", lite0_small, cache, SearchConfig(**SMALL, objective="margin", prior_z=0), progress=False)
    assert free.config["kept_default"] is False
    strict = search_policy(paths, "maha-lw", lite0_small, cache, SearchConfig(**SMALL, objective="margin", prior_z=99),
                           progress=False)
    if free.best.is_identity() or free.best.name == "default":
        assert strict.best.digest() == free.best.digest() and strict.config["kept_default"] is False
    else:  # 99 standard errors: nothing beats the default
        assert strict.best.name == "default" and strict.config["kept_default"] is True
        assert "(the generic default kept: the best candidate did not beat it by 99 fold standard errors)" \
            in strict.format()
        last = strict.table[strict.table["rung"] == strict.table["rung"].max()]
        assert {free.best.name, "default"} <= set(last["policy"])  # the default measured at the last rung too
        assert (last["policy"] == "default").sum() == 1 and (last["policy"] == free.best.name).sum() == 1
        assert strict.summary()["fitness"] == float(last[last["policy"] == "default"]["fitness"].iloc[0])
    with pytest.raises(LowdataError, match="prior_z must be a number from 0"):
        SearchConfig(prior_z=-1).validate()
