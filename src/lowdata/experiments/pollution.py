"""Polluted training sets (the second paper): the protocol, and the study of refinement strategies.

**Protocol**: the polluted splits of :mod:`lowdata.experiments.polluted` (``d`` defective test images moved into
the training set for rate ``r``; the same split for every method, refinement and augmentation factor; every model
of a (rate, replicate) tested on the same remaining images).

**Study** (:func:`run_pollution_study`): per rate and replicate, per method (``knn``, ``maha-lw``,
``padim`` by default) and augmentation factor (detectors that consume maps, PaDiM: ``map_factors``, default
0 only: its maps with 10 copies take 11 times the memory), four training sets:

* ``oracle``: the good training images only (what pollution costs is measured against it);
* ``none``: the polluted set as it is;
* ``sroc``: the polluted set refined by :func:`lowdata.experiments.refine.sroc`;
* ``ensemble``: refined by :func:`lowdata.experiments.refine.ensemble_refine`.

Refinement runs without augmentation by default (``refine_factors``): with ``f`` copies it needs
``f + 1`` times the fits of every fold. Each row records AUROC, the kept and removed images, the
precision and recall of the removal against the truly defective images, and the refinement's
parameters; the moved files are listed in ``<out>.moved.csv``. An ablation (``ablation``) reruns
SROC at one rate with one parameter changed at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tqdm import tqdm

from ..core.atomic import atomic_path
from ..core.errors import LowdataError, printable
from ..data.augment import policy_for
from ..data.dataset import CategoryData
from ..detectors.inputs import stack_maps
from ..detectors.crossfit import fit_rows, fit_score_fn
from ..detectors.registry import check_method, method_spec, uses_maps
from ..features.encode import encode, source_key
from ..features.embeddings import Embeddings
from ..features.pool import FeaturePool, encode_augmented
from ..metrics import image_auroc
from .refine import SROCConfig, ensemble_refine, removal_quality, sroc
from ..core.tables import read_table
from .table import IDENTITY, ResultsTable
from .polluted import RATES, defects_needed, feasible_rates, pollute

REFINEMENTS = ("oracle", "none", "sroc", "ensemble")
#: the table's columns; a row is identified by the data, the seeds, the split and the model (``params``: the
#: refinement's parameters)
COLUMNS = ["source", "category", "backbone", "rate", "actual_rate", "n_defects", "n_good", "replicate", "seed",
           "aug_seed", "policy_digest", "n_test", "n_test_defects", "method", "aug_factor", "refinement", "params",
           "ablation", "auroc", "n_kept", "removed", "removed_defective", "precision", "recall", "rounds",
           "refine_seconds", "fit_seconds"]
KEY = ["source", "category", "backbone", "seed", "aug_seed", "policy_digest", "n_good", "n_test", "rate", "replicate",
       "method", "aug_factor", "refinement", "params"]
TEXT = ["source", "category", "backbone", "policy_digest", "method", "refinement", "params", "ablation"]


def build_pool(data: CategoryData, backbone, cache, factor: int, methods: Sequence[str], aug_seed: int = 0,
               progress: bool = True, map_factor: int = 0):
    """Encode the category (training images, every test image, copies of both) and return the training
    pool (rows: the good training images, then every defective test image), the test features, and the
    pool's row of each test image."""
    defect_idx = np.flatnonzero(data.test_labels == 1)
    paths = [s.path for s in data.train] + [data.test[i].path for i in defect_idx]
    hashes = [source_key(p) for p in paths]
    label = f"{data.source}/{data.category}"
    train = encode(backbone, paths[:len(data.train)], cache, keys=hashes[:len(data.train)], progress=progress,
                   desc=f"{data.category} train", label=label)
    test = encode(backbone, [s.path for s in data.test], cache, progress=progress, desc=f"{data.category} test",
                  label=label)
    orig = Embeddings.concat([train, test.subset(defect_idx)])  # the defects are read once, with the test set
    copies = encode_augmented(backbone, paths, hashes, cache, policy_for(data.category), factor, aug_seed, progress,
                              label=label)
    allp = Embeddings.concat([orig] + copies)
    # the maps in memory, for the methods that consume them: originals and the copies up to map_factor (rows
    # keep the same order)
    need_maps = uses_maps(methods)
    with_maps = allp.subset(range(len(paths) * (map_factor + 1)))
    maps = stack_maps(with_maps, 256) if need_maps else None
    test_maps = stack_maps(test, 256) if need_maps else None
    pool = FeaturePool(list(allp.pooled), maps, len(paths), factor)
    row_of_test = {int(i): len(data.train) + j for j, i in enumerate(defect_idx)}
    return pool, (list(test.pooled), test_maps), row_of_test


@dataclass
class PollutionConfig:
    methods: tuple[str, ...] = ("knn", "maha-lw", "padim")
    rates: tuple[float, ...] = RATES
    reps: int = 3
    factors: tuple[int, ...] = (0, 10)
    map_factors: tuple[int, ...] = (0,)  # for the methods that consume maps: PaDiM's with 10 copies cost 11 times the memory and time
    refine_factors: tuple[int, ...] = (0,)
    sroc: SROCConfig = SROCConfig()
    ensemble_members: int = 5
    ensemble_quantile: float = 0.9
    ablation_rate: float | None = 0.10
    ablation: tuple[tuple[str, object], ...] = (("folds", 2), ("folds", 10), ("rule", ("quantile", 0.9)),
                                                ("rule", ("zscore", 2.0)), ("rule", ("zscore", 4.0)),
                                                ("rule", ("chi2", 0.001)), ("max_rounds", 1),
                                                ("scorer", "maha-lw"))
    seed: int = 0
    aug_seed: int = 0
    min_test_defects: int = 1

    def validate(self) -> "PollutionConfig":
        for m in self.methods:
            check_method(m)
        for r in self.rates:
            defects_needed(r, 1)
        if self.reps < 1:
            raise LowdataError(f"replicates must be >= 1, got {self.reps}")
        if any(f < 0 for f in self.factors):
            raise LowdataError(f"augmentation factors must be >= 0, got {self.factors}")
        self.sroc.validate()
        return self


def sroc_variants(config: PollutionConfig) -> list[tuple[str, SROCConfig]]:
    """The ablation: SROC with one parameter changed at a time (name, config)."""
    out = []
    for name, value in config.ablation:
        if name == "rule":
            rule, t = value
            c = replace(config.sroc, rule=rule, threshold=t)
        else:
            c = replace(config.sroc, **{name: value})
        out.append((f"{name}={value if name != 'rule' else f'{value[0]} {value[1]:g}'}", c.validate()))
    return out


def _dims(method: str, pool: FeaturePool) -> list[int] | None:
    """The level dimensions a Gaussian scorer's chi-square rule needs (``None`` for other scorers)."""
    return pool.dims if method_spec(method).gaussian else None


def run_pollution_study(data: CategoryData, backbone, cache, config: PollutionConfig, out: str | Path,
                        progress: bool = True) -> pd.DataFrame:
    """The whole study of one category, resumable (a :class:`~lowdata.experiments.table.ResultsTable` at ``out``:
    locked, journaled row by row, rows of other runs kept); writes ``out`` (Parquet or CSV) and
    ``<out>.moved.csv``; returns this run's rows."""
    config.validate()
    table = ResultsTable(out, COLUMNS, KEY, read_pollution, sort=["category", "rate", "replicate"], filled=_filled)
    with table:  # locked: a second run on the same table stops at once, naming this one
        mine = _run_pollution(data, backbone, cache, config, table, progress)
    return table.frame_of(mine)


def read_pollution(path: str | Path) -> pd.DataFrame:
    """A pollution results table (:func:`lowdata.core.tables.read_table`)."""
    return read_table(path, columns=IDENTITY + ("refinement",), text=TEXT, what="pollution table")


def _filled(row: dict) -> dict:
    """A row read back: empty text is empty (a CSV reads it as NaN); a row of a table written before the policy
    was recorded has none (it is not taken for this run's)."""
    for column in ("params", "ablation", "policy_digest"):
        value = row.get(column)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            row[column] = ""
    return row


def _run_pollution(data: CategoryData, backbone, cache, config: PollutionConfig, table: ResultsTable,
                   progress: bool) -> list[tuple]:
    """Every row of the study not yet in ``table`` made and kept; returns the keys of this run's rows."""
    ok, skipped = feasible_rates(data, config.rates, config.min_test_defects)
    n_def = int((data.test_labels == 1).sum())
    why = [f"{data.category}: pollution rate {r:.1%} skipped: it needs {defects_needed(r, len(data.train))} "
           f"defective images, the test set has {n_def} (and keeps {config.min_test_defects})" for r in skipped]
    if not ok:
        raise LowdataError("no pollution rate is possible: " + "; ".join(why))
    for line in why:
        print(line)
    pool, (test_pooled, test_maps), row_of_test = build_pool(
        data, backbone, cache, max(config.factors), config.methods, config.aug_seed, progress,
        map_factor=max([f for f in config.map_factors if f in config.factors] + [0]))
    labels = data.test_labels
    n_good = len(data.train)
    variants = sroc_variants(config) if config.ablation_rate is not None else []
    jobs = [(r, rep) for r in ok for rep in range(config.reps)]
    mine, moved_log, oracles = [], [], {}
    digest = policy_for(data.category).digest()
    bar = tqdm(jobs, desc=printable(f"{data.category} pollution"), unit="split", disable=not progress)
    for rate, rep in bar:
        split = pollute(data, rate, config.seed, rep, config.min_test_defects)
        for i in split.moved:
            moved_log.append({"category": data.category, "rate": rate, "replicate": rep,
                              "file": str(data.test[i].path)})
        polluted_rows = np.array([row_of_test[int(i)] for i in split.moved], int)
        train_rows = np.concatenate([np.arange(n_good), polluted_rows])
        truth = np.arange(n_good, len(train_rows))  # positions of the defects within train_rows
        t_idx = split.test_rows
        y = labels[t_idx]
        base = {"source": data.source, "category": data.category, "backbone": backbone.key, "rate": rate,
                "actual_rate": len(polluted_rows) / len(train_rows), "n_defects": len(polluted_rows),
                "n_good": n_good, "replicate": rep, "seed": config.seed, "aug_seed": config.aug_seed,
                "policy_digest": digest, "n_test": len(t_idx), "n_test_defects": int(y.sum())}
        for method in config.methods:
            consumes = method_spec(method).consumes
            test_feat = test_maps[t_idx] if consumes == "maps" else [p[t_idx] for p in test_pooled]

            def evaluate(kept_positions, factor, oracle=False):
                t0 = time.perf_counter()
                key = (method, factor)
                if oracle and key in oracles:  # the clean set is the same for every rate and replicate
                    det = oracles[key]
                else:
                    det = fit_rows(pool, train_rows[kept_positions], method, factor)
                    if oracle:
                        oracles[key] = det
                auc = image_auroc(y, det.anomaly_score(test_feat))
                return auc, time.perf_counter() - t0

            for factor in config.factors:
                if consumes == "maps" and factor not in config.map_factors:
                    continue
                fs_pool = fit_score_fn(method, pool, factor)

                def fs(tr, sc):  # positions within train_rows -> pool rows
                    return fs_pool(train_rows[tr], train_rows[sc])

                plans = [("oracle", "", np.arange(n_good), None), ("none", "", np.arange(len(train_rows)), None)]
                if factor in config.refine_factors:
                    plans.append(("sroc", config.sroc.label(), None, ("sroc", config.sroc)))
                    plans.append(("ensemble", f"members={config.ensemble_members} q={config.ensemble_quantile:g}",
                                  None, ("ensemble", None)))
                    if rate == config.ablation_rate:
                        plans += [("sroc", label, None, ("sroc", c)) for label, c in variants]
                for name, params, kept, how in plans:
                    key = {**base, "method": method, "aug_factor": factor, "refinement": name, "params": params}
                    if how is not None and how[0] == "sroc" and how[1].rule == "chi2" and \
                            not method_spec(how[1].scorer or method).gaussian:
                        continue  # the chi-square rule needs a Gaussian scorer
                    mine.append(table.key_of(key))
                    if table.has(key):  # made by an earlier run of the same table
                        continue
                    t0 = time.perf_counter()
                    rounds = 0
                    if how is not None and how[0] == "sroc":
                        c = how[1]
                        scorer = c.scorer or method
                        fs_s = fs if scorer == method else (lambda tr, sc, _f=fit_score_fn(scorer, pool, factor):
                                                            _f(train_rows[tr], train_rows[sc]))
                        ref = sroc(fs_s, len(train_rows), c, _dims(scorer, pool))
                        kept, rounds = ref.kept, len(ref.rounds)
                    elif how is not None:
                        ref = ensemble_refine(fs, len(train_rows), config.ensemble_members,
                                              config.ensemble_quantile, seed=config.seed)
                        kept, rounds = ref.kept, len(ref.rounds)
                    refine_s = time.perf_counter() - t0
                    removed = np.setdiff1d(np.arange(len(train_rows)), kept)
                    auc, fit_s = evaluate(kept, factor, oracle=name == "oracle")
                    q = removal_quality(removed, truth) if name != "oracle" else \
                        {"removed": np.nan, "removed_defective": np.nan, "precision": np.nan, "recall": np.nan}
                    table.keep({**key, "ablation": params if (name == "sroc" and params != config.sroc.label()) else "",
                                "auroc": auc, "n_kept": len(kept), **q, "rounds": rounds,
                                "refine_seconds": refine_s, "fit_seconds": fit_s})
        bar.set_postfix_str(f"rate {rate:.1%} rep {rep}")
    moved_path = table.out.with_name(table.out.name + ".moved.csv")
    with atomic_path(moved_path) as tmp:
        pd.DataFrame(moved_log, columns=["category", "rate", "replicate", "file"]).to_csv(tmp, index=False)
    return mine


def recovery(df: pd.DataFrame) -> pd.DataFrame:
    """Per (category, method, factor, rate, refinement): mean AUROC, the AUROC recovered relative to
    the oracle ``(auc - none) / (oracle - none)`` (NaN when pollution cost nothing), precision, recall."""
    main = df[df["ablation"] == ""]
    key = ["category", "method", "aug_factor", "rate"]
    m = main.groupby(key + ["refinement"], as_index=False)[["auroc", "precision", "recall", "n_kept"]].mean()
    ref = m.pivot_table(index=key, columns="refinement", values="auroc").reset_index()
    m = m.merge(ref[key + ["oracle", "none"]], on=key)
    gap = m["oracle"] - m["none"]
    m["recovered"] = np.where(gap.abs() > 1e-9, (m["auroc"] - m["none"]) / gap.where(gap.abs() > 1e-9), np.nan)
    return m.drop(columns=["oracle", "none"])


def rate_table(df: pd.DataFrame, factor: int = 0, digits: int = 3) -> pd.DataFrame:
    """Mean AUROC per (method, refinement) and pollution rate (columns, in %), ablation rows left out."""
    d = df[(df["ablation"] == "") & (df["aug_factor"] == factor)]
    order = {r: i for i, r in enumerate(REFINEMENTS)}
    t = d.pivot_table(index=["method", "refinement"], columns="rate", values="auroc", aggfunc="mean")
    t = t.sort_index(key=lambda ix: ix.map(lambda v: order.get(v, v)) if ix.name == "refinement" else ix)
    t.columns = [f"{c * 100:g} %" for c in t.columns]
    return t.round(digits)


def removal_table(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Per (method, refinement, rate): images removed, precision and recall of the removal against the
    truly defective images, and the AUROC recovered relative to the oracle (1: all of the loss)."""
    rec = recovery(df)
    rec = rec[rec["refinement"].isin(["sroc", "ensemble"])]
    return rec.set_index(["method", "aug_factor", "refinement", "rate"])[
        ["auroc", "recovered", "precision", "recall", "n_kept"]].round(digits)


def ablation_table(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The SROC ablation at its rate: the default and each variant, per method (mean over replicates)."""
    d = df[df["refinement"] == "sroc"]
    rate = d.loc[d["ablation"] != "", "rate"].unique()
    if len(rate) == 0:
        return pd.DataFrame()
    d = d[d["rate"] == rate[0]]
    base = df[(df["rate"] == rate[0]) & (df["ablation"] == "") & df["refinement"].isin(["oracle", "none"])]
    ref = base.pivot_table(index=["method", "aug_factor"], columns="refinement", values="auroc").reset_index()
    d = d.assign(variant=np.where(d["ablation"] == "", "default (" + d["params"] + ")", d["ablation"]))
    t = d.groupby(["method", "aug_factor", "variant"], as_index=False)[
        ["auroc", "precision", "recall", "n_kept", "rounds"]].mean()
    t = t.merge(ref, on=["method", "aug_factor"])
    gap = t["oracle"] - t["none"]
    t["recovered"] = (t["auroc"] - t["none"]) / gap.where(gap.abs() > 1e-9)
    return t.set_index(["method", "variant"]).drop(columns=["aug_factor"]).round(digits)
