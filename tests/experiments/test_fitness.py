"""The fitness check: every candidate of a search, its fitness beside its AUROC on the real test defects."""
import numpy as np
import pandas as pd
import pytest

from lowdata.autoaug.search import SearchConfig, search_policy
from lowdata.core.errors import LowdataError
from lowdata.data.sources import load_category
from lowdata.detectors.registry import make_detector
from lowdata.experiments.autoaug import AutoAugConfig
from lowdata.experiments.design import draw_subset
from lowdata.experiments.fitness import auto_vs_hand, correlations_by_fitness, rank_correlations, run_fitness_check
from lowdata.features.cache import EmbeddingCache
from lowdata.features.encode import encode
from lowdata.metrics import image_auroc


def test_every_candidate_gets_its_fitness_and_its_real_auroc(tiny_mvtec, lite0_small, tmp_path):
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    search = SearchConfig(budget=4, folds=3, first_copies=1, max_copies=2, variants=1, seed=3)
    config = AutoAugConfig(methods=["maha-lw"], sizes=[5], reps=2, factor=2, seed=1, search=search)
    df = run_fitness_check(data, lite0_small, cache, config, tmp_path / "f.csv", progress=False)
    assert len(df) == 2 * 4 and set(df.groupby("replicate")["chosen"].sum()) == {1}
    # the hand-made policy of a category Table 4 does not name is the generic default, one of the candidates
    assert (df[df["hand"].eq(True)]["policy"] == "default").all() and df["hand"].eq(True).sum() == 2
    assert df["margin_first"].equals(df["fitness_first"]) and df["f_tpr_first"].between(0, 1).all()  # the margin ranks
    # the search again, by hand: the same candidates, the same first-rung fitness, the same choice
    idx = draw_subset(len(data.train), 5, 1, 0)
    found = search_policy([data.train[i].path for i in idx], "maha-lw", lite0_small, cache, search, progress=False)
    first = found.table[found.table["rung"] == 0].set_index("digest")["fitness"]
    rep0 = df[df["replicate"] == 0].set_index("policy_digest")
    pd.testing.assert_series_equal(rep0["fitness_first"].sort_index(), first.sort_index(), check_names=False)
    assert rep0.loc[found.best.digest(), "chosen"]
    # the candidate without augmentation: the detector on the five images alone, scored on the test set
    none = rep0[rep0["policy"] == "none"].iloc[0]
    train = encode(lite0_small, [data.train[i].path for i in idx], cache, progress=False)
    test = encode(lite0_small, [s.path for s in data.test], cache, progress=False)
    det = make_detector("maha-lw").fit(train)
    assert none["auroc"] == pytest.approx(image_auroc(data.test_labels, det.anomaly_score(test)), abs=1e-12)
    # resumed: nothing is fitted again
    again = run_fitness_check(data, lite0_small, cache, config, tmp_path / "f.csv", progress=False)
    np.testing.assert_array_equal(again.sort_values(["replicate", "policy"])["fit_seconds"].to_numpy(),
                                  df.sort_values(["replicate", "policy"])["fit_seconds"].to_numpy())
    # a cell a killed run left half done: its missing candidates only are fitted (nothing is fitted twice)
    partial = pd.read_csv(tmp_path / "f.csv")
    lost = partial[partial["replicate"] == 0].index[:2]
    partial.drop(index=lost).to_csv(tmp_path / "f.csv", index=False)
    third = run_fitness_check(data, lite0_small, cache, config, tmp_path / "f.csv", progress=False)
    assert len(third) == 8 and third.groupby("replicate")["policy_digest"].nunique().tolist() == [4, 4]
    kept = df.drop(index=df.index[df["policy_digest"].isin(partial.loc[lost, "policy_digest"]) & (df["replicate"] == 0)])
    merged = third.merge(kept[["replicate", "policy_digest", "fit_seconds"]], on=["replicate", "policy_digest"])
    assert len(merged) == 6 and (merged["fit_seconds_x"] == merged["fit_seconds_y"]).all()
    # only what auto against hand needs: the chosen, the hand-made and no augmentation, the same numbers
    few = run_fitness_check(data, lite0_small, cache, config, tmp_path / "few.csv", progress=False, every=False)
    assert set(few.groupby("replicate")["chosen"].sum()) == {1} and len(few) <= 2 * 3
    assert set(few["policy"]) <= {"none", "default", *df[df["chosen"]]["policy"]} and "none" in set(few["policy"])
    both = few.merge(df, on=["replicate", "policy_digest"])
    assert len(both) == len(few) and (both["auroc_x"] == both["auroc_y"]).all()
    pd.testing.assert_frame_equal(auto_vs_hand(few), auto_vs_hand(df))
    with pytest.raises(LowdataError, match="N=50 is larger than the 6"):
        run_fitness_check(data, lite0_small, cache, AutoAugConfig(methods=["knn"], sizes=[50], search=search),
                          tmp_path / "g.csv", progress=False)


def test_rank_correlations_against_known_orderings():
    def rows(rep, fitness, auroc, chosen):
        return [{"category": "c", "method": "knn", "n_train": 10, "replicate": rep, "fitness_first": f, "auroc": a,
                 "chosen": i == chosen} for i, (f, a) in enumerate(zip(fitness, auroc))]

    same = rows(0, [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], 3)  # the same order: rho 1, the best chosen
    reverse = rows(1, [0.1, 0.2, 0.3, 0.4], [0.8, 0.7, 0.6, 0.5], 3)  # reversed: rho -1, the worst chosen
    flat = rows(2, [0.1, 0.2, 0.3, 0.4], [0.9, 0.9, 0.9, 0.9], 0)  # real AUROC saturated: no rank
    few = [dict(r, budget=4) for r in rows(3, [0.1, 0.2, 0.3], [0.9, 0.6, 0.5], 2)]  # chosen only: not ranked
    t = rank_correlations(pd.DataFrame([dict(r, budget=4) for r in same + reverse + flat] + few)).loc[("c", "knn", 10)]
    assert t["replicates"] == 4 and t["ranked"] == 2 and t["spearman"] == pytest.approx(0.0)
    assert (t["spearman min"], t["spearman max"]) == (pytest.approx(-1.0), pytest.approx(1.0))
    assert t["chosen's rank"] == pytest.approx((1 + 4 + 1) / 3)
    assert t["chosen AUROC"] == pytest.approx((0.8 + 0.5 + 0.9) / 3) and t["best AUROC"] == pytest.approx((0.8 + 0.8 + 0.9) / 3)


def test_auto_against_hand_and_none_on_the_same_replicates():
    def rep(r, none, hand, auto, hand_is_candidate=True):
        rows = [{"policy": "none", "auroc": none, "chosen": False, "hand": False, "rung": 0, "fitness_first": 0.1},
                {"policy": "p", "auroc": auto, "chosen": True, "hand": False, "rung": 2, "fitness_first": 0.3}]
        rows.append({"policy": "t4", "auroc": hand, "chosen": False, "hand": True,
                     "rung": 1 if hand_is_candidate else -1, "fitness_first": 0.2 if hand_is_candidate else np.nan})
        return [{"category": "c", "method": "padim", "n_train": 10, "replicate": r, **x} for x in rows]

    df = pd.DataFrame(rep(0, 0.8, 0.9, 0.95) + rep(1, 0.8, 0.9, 0.85, False) + rep(2, 0.7, 0.9, 0.9))
    t = auto_vs_hand(df).loc[("c", "padim", 10)]
    assert t["replicates"] == 3 and t["auto wins / ties / losses"] == "1 / 1 / 1"
    assert t["auto - hand"] == pytest.approx(0.0) and t["auto - none"] == pytest.approx((0.15 + 0.05 + 0.2) / 3)
    assert t["hand AUROC"] == pytest.approx(0.9) and t["hand sd"] == pytest.approx(0.0)
    # the hand-made policy's extra row (no fitness) is not a candidate: replicate 1 ranks its 2 candidates only
    # (rho 1); replicate 0 has the same order (1); replicate 2's tie: ranks (1, 3, 2) against (1, 2.5, 2.5)
    by = correlations_by_fitness(df)
    assert list(by.columns) == ["fitness"]
    assert by.loc[("c", "padim", 10), "fitness"] == pytest.approx((1 + 1 + 1.5 / np.sqrt(2 * 1.5)) / 3)
