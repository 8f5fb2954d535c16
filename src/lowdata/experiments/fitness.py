"""Does the policy search's fitness rank policies as real defects do? (issue 33, point 4)

For one category, each (N, replicate, method) draws the study's training subset, runs
:func:`lowdata.autoaug.search.search_policy` on it exactly as the automatic-augmentation validation does
(:mod:`lowdata.experiments.autoaug`), and then, for **every** candidate the search scored, fits the detector on the
subset plus ``factor`` copies of each image with that candidate's policy and scores the category's real test set.
Each candidate is one row: its fitness at the first rung (every candidate has one; each objective's, see
:mod:`lowdata.autoaug.search`), its fitness at the last rung it reached, and its real image AUROC. The category's
hand-made policy (Table 4's row, or the generic ``default``) is marked ``hand``: a candidate when the search drew it,
else one more row without a fitness, so that :func:`auto_vs_hand` compares the chosen policy with it and with no
augmentation on the same subsets and copies as :mod:`lowdata.experiments.autoaug` does. :func:`rank_correlations` gives, per category, method and N, the Spearman
correlation between fitness and real AUROC over the candidates (mean and spread over replicates), the real AUROC
of the chosen candidate and of the best one, and where the chosen one ranks.

Rows are journaled and written atomically like every results table (:class:`~lowdata.experiments.table.ResultsTable`);
an interrupted run resumes. The test set is never seen by the search: it only scores the fits made afterwards.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..autoaug.search import search_policy
from ..autoaug.space import DEFAULT_SPACE, sample_candidates
from ..core.errors import printable
from ..core.tables import read_table
from ..data.augment import describe, policy_for
from ..data.dataset import CategoryData
from ..detectors.inputs import MapRows, stack_maps
from ..detectors.registry import make_detector, method_spec, uses_maps
from ..features.embeddings import Embeddings, map_rows
from ..features.encode import encode
from ..features.pool import encode_augmented
from ..metrics import image_auroc
from .autoaug import AutoAugConfig, comparison, validation_plan
from .design import draw_subset
from .table import IDENTITY, ResultsTable

KEY = ["source", "category", "backbone", "method", "n_train", "replicate", "policy_digest", "copies", "seed",
       "aug_seed", "search_digest", "n_pool", "n_test"]
COLUMNS = KEY[:6] + ["policy", "transforms", "policy_digest", "chosen", "hand", "fitness_first", "fitness_last", "rung",
                     "f_auroc_first", "f_graded_first", "f_tpr_first", "margin_first", "auroc", "fit_seconds", "seed", "aug_seed", "search_seed", "budget", "search_digest", "copies",
                     "n_pool", "n_test", "subset"]


def read_fitness(path: str | Path) -> pd.DataFrame:
    """A fitness-check table (:func:`lowdata.core.tables.read_table`)."""
    return read_table(path, columns=IDENTITY + ("policy_digest",),
                      text=("source", "category", "backbone", "method", "policy", "transforms", "policy_digest",
                            "search_digest", "subset"))


def run_fitness_check(data: CategoryData, backbone, cache, config: AutoAugConfig, out: str | Path,
                      progress: bool = True, every: bool = True) -> pd.DataFrame:
    """Every candidate of every search, its fitness beside its real AUROC (see the module docstring); returns this
    run's rows. ``every=False``: only the chosen candidate, no augmentation and the hand-made policy are fitted on
    the real defects (what :func:`auto_vs_hand` needs, a tenth of the fits)."""
    config.validate()
    plan = validation_plan(data, backbone, config)
    n_pool, labels, base, cells = len(data.train), plan.labels, plan.base, plan.cells
    train_paths, hashes, test_keys = plan.train_paths, plan.hashes, plan.test_keys
    candidates = {p.digest(): p for p in sample_candidates(DEFAULT_SPACE, config.search.budget, config.search.seed)}
    hand = policy_for(data.category)
    label = f"{data.source}/{data.category}"
    table = ResultsTable(out, COLUMNS, KEY, read_fitness, sort=["category", "method", "n_train", "replicate", "policy"])
    with table:
        made: dict[tuple, set] = {}  # (N, replicate, method) -> the candidates it has rows of, with this run's settings
        for row in table.rows:
            if all(str(row.get(k)) == str(v) for k, v in base.items()):
                made.setdefault((str(row["n_train"]), str(row["replicate"]), row["method"]), set()).add(
                    row["policy_digest"] + ("+chosen" if str(row.get("chosen")) == "True" else ""))
        whole = len(candidates) + (hand.digest() not in candidates)  # the rows of a finished cell

        def finished(cell):
            have = made.get(tuple(map(str, cell[:2])) + (cell[2],), set())
            return len(have) >= whole if every else any(d.endswith("+chosen") for d in have)

        todo = [c for c in cells if not finished(c)]
        test = encode(backbone, [s.path for s in data.test], cache, keys=test_keys, progress=progress,
                      desc=f"{data.category} test", label=label)
        test_maps = map_rows(cache, test_keys) if uses_maps(m for *_, m in todo) else None
        bar = tqdm(total=len(todo), desc=printable(f"{data.category} fitness check"), unit="search",
                   disable=not progress or not todo, mininterval=0.1 if sys.stderr.isatty() else 10.0)
        with bar:
            for n, r, m in todo:
                idx = draw_subset(n_pool, n, config.seed, r)
                paths, keys = [train_paths[i] for i in idx], [hashes[i] for i in idx]
                found = search_policy(paths, m, backbone, cache, config.search, hashes=keys, progress=False,
                                      label=label)
                maps = method_spec(m).consumes == "maps"
                originals = encode(backbone, paths, cache, keys=keys, progress=False, maps=maps, label=label)
                by_digest = found.table.groupby("digest", sort=False)
                # a cell a killed run left half done: the rest only
                have = {d.split("+")[0] for d in made.get((str(n), str(r), m), set())}
                keep = {found.best.digest(), hand.digest(), found.table["digest"].iloc[0]}  # chosen, hand, none
                groups = [(d, g) for d, g in by_digest if every or d in keep]
                if hand.digest() not in candidates:  # the hand-made policy is fitted too, without a fitness
                    groups.append((hand.digest(), None))
                for digest, g in groups:
                    if digest in have:
                        continue
                    pol = candidates.get(digest, hand)
                    factor = 0 if pol.is_identity() else config.factor
                    copies = encode_augmented(backbone, paths, keys, cache, pol, factor, config.aug_seed,
                                              progress=False, maps=maps, label=label) if factor else []
                    fit_set = Embeddings.concat([originals] + copies)
                    det = make_detector(m)
                    t0 = time.perf_counter()
                    det.fit(MapRows(stack_maps(fit_set, 256), np.arange(len(fit_set))) if maps else fit_set)
                    scores = det.anomaly_score(test_maps if maps else test)
                    table.keep({**base, "method": m, "n_train": int(n), "replicate": int(r), "policy": pol.name,
                                "transforms": describe(pol), "policy_digest": digest,
                                "chosen": bool(digest == found.best.digest()), "hand": bool(digest == hand.digest()),
                                **_fitness_of(g),
                                "auroc": image_auroc(labels, scores), "fit_seconds": time.perf_counter() - t0,
                                "subset": " ".join(map(str, idx))})
                bar.set_postfix_str(f"{m} N={n} r={r}", refresh=False)
                bar.update(1)
    return table.frame_where(base)


#: the fitnesses a check correlates with the real AUROC: the search's own (its objective), then each objective's
#: (:data:`lowdata.autoaug.search.OBJECTIVES`) and the margin, all at the first rung (every candidate has them)
FITNESSES = {"fitness": "fitness_first", "auroc": "f_auroc_first", "graded": "f_graded_first", "tpr": "f_tpr_first",
             "margin": "margin_first"}


def _fitness_of(g: pd.DataFrame | None) -> dict:
    """A candidate's fitness columns from its rows of the search table (``None``: not a candidate, all NaN)."""
    cols = ("f_auroc", "f_graded", "f_tpr", "margin")
    if g is None:
        return {"fitness_first": np.nan, "fitness_last": np.nan, "rung": -1, **{f"{c}_first": np.nan for c in cols}}
    first = g[g["rung"] == 0]
    return {"fitness_first": float(first["fitness"].iloc[0]), "fitness_last": float(g["fitness"].iloc[-1]),
            "rung": int(g["rung"].max()), **{f"{c}_first": float(first[c].iloc[0]) for c in cols}}


def _candidates(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the search's candidates (the hand-made policy's extra row, without a fitness, left out)."""
    return df[df["rung"] >= 0] if "rung" in df else df


def auto_vs_hand(df: pd.DataFrame) -> pd.DataFrame:
    """Per category, method and N: the real AUROC of no augmentation (the search's first candidate), the hand-made
    policy and the chosen one, as the validation compares them (:func:`lowdata.experiments.autoaug.comparison`:
    mean and sd over replicates, auto - hand with its wins / ties / losses, auto - none)."""
    if df.empty:
        return pd.DataFrame()
    kinds = {"none": df["policy"] == "none", "hand": df["hand"].eq(True), "auto": df["chosen"].eq(True)}
    t = comparison(pd.concat([df[mask].assign(kind=kind) for kind, mask in kinds.items()], ignore_index=True))
    return t.set_index(["category", "method", "N"]) if len(t) else t


def rank_correlations(df: pd.DataFrame, fitness: str = "fitness") -> pd.DataFrame:
    """Per category, method and N: the Spearman correlation between the candidates' first-rung ``fitness`` (a key
    of :data:`FITNESSES`) and their
    real AUROC (mean, and min to max over the replicates where both vary and every candidate was fitted: ``ranked``),
    the chosen candidate's real AUROC, the best candidate's, and
    the chosen one's rank by real AUROC (1: the best; mean over replicates)."""
    rows, column = [], FITNESSES[fitness]
    if column not in df:
        return pd.DataFrame()
    df = _candidates(df)
    for (cat, m, n), g in df.groupby(["category", "method", "n_train"], sort=True):
        rhos, chosen, best, ranks = [], [], [], []
        for _, rep in g.groupby("replicate"):
            if "budget" in rep and len(rep) < int(rep["budget"].iloc[0]):  # a --chosen-only replicate: no ranking
                continue
            if rep[column].nunique() > 1 and rep["auroc"].nunique() > 1:
                rhos.append(rep[column].rank().corr(rep["auroc"].rank()))  # Spearman: Pearson of ranks
            pick = rep[rep["chosen"].astype(bool)]
            if len(pick):
                chosen.append(float(pick["auroc"].iloc[0]))
                ranks.append(int((rep["auroc"] > pick["auroc"].iloc[0] + 1e-12).sum()) + 1)
            best.append(float(rep["auroc"].max()))
        rows.append({"category": cat, "method": m, "N": int(n), "replicates": g["replicate"].nunique(),
                     "ranked": len(rhos),  # replicates whose fitness and real AUROC both vary (else no rank)
                     "candidates": round(len(g) / max(1, g["replicate"].nunique()), 1),
                     "spearman": np.mean(rhos) if rhos else np.nan,
                     "spearman min": np.min(rhos) if rhos else np.nan, "spearman max": np.max(rhos) if rhos else np.nan,
                     "chosen AUROC": np.mean(chosen) if chosen else np.nan, "best AUROC": np.mean(best),
                     "chosen's rank": np.mean(ranks) if ranks else np.nan})
    return pd.DataFrame(rows).set_index(["category", "method", "N"]) if rows else pd.DataFrame()


def correlations_by_fitness(df: pd.DataFrame) -> pd.DataFrame:
    """Mean Spearman correlation (over replicates) of each fitness of :data:`FITNESSES` the table has, per category,
    method and N: one column per fitness."""
    cols = {f: rank_correlations(df, f)["spearman"] for f in FITNESSES
            if FITNESSES[f] in df and df[FITNESSES[f]].notna().any()}
    return pd.DataFrame(cols) if cols else pd.DataFrame()


def fitness_json(df: pd.DataFrame) -> str:
    """The correlations as JSON (for a closing note or a page)."""
    return json.dumps(rank_correlations(df).reset_index().to_dict("records"), indent=1, default=float)
