"""The sample-size study (paper section 4.3): how AUC depends on the number of training images.

For one category: every training and test image is encoded once (through the embedding cache),
and, for augmentation factor ``f``, ``f`` augmented copies of every training image (copy ``c`` of an
image depends only on the policy, the seed and ``c``; see :mod:`lowdata.data.augment`). Then for each
sample size ``N`` of the grid and each replicate ``r``, a training subset of ``N`` images is drawn
without replacement, seeded by ``(seed, N, r)``: the same subset for every method and factor, and
the same whatever other sizes are on the grid (``subsets="nested"``: the first ``N`` images of one
permutation per replicate, seeded by ``(seed, r)``, so that a replicate's subsets grow by adding
images; see :data:`SUBSETS`). Each (method, ``N``, ``r``, factor) is fitted on the
subset (plus the ``f`` copies of each of its images; only the copies for an *augment-only* run,
paper Figure 6) and scored on the full test set.

Grid (:func:`size_grid`): 5 to 50 in steps of 5, then steps of 10, and always the category's full
training set. At the full size every replicate would draw the same set and every detector is
deterministic, so one replicate is fitted there.

Results are one row per fit (:func:`result_columns`): every registered metric (:data:`lowdata.metrics.METRICS`:
image AUROC, and the pixel AUROC of detectors that give maps where masks exist), fit and score seconds,
the subset's indices and every seed. The table is a :class:`lowdata.experiments.table.ResultsTable` (locked,
journaled row by row, written atomically): an interrupted run started again with the same ``out`` skips the
fits it already has (a fit that lacks a metric registered since is done again, so the new column is filled).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tqdm import tqdm

from ..cluster import Task, run_tasks
from ..core.errors import LowdataError, printable
from ..core.tables import read_table
from ..data.augment import AugmentPolicy, policy_for
from ..data.dataset import CategoryData, load_masks
from ..detectors.registry import check_method, make_detector, method_params, method_spec, params_for, params_from_columns, \
    params_key
from ..features.backbones import cached_backbone
from ..features.cache import EmbeddingCache, entry_key
from ..features.encode import Embeddings, cache_for, encode, map_rows, read_embeddings, source_key
from ..features.pool import augmented_copies, encode_augmented
from ..metrics import METRICS, applies, auc_percent_area, fit_metrics
from .table import IDENTITY, ResultsTable

_BEFORE = ["source", "category", "backbone", "method", "n_train", "replicate", "aug_factor", "augment_only",
           "n_fit", "n_pool", "n_test"]
_AFTER = ["fit_seconds", "score_seconds", "seed", "aug_seed", "policy", "policy_digest", "pixel_size", "subsets",
          "params", "skipped", "subset"]

def result_columns() -> list[str]:
    """The results table's columns: what identifies a fit, every registered metric, timings and seeds."""
    return _BEFORE + list(METRICS) + _AFTER


COLUMNS = result_columns()  # with the package's own metrics
# what identifies a fit: a row with the same key is not fitted again when a run resumes
KEY = ["source", "category", "backbone", "method", "n_train", "replicate", "aug_factor", "augment_only", "seed",
       "aug_seed", "policy_digest", "n_pool", "n_test", "pixel_size", "subsets", "params"]
_TEXT = ["source", "category", "backbone", "method", "policy", "policy_digest", "subsets", "params", "skipped", "subset"]
#: how the training subsets of a replicate are drawn (``--subsets``): ``independent`` (the paper's reading,
#: the default), a fresh draw for every size; ``nested``, one seeded permutation per replicate whose first
#: ``N`` images are the subset of size ``N``, so each size's set holds the smaller sizes' sets
SUBSETS = ("independent", "nested")


def size_grid(n_max: int, small_step: int = 5, switch: int = 50, large_step: int = 10) -> list[int]:
    """5, 10, ..., 50, 60, 70, ... and always ``n_max`` (the paper's grid)."""
    if n_max < 1:
        raise LowdataError(f"no training images (N max = {n_max})")
    grid = [n for n in range(small_step, switch + 1, small_step) if n < n_max]
    grid += [n for n in range(switch + large_step, n_max, large_step)]
    return grid + [n_max]


def _parse_ints(spec: str | Sequence[int], what: str, least: int, aliases: dict[str, int] | None = None) -> list[int]:
    """Comma-separated whole numbers (or a sequence), each at least ``least``; ``aliases`` name values."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        text = str(item).strip()
        if aliases and text in aliases:
            out.append(aliases[text])
            continue
        try:
            value = int(text)
        except ValueError:
            alias = f" (or {', '.join(map(repr, aliases))})" if aliases else ""
            raise LowdataError(f"{what} {text!r} is not an integer{alias}") from None
        if value < least:
            raise LowdataError(f"{what} must be at least {least}, got {value}")
        out.append(value)
    return sorted(set(out))


def parse_sizes(spec: str | Sequence[int] | None, n_max: int) -> list[int]:
    """``None``/``"auto"``: :func:`size_grid`; else sizes like ``"5,10,max"`` (checked against ``n_max``)."""
    if spec is None or spec == "auto":
        return size_grid(n_max)
    sizes = _parse_ints(spec, "sample size", 1, {"max": n_max})
    if sizes and sizes[-1] > n_max:
        raise LowdataError(f"sample size N={sizes[-1]} is larger than the {n_max} training images available")
    return sizes


def parse_factors(spec: str | Sequence[int] | None) -> list[int]:
    """Augmentation factors like ``"0,10"``: non-negative integers."""
    return [] if spec is None or spec == "" else _parse_ints(spec, "augmentation factor", 0)


def check_subsets(scheme: str) -> str:
    """``scheme`` if it is one of :data:`SUBSETS`, else one clear error."""
    if scheme not in SUBSETS:
        raise LowdataError(f"--subsets {scheme!r}: choose independent (a fresh draw for every size, the default) "
                           "or nested (each replicate's smaller subsets inside its larger ones)")
    return scheme


def draw_subset(n_pool: int, n: int, seed: int, replicate: int, scheme: str = "independent") -> np.ndarray:
    """Sorted indices of ``n`` of ``n_pool`` training images, without replacement: ``independent``, seeded by
    (seed, n, replicate); ``nested``, the first ``n`` of one permutation seeded by (seed, replicate)."""
    check_subsets(scheme)
    if n > n_pool:
        raise LowdataError(f"sample size N={n} is larger than the {n_pool} training images available")
    if n == n_pool:
        return np.arange(n_pool)
    if scheme == "nested":
        return np.sort(np.random.default_rng([int(seed), int(replicate)]).permutation(n_pool)[:n])
    rng = np.random.default_rng([int(seed), int(n), int(replicate)])
    return np.sort(rng.choice(n_pool, size=n, replace=False))


@dataclass
class StudyConfig:
    methods: list[str]
    sizes: list[int]
    reps: int = 5
    factors: list[int] = field(default_factory=lambda: [0])
    augment_only: list[int] = field(default_factory=list)
    seed: int = 0
    aug_seed: int = 0
    pixel_size: int = 224
    subsets: str = "independent"  # how a replicate's subsets are drawn: see SUBSETS
    #: detector parameters by name (``--param NAME=VALUE``): each applies to the methods that declare it
    params: dict = field(default_factory=dict)

    def params_of(self, method: str) -> dict:
        """The parameters a fit of ``method`` is made with (those of :attr:`params` it declares), checked."""
        return params_for(method, self.params)

    def params_key(self, method: str) -> str:
        """The ``params`` text a fit of ``method`` records (part of the row's key; ``""`` at its defaults)."""
        return params_key(method, self.params_of(method))

    def skip_reason(self, n: int, factor: int, only: bool, method: str) -> str:
        """Why ``method`` cannot be fitted on ``N = n`` images with augmentation ``factor`` (``""``: it can)."""
        least = method_spec(method).min_train
        fit_size = n * (factor if only else factor + 1)
        if fit_size >= least:
            return ""
        return (f"{method} needs at least {least} training image{'s' if least > 1 else ''}; N={n} with augmentation "
                f"factor {factor}{' (augment only)' if only else ''} gives {fit_size}")

    def validate(self) -> None:
        for m in self.methods:
            check_method(m)
        if not self.methods:
            raise LowdataError("no method given")
        self.sizes = [_whole("sample size", n, 1) for n in self.sizes]
        self.factors = [_whole("augmentation factor", f, 0) for f in self.factors]
        self.augment_only = [_whole("augment-only factor", f, 1) for f in self.augment_only]
        self.reps = _whole("replicates", self.reps, 1)
        self.seed = _whole("seed", self.seed, 0)
        self.aug_seed = _whole("augmentation seed", self.aug_seed, 0)
        self.pixel_size = _whole("pixel size", self.pixel_size, 8)
        check_subsets(self.subsets)
        self.params = dict(self.params or {})
        method_params(self.methods, self.params)  # a parameter no method has, or a value out of its range
        if not self.factors and not self.augment_only:
            raise LowdataError("nothing to run: give at least one augmentation factor (0 = no augmentation)")
        # a (method, N, factor) that cannot be fitted (too few images) is recorded as skipped, with its reason


def _whole(what: str, value, least: int) -> int:
    """``value`` as an int >= ``least``, or an error naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or int(value) != value:
        raise LowdataError(f"{what} must be a whole number, got {value!r}")
    if value < least:
        raise LowdataError(f"{what} must be at least {least}, got {value}")
    return int(value)


def read_results(path: str | Path, skipped: bool = False) -> pd.DataFrame:
    """A results table (:func:`lowdata.core.tables.read_table`: a damaged or foreign file is one line naming
    it); the rows of fits that were skipped (too few images: no metric) only with ``skipped``
    (:func:`skipped_fits` lists them)."""
    df = read_table(path, columns=IDENTITY, text=_TEXT)
    return df if skipped else fitted(df)


def fitted(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of fits that were made (not skipped)."""
    if "skipped" not in df.columns:
        return df
    return df[df["skipped"].fillna("").astype(str) == ""].reset_index(drop=True)


def skipped_fits(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (category, method, N, factor) that was skipped, with the reason."""
    cols = ["category", "method", "n_train", "aug_factor", "augment_only", "skipped"]
    if "skipped" not in df.columns:
        return pd.DataFrame(columns=cols)
    s = df[df["skipped"].fillna("").astype(str) != ""]
    return s[cols].drop_duplicates().reset_index(drop=True)


def _filled(row: dict) -> dict:
    """A row read back: independent subsets in an older table (``--subsets`` came later), its detector's
    parameters (a table written before the ``params`` column kept them in columns of their own, such as
    ``coreset``), not skipped."""
    row.setdefault("subsets", "independent")
    if "params" not in row:
        row["params"] = params_from_columns(str(row["method"]), row)
    elif row["params"] is None or (isinstance(row["params"], float) and np.isnan(row["params"])):
        row["params"] = ""  # a CSV reads empty text as NaN
    if row.get("skipped") is None or (isinstance(row.get("skipped"), float) and np.isnan(row["skipped"])):
        row["skipped"] = ""
    return row


def _has_metrics(row: dict, has_masks: bool) -> bool:
    """Whether a kept row has every registered metric that applies to it (one registered after the row was
    computed is missing: the fit is done again)."""
    if row.get("skipped"):  # a fit that could not be made: nothing to compute
        return True
    try:
        det = method_spec(str(row["method"]))
    except LowdataError:  # a method not registered in this process: its row is kept as it is
        return True
    for m in METRICS.values():
        value = row.get(m.name)
        if applies(m, det.gives_maps, has_masks) and (value is None or not np.isfinite(value)):
            return False
    return True


@dataclass
class FitPlan:
    """What a batch of a category's fits needs, by reference to the cache (picklable: sent to workers)."""

    data: CategoryData
    cache: EmbeddingCache
    train_keys: list[str]
    test_keys: list[str]
    copy_keys: list[list[str]]  # per copy index 1..max factor, the keys of every training image's copy
    config: StudyConfig
    base: dict


def _fit_inputs(plan: FitPlan, jobs, embeddings=None) -> dict:
    """Embeddings (given, or read from the cache) and, when a job is PaDiM, the masks and the test and
    training maps, memory-mapped from their feature packs and aligned on read: the same inputs serial or
    distributed."""
    if embeddings is None:
        embeddings = (read_embeddings(plan.cache, plan.train_keys), read_embeddings(plan.cache, plan.test_keys),
                      [read_embeddings(plan.cache, k) for k in plan.copy_keys])
    train, test, copies = embeddings
    out = {"train": train, "test": test, "copies": copies, "test_maps": None, "masks": None, "pool_maps": None}
    maps_jobs = [j for j in jobs if method_spec(j[4]).consumes == "maps"]
    if maps_jobs:  # nothing to load when no job needs maps
        out["test_maps"] = map_rows(plan.cache, plan.test_keys)
        if any(s.mask_path is not None for s in plan.data.test):
            size = (plan.config.pixel_size, plan.config.pixel_size)
            out["masks"] = load_masks(plan.data.test, size)
        # the training pool: the originals, then each copy index the jobs use
        factor = max(j[2] for j in maps_jobs)
        out["pool_maps"] = map_rows(plan.cache, plan.train_keys + [k for c in range(factor) for k in plan.copy_keys[c]])
    return out


def fit_jobs(plan: FitPlan, jobs, embeddings=None, on_row=None, progress: bool = False) -> list[dict]:
    """The result rows of ``jobs`` (``(N, replicate, factor, augment_only, method)``): each fit on its
    seeded subset (and copies), scored on the test set. Serial runs pass their ``embeddings``; workers
    read them from the cache. ``on_row(row)`` is called after each fit."""
    config, base = plan.config, plan.base
    x = _fit_inputs(plan, jobs, embeddings)
    train, test, copies, test_maps, masks, pool_maps = (x[k] for k in ("train", "test", "copies", "test_maps", "masks",
                                                                      "pool_maps"))
    n_pool = len(plan.data.train)
    labels = plan.data.test_labels
    rows, chain = [], None  # chain: (series, subset, sums) of the last nested fit that can grow

    def picks_of(idx, f, only):
        return np.concatenate(([] if only else [idx]) + [(c + 1) * n_pool + idx for c in range(f)]).astype(np.intp)

    for n, r, f, only, m in jobs:
        idx = draw_subset(n_pool, n, config.seed, r, config.subsets)
        det = make_detector(m, **config.params_of(m))
        grow = config.subsets == "nested" and det.incremental
        if det.consumes == "maps":  # the same images, in the same order, from the feature packs
            fit_set = pool_maps.subset(picks_of(idx, f, only))
        else:
            fit_set = Embeddings.concat(([] if only else [train.subset(idx)])
                                        + [copies[c].subset(idx) for c in range(f)])
        t0 = time.perf_counter()
        if grow:  # the series (replicate, factor, method) goes on: its running sums grow by the new images
            series = (r, f, only, m)
            same = chain is not None and chain[0] == series and np.isin(chain[1], idx).all()
            added = pool_maps.subset(picks_of(np.setdiff1d(idx, chain[1]), f, only)) if same else None
            sums = det.fit_nested(fit_set, added, chain[2] if same else None)
            chain = (series, idx, sums) if sums is not None else None
        else:
            det.fit(fit_set)
        t1 = time.perf_counter()
        scores, maps = det.scores_and_maps(test_maps if det.consumes == "maps" else test)
        t2 = time.perf_counter()
        metrics = fit_metrics(labels, scores, masks=masks if det.gives_maps else None,
                              heatmaps=lambda: det.heatmaps(maps=maps, size=config.pixel_size, reference=det.smoothing_at))
        row = {**base, "method": m, "n_train": int(n), "replicate": int(r), "aug_factor": int(f),
               "augment_only": bool(only), "n_fit": len(fit_set), **metrics,
               "fit_seconds": t1 - t0, "score_seconds": t2 - t1, "params": config.params_key(m), "skipped": "",
               "subset": " ".join(map(str, idx))}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def encode_task(backbone_name: str, input_size: int, backbone_key: str, cache_root: str, sources, keys,
                desc: str, label: str | None = None, maps: bool = True) -> dict:
    """A worker's encoding task: ``sources`` (paths, or :class:`~lowdata.features.pool.AugmentedCopy`) into the
    shared cache."""
    bb = cached_backbone(backbone_name, input_size)
    if bb.key != backbone_key:
        raise LowdataError(f"this worker's {backbone_name} computes features {bb.key}, the run expects "
                           f"{backbone_key}: install the same weights on every worker")
    emb = encode(bb, list(sources), cache_for(bb, cache_root), keys=list(keys), progress=False, desc=desc,
                 label=label, maps=maps)
    return {"images": emb.stats.images, "encoded": emb.stats.encoded, "seconds": emb.stats.seconds}


def _batches(jobs: list, methods: Sequence[str], parts: int) -> list[list]:
    """Each method's jobs in ``parts`` contiguous batches (a PaDiM batch loads the maps once for its fits)."""
    out = []
    for m in methods:
        mine = [j for j in jobs if j[4] == m]
        k = max(1, min(parts, len(mine)))
        size = -(-len(mine) // k) if mine else 0
        out += [mine[i:i + size] for i in range(0, len(mine), size)] if mine else []
    return out


def run_study(data: CategoryData, backbone, cache: EmbeddingCache, config: StudyConfig, out: str | Path,
              policy: AugmentPolicy | str | dict | None = None, progress: bool = True, runner=None) -> pd.DataFrame:
    """Run (or resume) the study of one category. ``out`` keeps every row it had (other seeds, backbones or
    categories too); the return value holds this run's rows only.

    ``runner`` (:func:`lowdata.cluster.connect`): ``None`` or ``--scheduler none`` computes here, encoding
    and fitting in one pipelined pass; any other runner splits the work into tasks: encoding (train, test,
    then one task per copy index) and the fits in batches, run on its workers through the same cache. Both
    give the same rows, bit for bit (the timings aside). The table is locked while the run lasts
    (``<out>.lock``): a second run on it stops at once, naming the first."""
    config.validate()
    table = ResultsTable(out, result_columns(), KEY, lambda p: read_results(p, skipped=True), filled=_filled,
                         sort=["category", "method", "aug_factor", "augment_only", "n_train", "replicate"])
    n_pool = len(data.train)
    if n_pool < 1 or len(data.test) < 1:
        raise LowdataError(f"{data.source}/{data.category}: {n_pool} training and {len(data.test)} test images")
    too_big = [n for n in config.sizes if n > n_pool]
    if too_big:
        raise LowdataError(f"sample size N={too_big[0]} is larger than the {n_pool} training images of "
                           f"{data.category}")
    labels = data.test_labels
    if len(np.unique(labels)) < 2:
        raise LowdataError(f"{data.category}: the test set needs both good and anomalous images for an AUROC")
    pol = policy_for(data.category, policy)
    digest = pol.digest()

    train_paths = [s.path for s in data.train]
    test_paths = [s.path for s in data.test]
    hashes = [source_key(p) for p in train_paths]
    test_keys = [source_key(p) for p in test_paths]
    max_factor = max(config.factors + config.augment_only + [0])
    copy_keys = [[entry_key(h, digest, config.aug_seed, c) for h in hashes] for c in range(1, max_factor + 1)]

    runs = [(f, False) for f in config.factors] + [(f, True) for f in config.augment_only]
    jobs = []
    for n in config.sizes:
        for r in range(1 if n == n_pool else config.reps):
            for f, only in runs:
                for m in config.methods:
                    jobs.append((n, r, f, only, m))
    if config.subsets == "nested":  # each (replicate, factor, method) series by growing N: fits that grow
        order = {run: i for i, run in enumerate(runs)}
        jobs.sort(key=lambda j: (j[1], order[(j[2], j[3])], config.methods.index(j[4]), j[0]))

    base = {"source": data.source, "category": data.category, "backbone": backbone.key, "n_pool": n_pool,
            "n_test": len(data.test), "seed": config.seed, "aug_seed": config.aug_seed, "policy": pol.name,
            "policy_digest": digest, "pixel_size": config.pixel_size, "subsets": config.subsets}
    with table:  # locked: a second run on the same table stops at once, naming this one
        has_masks = any(s.mask_path is not None for s in data.test)
        done = table.done(complete=lambda r: _has_metrics(r, has_masks))
        todo = [j for j in jobs if table.key_of({**base, "method": j[4], "n_train": j[0], "replicate": j[1],
                                                 "aug_factor": j[2], "augment_only": j[3],
                                                 "params": config.params_key(j[4])}) not in done]
        skips = {j: config.skip_reason(j[0], j[2], j[3], j[4]) for j in todo}
        skips = {j: why for j, why in skips.items() if why}
        todo = [j for j in todo if j not in skips]
        plan = FitPlan(data, cache, hashes, test_keys, copy_keys, config, base)
        for (n, r, f, only, m), why in skips.items():  # recorded, never fitted: no metric, the reason
            table.keep({**base, "method": m, "n_train": int(n), "replicate": int(r), "aug_factor": int(f),
                        "augment_only": bool(only), "n_fit": 0, **{k: float("nan") for k in METRICS},
                        "fit_seconds": 0.0, "score_seconds": 0.0, "params": config.params_key(m), "skipped": why,
                        "subset": " ".join(map(str, draw_subset(n_pool, n, config.seed, r, config.subsets)))})
        if skips and progress:
            for why in dict.fromkeys(skips.values()):
                print(f"{data.category}: skipped: {why}", file=sys.stderr)
        _compute(plan, todo, backbone, train_paths, test_paths, pol, max_factor, runner, table.keep, progress)
    df = table.frame
    mine = np.ones(len(df), bool)  # rows of other runs kept in the same file (other seeds, backbones...) stay out
    for column, value in base.items():
        mine &= (df[column] == value).to_numpy()
    expected = {m: config.params_key(m) for m in config.methods}  # fits of other parameters stay out
    mine &= np.array([p == expected.get(m, "") for m, p in zip(df["method"], df["params"])], bool)
    return df[mine].reset_index(drop=True)  # skipped fits included (fitted() leaves them out)


def _needs_maps(jobs) -> tuple[bool, bool]:
    """Whether the jobs read maps of the originals and test images, and of the copies (a detector of pooled
    vectors alone: no maps kept on disk)."""
    maps_jobs = [j for j in jobs if method_spec(j[4]).consumes == "maps"]
    return bool(maps_jobs), any(j[2] > 0 for j in maps_jobs)


def _compute(plan, todo, backbone, train_paths, test_paths, pol, max_factor, runner, keep, progress) -> None:
    """Encode and fit the missing rows ``todo``, giving each row to ``keep`` as it is done: here, in one
    pipelined pass, or on a Dask runner's workers."""
    cache, config, data, hashes = plan.cache, plan.config, plan.data, plan.train_keys
    if runner is None or runner.scheduler == "none":
        label = f"{data.source}/{data.category}"
        maps, copy_maps = _needs_maps(todo)
        train = encode(backbone, train_paths, cache, keys=hashes, progress=progress, desc=f"{data.category} train",
                       label=label, maps=maps)
        test = encode(backbone, test_paths, cache, keys=plan.test_keys, progress=progress, label=label,
                      desc=f"{data.category} test", maps=maps)
        copies = encode_augmented(backbone, train_paths, hashes, cache, pol, max_factor, config.aug_seed, progress,
                                  label=label, maps=copy_maps)
        bar = tqdm(total=len(todo), desc=printable(f"{data.category} fits"), unit="fit", disable=not progress or not todo,
                   mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log gets a line every 10 s

        def each(row):
            keep(row)
            bar.set_postfix_str(f"{row['method']} N={row['n_train']} f={row['aug_factor']}"
                                f"{'(only)' if row['augment_only'] else ''} AUROC={row['auroc']:.3f}", refresh=False)
            bar.update(1)

        with bar:
            fit_jobs(plan, todo, (train, test, copies), on_row=each, progress=progress)
    else:
        _run_distributed(plan, todo, backbone, train_paths, test_paths, pol, max_factor, runner, keep, progress)


def _run_distributed(plan: FitPlan, todo, backbone, train_paths, test_paths, pol, max_factor, runner, keep,
                     progress) -> None:
    """The study's tasks on a Dask runner: encoding (originals, one task per copy index), then the fits in
    batches; each batch's rows are journaled here as it arrives. A failed task is an error at the end,
    after the other tasks' rows are kept (a re-run only redoes what is missing)."""
    cat = f"{plan.data.source}/{plan.data.category}"
    root = str(Path(plan.cache.root).resolve())
    spec = (backbone.name, backbone.input_size, backbone.key, root)
    maps, copy_maps = _needs_maps(todo)
    encodes = [Task(f"{cat} encode train", encode_task, (*spec, train_paths, plan.train_keys, "train", cat, maps)),
               Task(f"{cat} encode test", encode_task, (*spec, test_paths, plan.test_keys, "test", cat, maps))]
    for c in range(1, max_factor + 1):
        sources = augmented_copies(backbone, train_paths, plan.train_keys, pol, c, plan.config.aug_seed)
        encodes.append(Task(f"{cat} encode copy {c}", encode_task, (*spec, sources, plan.copy_keys[c - 1], f"copy {c}",
                                                                  cat, copy_maps)))
    if todo:
        plan = FitPlan(plan.data, type(plan.cache)(root, plan.cache.dir.name, plan.cache.levels), plan.train_keys,
                       plan.test_keys, plan.copy_keys, plan.config, plan.base)
    fits = [Task(f"{cat} fits {b[0][4]} {i + 1}", fit_jobs, (plan, b), after=tuple(t.name for t in encodes))
            for i, b in enumerate(_batches(todo, plan.config.methods, runner.workers))]

    def arrived(r):
        if r.status == "done" and isinstance(r.value, list):
            for row in r.value:
                keep(row)

    results = run_tasks(runner, encodes + fits, desc=f"{plan.data.category} tasks", progress=progress,
                        on_result=arrived)
    bad = [r for r in results if r.status != "done"]
    if bad:
        raise LowdataError(f"{cat}: {len(bad)} of {len(results)} tasks did not finish ("
                           + "; ".join(f"{r.name}: {r.status}, {r.error}" for r in bad[:3])
                           + ("; ..." if len(bad) > 3 else "") + "). The finished fits are kept: run again to redo "
                           "the rest")


def summarize(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per (category, method, augmentation): AUROC at the full training set, and the AUC-percent area."""
    out = {}
    df = fitted(df)
    group = ["category", "aug_factor", "augment_only", "method"]
    rows = []
    for (cat, f, only, m), g in df.groupby(group, sort=True):
        n_max = int(g["n_pool"].max())  # the category's full training set, whether or not it was run
        curve = g.groupby("n_train")["auroc"].mean()
        full = n_max in curve.index  # without the full size there is no AUC at N max and no area
        rows.append({"category": cat, "aug": f"{f}{' only' if only else ''}", "method": m,
                     "auroc_max_n": curve.loc[n_max] if full else float("nan"),
                     "area": auc_percent_area(curve.index, curve.values, n_max) if full else float("nan"),
                     "n_max": n_max, "sizes": len(curve), "fits": len(g), "fit_s_mean": g["fit_seconds"].mean()})
    table = pd.DataFrame(rows)
    if table.empty:
        return {"table": table}
    out["table"] = table
    out["auroc_max_n"] = table.pivot_table(index=["category", "aug"], columns="method", values="auroc_max_n")
    out["area"] = table.pivot_table(index=["category", "aug"], columns="method", values="area")
    return out


def format_summary(df: pd.DataFrame) -> str:
    """One screen: AUROC at the full training set and the area under the AUC-percent curve."""
    s = summarize(df)
    skips = skipped_fits(df)
    df = fitted(df)
    if s["table"].empty:
        return "no results" + "".join(f"\nskipped: {r.skipped}" for r in skips.itertuples())
    lines = [f"skipped ({len(skips)}): {r.skipped}" for r in skips.itertuples()]
    if s["table"]["auroc_max_n"].isna().any() and not s["auroc_max_n"].empty:  # some categories lack N max
        lines += ["(NaN: the sizes run do not include the full training set, so there is no AUC at N max and no area)"]
    mixed = [c for c in ("seed", "aug_seed", "policy_digest", "subsets") if c in df.columns]
    if df.groupby("category")[mixed].nunique().max().max() > 1:
        lines += ["(these rows mix several seeds, policies or subset schemes; their AUCs are averaged together)"]
    lines += [f"{len(df)} fits; fit time {df['fit_seconds'].sum():.1f} s, score time {df['score_seconds'].sum():.1f} s"]
    if s["auroc_max_n"].empty:  # no size ran at the full set: the largest one that did run, said as such
        top = df[df["n_train"] == df.groupby("category")["n_train"].transform("max")]
        sizes = ", ".join(f"{c} N={n} of {p}" for c, n, p in
                          top[["category", "n_train", "n_pool"]].drop_duplicates().itertuples(index=False))
        lines += ["", f"Image AUROC at the largest size run ({sizes}; not the full training set, so no AUROC "
                  "at N max):", top.pivot_table(index=["category", "aug_factor"], columns="method",
                                               values="auroc").round(3).to_string()]
    else:
        lines += ["", "Image AUROC at the full training set (N max):", s["auroc_max_n"].round(3).to_string()]
    if (s["table"]["sizes"] > 1).any() and s["area"].empty:
        lines += ["", "(no area under the AUC-percent curve: it is relative to the full training set, not run)"]
    elif (s["table"]["sizes"] > 1).any():
        lines += ["", "Area under the AUC-percent curve:", s["area"].round(3).to_string()]
    else:
        lines += ["", "(one sample size only: no AUC-percent curve; run more --sizes for its area)"]
    if df["pixel_auroc"].notna().any():
        pix = df[df["n_train"] == df["n_pool"]].dropna(subset=["pixel_auroc"])
        keys = ["category", "aug_factor", "augment_only", "method"]
        pix = pix.groupby(keys)[[c for c in ("pixel_auroc", "aupro") if c in pix.columns]].mean()
        lines += ["", "Localization at N max (pixel AUROC, AUPRO):", pix.round(3).to_string()]
    return "\n".join(lines)
