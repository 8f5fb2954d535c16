"""Validating the automatic augmentation policy on real defects (the book's "Choosing the augmentation
automatically").

For one category, each (N, replicate) draws the study's training subset (:func:`lowdata.experiments.study.draw_subset`,
seeded by ``(seed, N, replicate)``) and, per detector, three fits of that subset with ``factor`` augmented
copies of each image: ``none`` (no copies), ``hand`` (the paper's Table 4 row of the category, or the generic
``default`` policy where Table 4 has none) and ``auto`` (the policy :func:`lowdata.autoaug.search.search_policy`
chooses on that subset alone, for that detector; the test set is never seen by the search). Each is scored on
the category's full test set: image AUROC, AP and F1-max.

Rows are journaled (``<out>.journal.jsonl``) as they come, so an interrupted run resumes; the table is written
atomically (Parquet, or CSV by suffix). The search's encodings are cached, so a resumed search costs its fits only.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..autoaug.search import SearchConfig, check_search_images, search_policy
from ..core.errors import LowdataError, printable
from ..data.augment import AugmentPolicy, describe, policy_for
from ..data.dataset import CategoryData
from ..detectors.inputs import MapRows
from ..detectors.registry import check_method, make_detector, method_spec, uses_maps
from ..features.encode import encode, source_key
from ..features.embeddings import Embeddings, map_rows
from ..features.pool import encode_augmented
from ..metrics import image_auroc, image_average_precision, image_f1_max
from ..core.tables import read_table
from .design import draw_subset
from .table import IDENTITY, ResultsTable

KINDS = ("none", "hand", "auto")
KEY = ["source", "category", "backbone", "method", "n_train", "replicate", "kind", "copies", "seed", "aug_seed",
       "search_digest", "n_pool", "n_test"]
COLUMNS = KEY[:6] + ["kind", "policy", "transforms", "policy_digest", "policy_fields", "aug_factor", "auroc", "ap", "f1_max",
                     "search_fitness", "search_seconds", "fit_seconds", "score_seconds", "seed", "aug_seed",
                     "search_seed", "budget", "search_digest", "copies", "n_pool", "n_test", "subset"]


@dataclass
class AutoAugConfig:
    methods: list[str] = field(default_factory=lambda: ["maha-lw"])
    sizes: list[int] = field(default_factory=lambda: [10])
    reps: int = 5
    factor: int = 10  # copies per image of the hand-made and the automatic policy
    seed: int = 0  # the training subsets (the study's)
    aug_seed: int = 0  # the evaluated fits' copies (the study's)
    search: SearchConfig = field(default_factory=SearchConfig)

    def validate(self) -> "AutoAugConfig":
        if not self.methods:
            raise LowdataError("no method given")
        for m in self.methods:
            check_method(m)
        for what, v, least in (("replicates", self.reps, 1), ("augmentation factor", self.factor, 1),
                               ("seed", self.seed, 0), ("augmentation seed", self.aug_seed, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise LowdataError(f"{what} must be a whole number of at least {least}, got {v!r}")
        if not self.sizes:
            raise LowdataError("no sample size given")
        for n in self.sizes:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise LowdataError(f"sample size must be a whole number of at least 1, got {n!r}")
        self.search.validate()
        return self

    def search_digest(self) -> str:
        """What identifies the search's settings in a row (a changed budget or seed is searched again)."""
        return hashlib.sha256(json.dumps(self.search.digest_fields(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ValidationPlan:
    """What a validation of the search on a category's real defects starts from (this module's and
    :mod:`lowdata.experiments.fitness`'): the test labels, the row fields every row shares, the training images'
    paths and cache keys, the test images' keys, and the (N, replicate, method) cells."""

    labels: np.ndarray
    base: dict
    train_paths: list
    hashes: list[str]
    test_keys: list[str]
    cells: list[tuple[int, int, str]]


def validation_plan(data: CategoryData, backbone, config: AutoAugConfig) -> ValidationPlan:
    """The checked :class:`ValidationPlan` of ``data``: every size within its training images, enough images for the
    search's folds, both classes in its test set (else one line saying which)."""
    n_pool = len(data.train)
    too_big = [n for n in config.sizes if n > n_pool]
    if too_big:
        raise LowdataError(f"sample size N={too_big[0]} is larger than the {n_pool} training images of {data.category}")
    for n in config.sizes:
        for m in config.methods:
            check_search_images(n, config.search.folds, m)
    labels = data.test_labels
    if len(np.unique(labels)) < 2:
        raise LowdataError(f"{data.category}: the test set needs both good and anomalous images for an AUROC")
    base = {"source": data.source, "category": data.category, "backbone": backbone.key, "n_pool": n_pool,
            "n_test": len(data.test), "seed": config.seed, "aug_seed": config.aug_seed,
            "search_seed": config.search.seed, "budget": config.search.budget, "search_digest": config.search_digest(),
            "copies": config.factor}
    train_paths = [s.path for s in data.train]
    cells = [(n, r, m) for n in config.sizes for r in range(1 if n == n_pool else config.reps) for m in config.methods]
    return ValidationPlan(labels, base, train_paths, [source_key(p) for p in train_paths],
                          [source_key(s.path) for s in data.test], cells)


def read_autoaug(path: str | Path) -> pd.DataFrame:
    """An autoaug results table (:func:`lowdata.core.tables.read_table`)."""
    return read_table(path, columns=IDENTITY + ("kind",), text=("source", "category", "backbone", "method", "kind",
                      "policy", "transforms", "policy_digest", "policy_fields", "search_digest", "subset"))


def run_autoaug(data: CategoryData, backbone, cache, config: AutoAugConfig, out: str | Path,
                progress: bool = True) -> pd.DataFrame:
    """Run (or resume) the validation of one category; returns this run's rows (see the module docstring)."""
    config.validate()
    table = ResultsTable(out, COLUMNS, KEY, read_autoaug, sort=["category", "method", "n_train", "replicate", "kind"])
    plan = validation_plan(data, backbone, config)
    n_pool, labels, base, cells = len(data.train), plan.labels, plan.base, plan.cells
    train_paths, hashes, test_keys = plan.train_paths, plan.hashes, plan.test_keys
    hand = policy_for(data.category)

    with table:  # locked: a second run on the same table stops at once, naming this one
        done = table.done()

        def key_of(n, r, m, kind):
            return table.key_of({**base, "method": m, "n_train": n, "replicate": r, "kind": kind})

        todo = [c for c in cells if not all(key_of(*c, k) in done for k in KINDS)]
        label = f"{data.source}/{data.category}"  # what the feature packs are of (lowdata cache lists and prunes)
        test = encode(backbone, [s.path for s in data.test], cache, keys=test_keys, progress=progress,
                      desc=f"{data.category} test", label=label)
        test_maps = None
        if uses_maps(m for _, _, m in todo):
            test_maps = map_rows(cache, test_keys)

        def cell_rows(n, r, m):
            """The rows of one (N, replicate, method) still missing, and the search's result."""
            out_rows = []
            idx = draw_subset(n_pool, n, config.seed, r)
            paths, keys = [train_paths[i] for i in idx], [hashes[i] for i in idx]
            t0 = time.perf_counter()
            found = search_policy(paths, m, backbone, cache, config.search, hashes=keys, progress=False, label=label)
            t_search = time.perf_counter() - t0
            maps = method_spec(m).consumes == "maps"  # a detector of pooled vectors: no maps kept on disk
            originals = encode(backbone, paths, cache, keys=keys, progress=False, maps=maps, label=label)
            for kind, pol in (("none", None), ("hand", hand), ("auto", found.best)):
                factor = 0 if pol is None or pol.is_identity() else config.factor
                if key_of(n, r, m, kind) in done:
                    continue
                copies = encode_augmented(backbone, paths, keys, cache, pol, factor, config.aug_seed,
                                          progress=False, maps=maps, label=label) if factor else []
                fit_set = Embeddings.concat([originals] + copies)
                det = make_detector(m)
                t1 = time.perf_counter()
                det.fit(MapRows(_maps(fit_set), np.arange(len(fit_set))) if det.consumes == "maps" else fit_set)
                t2 = time.perf_counter()
                scores = det.anomaly_score(test_maps if det.consumes == "maps" else test)
                t3 = time.perf_counter()
                # the policy's fitness at the last rung it reached (NaN: not among the candidates, as Table 4's)
                hit = found.table[found.table["digest"] == (pol or AugmentPolicy(name="none")).digest()]
                out_rows.append({
                    **base, "method": m, "n_train": int(n), "replicate": int(r), "kind": kind,
                    "policy": "none" if pol is None else pol.name,
                    "transforms": "no augmentation" if pol is None else describe(pol),
                    "policy_digest": "" if pol is None else pol.digest(),
                    "policy_fields": json.dumps((pol or AugmentPolicy(name="none")).to_dict()),
                    "aug_factor": int(factor),
                    "auroc": image_auroc(labels, scores), "ap": image_average_precision(labels, scores),
                    "f1_max": image_f1_max(labels, scores),
                    "search_fitness": float(hit["fitness"].iloc[-1]) if len(hit) else float("nan"),
                    "search_seconds": t_search if kind == "auto" else 0.0, "fit_seconds": t2 - t1,
                    "score_seconds": t3 - t2, "subset": " ".join(map(str, idx))})
            return out_rows, found

        bar = tqdm(total=len(todo), desc=printable(f"{data.category} auto vs hand"), unit="cell",
                   disable=not progress or not todo, mininterval=0.1 if sys.stderr.isatty() else 10.0)
        with bar:
            for n, r, m in todo:
                made, found = cell_rows(n, r, m)
                for row in made:
                    table.keep(row)
                bar.set_postfix_str(f"{m} N={n} r={r}: auto {describe(found.best)[:40]}", refresh=False)
                bar.update(1)
    return table.frame_where(base)


def _maps(emb: Embeddings) -> np.ndarray:
    from ..detectors.inputs import stack_maps

    return stack_maps(emb, 256)


def comparison(df: pd.DataFrame) -> pd.DataFrame:
    """Mean (and standard deviation over replicates) AUROC per category, method, N and policy kind, and how
    often auto beat, tied or lost to the hand-made policy."""
    if df.empty:
        return pd.DataFrame()
    g = df.pivot_table(index=["category", "method", "n_train", "replicate"], columns="kind", values="auroc")
    rows = []
    for (cat, m, n), sub in g.groupby(level=[0, 1, 2]):
        row = {"category": cat, "method": m, "N": int(n), "replicates": len(sub)}
        for kind in KINDS:
            if kind in sub:
                row[f"{kind} AUROC"] = sub[kind].mean()
                row[f"{kind} sd"] = sub[kind].std(ddof=1) if len(sub) > 1 else float("nan")
        if {"auto", "hand"} <= set(sub.columns):
            d = sub["auto"] - sub["hand"]
            row["auto - hand"] = d.mean()
            row["auto wins / ties / losses"] = f"{int((d > 1e-9).sum())} / {int((d.abs() <= 1e-9).sum())} / {int((d < -1e-9).sum())}"
        if {"auto", "none"} <= set(sub.columns):
            row["auto - none"] = (sub["auto"] - sub["none"]).mean()
        rows.append(row)
    return pd.DataFrame(rows)
