"""The sample-size study (paper section 4.3): how AUC depends on the number of training images.

For one category: every training and test image is encoded once (through the embedding cache),
and, for augmentation factor ``f``, ``f`` augmented copies of every training image (copy ``c`` of an
image depends only on the policy, the seed and ``c``; see :mod:`lowdata.data.augment`). Then for each
sample size ``N`` of the grid and each replicate ``r``, a training subset of ``N`` images is drawn
without replacement, seeded by ``(seed, N, r)``: the same subset for every method and factor, and
the same whatever other sizes are on the grid (``subsets="nested"``: the first ``N`` images of one
permutation per replicate, seeded by ``(seed, r)``, so that a replicate's subsets grow by adding
images; :mod:`lowdata.experiments.design`). Each (method, ``N``, ``r``, factor) is fitted on the
subset (plus the ``f`` copies of each of its images; only the copies for an *augment-only* run,
paper Figure 6) and scored on the full test set.

The grid of sizes, the subsets and the run's settings are :mod:`lowdata.experiments.design`; the fits are
:mod:`lowdata.experiments.fits`; the study's summary is :mod:`lowdata.book.study_report`.

Results are one row per fit (:func:`result_columns`): every registered metric (:data:`lowdata.metrics.METRICS`:
image AUROC, and the pixel AUROC of detectors that give maps where masks exist), fit and score seconds,
the subset's indices and every seed. The table is a :class:`lowdata.experiments.table.ResultsTable` (locked,
journaled row by row, written atomically): an interrupted run started again with the same ``out`` skips the
fits it already has (a fit that lacks a metric registered since is done again, so the new column is filled).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tqdm import tqdm

from ..scheduling import Task, run_tasks
from ..core.errors import LowdataError, printable
from ..core.tables import read_table
from ..data.augment import AugmentPolicy, policy_for
from ..data.dataset import CategoryData
from ..detectors.registry import method_spec, params_from_columns
from ..features.backbones import cached_backbone
from ..features.cache import EmbeddingCache, entry_key
from ..features.encode import cache_for, encode, source_key
from ..features.pool import augmented_copies, encode_augmented
from ..metrics import METRICS, applies
from .design import Job, StudyConfig, draw_subset, plan_jobs
from .fits import FitPlan, fit_jobs
from .table import IDENTITY, ResultsTable

_BEFORE = ["source", "category", "backbone", "method", "n_train", "replicate", "aug_factor", "augment_only", "test_aug",
           "n_fit", "n_pool", "n_test"]
_AFTER = ["auroc_by_type", "fit_seconds", "score_seconds", "seed", "aug_seed", "policy", "policy_digest", "pixel_size", "subsets",
          "params", "skipped", "subset"]

def result_columns() -> list[str]:
    """The results table's columns: what identifies a fit, every registered metric, timings and seeds."""
    return _BEFORE + list(METRICS) + _AFTER


COLUMNS = result_columns()  # with the package's own metrics
# what identifies a fit: a row with the same key is not fitted again when a run resumes
KEY = ["source", "category", "backbone", "method", "n_train", "replicate", "aug_factor", "augment_only", "test_aug", "seed",
       "aug_seed", "policy_digest", "n_pool", "n_test", "pixel_size", "subsets", "params"]
_TEXT = ["source", "category", "backbone", "method", "policy", "policy_digest", "subsets", "params", "skipped", "subset",
         "auroc_by_type"]
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
    parameters (a table written before the ``params`` column kept them in columns of their own: the detector's
    declarations say which, :func:`~lowdata.detectors.registry.params_from_columns`), not skipped."""
    row.setdefault("subsets", "independent")
    if row.get("test_aug") is None or (isinstance(row["test_aug"], float) and np.isnan(row["test_aug"])):
        row["test_aug"] = 0  # a table made before test-time augmentation
    if not isinstance(row.get("auroc_by_type"), str):  # older tables: not computed (a CSV reads '' as NaN)
        row["auroc_by_type"] = ""
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


def _batches(jobs: list[Job], methods: Sequence[str], parts: int) -> list[list]:
    """Each method's jobs in ``parts`` contiguous batches (a batch of a detector that consumes maps loads them once for its fits)."""
    out = []
    for m in methods:
        mine = [j for j in jobs if j.method == m]
        k = max(1, min(parts, len(mine)))
        size = -(-len(mine) // k) if mine else 0
        out += [mine[i:i + size] for i in range(0, len(mine), size)] if mine else []
    return out


def run_study(data: CategoryData, backbone, cache: EmbeddingCache, config: StudyConfig, out: str | Path,
              policy: AugmentPolicy | str | dict | None = None, progress: bool = True, runner=None) -> pd.DataFrame:
    """Run (or resume) the study of one category. ``out`` keeps every row it had (other seeds, backbones or
    categories too); the return value holds this run's rows only.

    ``runner`` (:func:`lowdata.scheduling.connect`): ``None`` or ``--scheduler none`` computes here, encoding
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
    # test-time views: keyed like training copies (an image's content, the policy, the seed, the view's number)
    view_keys = [[entry_key(h, digest, config.aug_seed, c) for h in test_keys] for c in range(1, max(config.test_aug) + 1)]

    jobs = plan_jobs(config, n_pool)

    base = {"source": data.source, "category": data.category, "backbone": backbone.key, "n_pool": n_pool,
            "n_test": len(data.test), "seed": config.seed, "aug_seed": config.aug_seed, "policy": pol.name,
            "policy_digest": digest, "pixel_size": config.pixel_size, "subsets": config.subsets}
    with table:  # locked: a second run on the same table stops at once, naming this one
        has_masks = any(s.mask_path is not None for s in data.test)
        done = table.done(complete=lambda r: _has_metrics(r, has_masks))
        todo = [j for j in jobs if any(table.key_of({**base, "method": j.method, "n_train": j.n, "replicate": j.replicate,
                                                     "aug_factor": j.factor, "augment_only": j.only, "test_aug": k,
                                                     "params": config.params_key(j.method)}) not in done
                                       for k in config.test_aug)]
        skips = {j: config.skip_reason(j.n, j.factor, j.only, j.method) for j in todo}
        skips = {j: why for j, why in skips.items() if why}
        todo = [j for j in todo if j not in skips]
        plan = FitPlan(data, cache, hashes, test_keys, copy_keys, config, base, view_keys)
        for ((n, r, f, only, m), why), k in itertools.product(skips.items(), config.test_aug):  # recorded, not fitted
            table.keep({**base, "method": m, "n_train": int(n), "replicate": int(r), "aug_factor": int(f),
                        "augment_only": bool(only), "test_aug": int(k), "n_fit": 0, **{k: float("nan") for k in METRICS},
                        "auroc_by_type": "", "fit_seconds": 0.0, "score_seconds": 0.0, "params": config.params_key(m),
                        "skipped": why,
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
    mine &= df["test_aug"].isin(config.test_aug).to_numpy()
    return df[mine].reset_index(drop=True)  # skipped fits included (fitted() leaves them out)


def _needs_maps(jobs) -> tuple[bool, bool]:
    """Whether the jobs read maps of the originals and test images, and of the copies (a detector of pooled
    vectors alone: no maps kept on disk)."""
    maps_jobs = [j for j in jobs if method_spec(j.method).consumes == "maps"]
    return bool(maps_jobs), any(j.factor > 0 for j in maps_jobs)


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
        views = encode_augmented(backbone, test_paths, plan.test_keys, cache, pol, len(plan.view_keys),
                                 config.aug_seed, progress, label=label, maps=maps)
        bar = tqdm(total=len(todo), desc=printable(f"{data.category} fits"), unit="fit", disable=not progress or not todo,
                   mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log gets a line every 10 s

        def each(row):
            keep(row)
            bar.set_postfix_str(f"{row['method']} N={row['n_train']} f={row['aug_factor']}"
                                f"{'(only)' if row['augment_only'] else ''} AUROC={row['auroc']:.3f}", refresh=False)
            if row["test_aug"] == config.test_aug[-1]:  # a fit's last row: one step per fit
                bar.update(1)

        with bar:
            fit_jobs(plan, todo, (train, test, copies, views), on_row=each, progress=progress)
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
    for c in range(1, len(plan.view_keys) + 1):
        sources = augmented_copies(backbone, test_paths, plan.test_keys, pol, c, plan.config.aug_seed)
        encodes.append(Task(f"{cat} encode test view {c}", encode_task, (*spec, sources, plan.view_keys[c - 1],
                                                                       f"test view {c}", cat, maps)))
    if todo:
        plan = FitPlan(plan.data, type(plan.cache)(root, plan.cache.dir.name, plan.cache.levels), plan.train_keys,
                       plan.test_keys, plan.copy_keys, plan.config, plan.base, plan.view_keys)
    fits = [Task(f"{cat} fits {b[0].method} {i + 1}", fit_jobs, (plan, b), after=tuple(t.name for t in encodes))
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


