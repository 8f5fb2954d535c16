"""The automatic augmentation search: a policy chosen for N good images and a detector, without any real defect.

**Fitness.** The N good images are split into ``K`` seeded folds (``K = min(folds, N)``). For fold ``k``, the
detector is fitted on the other folds' images and ``c`` augmented copies of each, made with the candidate
policy ``p``; it scores the fold's held-out good images ``G_k`` and the synthetic defects ``D_k`` made from
those same images (:mod:`lowdata.data.synthetic`: ``patch``, ``scar``, ``noise``, ``blob``, ``V`` variants
each). The fitness is the mean over folds of the AUROC of held-out good images against their defects,

.. math::  F(p) = \\frac{1}{K} \\sum_k \\frac{1}{|G_k| |D_k|} \\sum_{g \\in G_k} \\sum_{d \\in D_k}
           \\left( [s_k(d) > s_k(g)] + \\tfrac12 [s_k(d) = s_k(g)] \\right),

(``objective = "auroc"``), and ties of ``F`` are broken by the margin ``M(p) = \\frac1K \\sum_k (\\overline{\\log s_k(D_k)} -
\\overline{\\log s_k(G_k)})``: how far, in log score, the defects stand above the good images (scores are
positive distances for every detector here). A policy whose copies lie far from real good images widens
every held-out score (their distance to the training set grows) and lowers ``F``; one that adds plausible
variation tightens the good images' scores without hiding local defects, and raises it. Each row also
reports (not used to rank) ``copy_shift``: the median squared distance of a copy's pooled vector to its own
original, over the originals' median squared distance to their nearest other original (how far the copies
move, in units of the spacing of real good images).

**Graded defects and other objectives.** With ``grades`` (e.g. ``0.25, 0.5``), every defect is also made at
those strengths (:mod:`lowdata.data.synthetic`: the good image moved that share of the way to the defect), and
each candidate gets three fitnesses, all recorded: ``f_auroc`` (the AUROC above, full-strength defects only),
``f_graded`` (the same AUROC over the defects of every strength) and ``f_tpr`` (the share of the fold's defects,
every strength, scoring above every held-out good image of the fold: the detection rate at a false-positive rate
of zero on them); ``objective = "margin"`` ranks by the margin below instead. ``objective`` says which one ranks
the candidates (``fitness``). Full-strength defects stand
out for almost every candidate on a category like MVTec AD's bottle (the AUROC is 1 and ranks nothing); faint
ones keep apart the policies that tighten the good images' scores from those that widen them.

**What ranks by default, and why.** Measured on real defects (``lowdata fitness-check``: every candidate of
searches at N = 10 fitted and scored on the test set of MVTec AD's bottle and ELPV mono and poly, Mahalanobis-Ledoit
and PaDiM), the AUROC fitnesses (full-strength, graded, ``tpr``) do not rank policies as real defects do (Spearman
-0.28 to 0.19; on the bottle every candidate is near 1), while the **margin** does better (0.06 to 0.34 in five of
six cells, -0.08 for PaDiM on the bottle): ``objective = "margin"`` is the default. With 5 folds the winner of 32 noisy candidates is often no
better than the generic ``default`` policy on real defects, so by default (**prior** ``prior_z = 2``) the search
keeps ``default`` unless the winner's per-fold margins beat default's by 2 standard errors. The book's autoaug
chapter and its introduction give the figures.

**Budget.** ``budget`` candidates (:func:`lowdata.autoaug.space.sample_candidates`: no augmentation and the
generic ``default`` first, then random draws) go through successive halving: every candidate is scored with
``first_copies`` copies per image, the best ``1/eta`` of them again with ``eta`` times more copies, and so on
up to ``max_copies``; the best at the last rung wins. Copies are cached (:func:`lowdata.features.cache.entry_key`),
so a candidate that goes on encodes only its new copies, and a search run again encodes nothing. "No
augmentation" is fitted on the originals alone at every rung.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..core.errors import LowdataError, printable
from ..data.augment import AugmentPolicy, describe
from ..data.synthetic import GENERATORS, check_generators, check_grades, defect_sources
from ..detectors.inputs import stack_maps
from ..detectors.crossfit import folds_of
from ..detectors.registry import check_method, make_detector, method_spec
from ..features.encode import encode, source_key
from ..features.embeddings import Embeddings
from ..features.pool import FeaturePool, encode_augmented
from ..metrics import image_auroc
from .space import DEFAULT_SPACE, check_space, sample_candidates


#: the fitnesses a search can rank by (see the module docstring)
OBJECTIVES = ("auroc", "graded", "tpr", "margin")


def _whole(what: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise LowdataError(f"{what} must be a whole number of at least {least}, got {value!r}")
    return int(value)


@dataclass
class SearchConfig:
    """The search's settings (all recorded with its result)."""

    budget: int = 32  # candidate policies
    eta: int = 2  # successive halving: keep 1/eta of the candidates, with eta times more copies
    first_copies: int = 2  # copies per image at the first rung
    max_copies: int = 8  # copies per image at the last rung
    folds: int = 5  # K = min(folds, N)
    variants: int = 2  # synthetic defects per generator and held-out image
    generators: tuple[str, ...] = GENERATORS
    seed: int = 0  # candidates, folds, copies and defects
    grades: tuple[float, ...] = (1.0,)  # strengths of the synthetic defects (1: the generator's own)
    objective: str = "margin"  # which fitness ranks the candidates: one of OBJECTIVES (measured: see the docstring)
    prior_z: float = 2.0  # > 0: keep the generic default unless the winner beats it by z fold standard errors

    def validate(self) -> "SearchConfig":
        self.budget = _whole("the search budget (--budget)", self.budget, 1)
        self.eta = _whole("eta (--eta)", self.eta, 2)
        self.first_copies = _whole("the first rung's copies", self.first_copies, 1)
        self.max_copies = _whole("the last rung's copies", self.max_copies, self.first_copies)
        self.folds = _whole("the search's folds (--folds)", self.folds, 2)
        self.variants = _whole("the synthetic defects per generator", self.variants, 1)
        self.seed = _whole("the search seed", self.seed, 0)
        self.generators = check_generators(self.generators)
        self.grades = check_grades(self.grades)
        if self.objective not in OBJECTIVES:
            raise LowdataError(f"unknown search objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")
        if isinstance(self.prior_z, bool) or not isinstance(self.prior_z, (int, float)) or not 0 <= self.prior_z < 100:
            raise LowdataError(f"prior_z must be a number from 0 (no prior) to 100, got {self.prior_z!r}")
        if self.objective in ("graded", "tpr") and self.grades == (1.0,):
            raise LowdataError(f"the {self.objective} objective needs faint defects too: give defect grades "
                               "(e.g. 0.25,0.5)")
        return self

    def digest_fields(self) -> dict:
        """The settings as JSON-able fields; the grades and objective only where they are not the defaults, so
        that a search of the defaults keeps the identity it had before they existed."""
        d = {**asdict(self), "generators": list(self.generators), "grades": list(self.grades)}
        if d["grades"] == [1.0]:
            del d["grades"]
        if d["objective"] == "auroc":
            del d["objective"]
        if d["prior_z"] == 0:
            del d["prior_z"]
        return d

    def rungs(self) -> list[int]:
        """Copies per image at each rung: first_copies, times eta, ..., max_copies."""
        out, c = [], self.first_copies
        while c < self.max_copies:
            out.append(c)
            c *= self.eta
        return out + [self.max_copies]


def kept_note(config: dict) -> str:
    """What a search's recorded ``config`` says of its choice when the prior kept the default (else "")."""
    return (f" (the generic default kept: the best candidate did not beat it by {config['prior_z']:g} fold standard "
            "errors)") if config.get("kept_default") else ""


@dataclass
class SearchResult:
    """The chosen policy, every candidate's fitness at every rung it reached, and what the search cost."""

    best: AugmentPolicy
    table: pd.DataFrame
    method: str
    n_images: int
    folds: int
    seconds: float
    encode_seconds: float
    fit_seconds: float
    config: dict = field(default_factory=dict)

    def best_rows(self, k: int = 5) -> pd.DataFrame:
        """The last rung's ``k`` best candidates (ranked by fitness, then margin)."""
        last = self.table[self.table["rung"] == self.table["rung"].max()]
        return last.sort_values(["fitness", "margin"], ascending=False, kind="stable").head(k)

    def summary(self) -> dict:
        """JSON-able: what a model file or a policy search records."""
        top = self.best_rows(5)
        return {"method": self.method, "n_images": self.n_images, "folds": self.folds, "config": self.config,
                "candidates": int((self.table["rung"] == 0).sum()), "seconds": round(self.seconds, 2),
                "encode_seconds": round(self.encode_seconds, 2), "fit_seconds": round(self.fit_seconds, 2),
                "chosen": self.best.name, "fitness": float(self.table[self.table["digest"] == self.best.digest()]
                                                           ["fitness"].iloc[-1]),
                "top": [{"policy": r.policy, "transforms": r.transforms, "fitness": round(float(r.fitness), 4),
                         "margin": round(float(r.margin), 4), "copy_shift": round(float(r.copy_shift), 3)}
                        for r in top.itertuples()]}

    def format(self, k: int = 5) -> str:
        """A few lines: the chosen transforms and the fitness of the best few."""
        lines = [f"chosen: {self.best.name}: {describe(self.best)}{kept_note(self.config)}",
                 f"{self.method} on {self.n_images} good images, {self.folds} folds; {int((self.table['rung'] == 0).sum())} "
                 f"candidates, rungs of {', '.join(map(str, self.config.get('rungs', [])))} copies per image; "
                 f"{self.seconds:.1f} s (encoding {self.encode_seconds:.1f} s, fits {self.fit_seconds:.1f} s)",
                 f"best {k} at the last rung (fitness: held-out good images against their synthetic defects, "
                 "mean fold AUROC; margin: mean log-score gap; shift: how far copies move, in nearest-neighbour spacings "
                 "of the originals):"]
        for r in self.best_rows(k).itertuples():
            lines.append(f"  {r.fitness:.4f}  margin {r.margin:+.3f}  shift {r.copy_shift:5.2f}  {r.policy}: {r.transforms}")
        return "\n".join(lines)


def _fit_size(n: int, folds: int) -> int:
    k = min(folds, n)
    return n - math.ceil(n / k) if k >= 2 else 0


def fold_fitness(good: np.ndarray, bad: np.ndarray, full: np.ndarray) -> dict:
    """One fold's fitnesses (see the module docstring): held-out good images' scores ``good``, their synthetic
    defects' ``bad``, ``full`` marking the full-strength defects."""
    def auroc(b):
        return image_auroc(np.r_[np.zeros(len(good)), np.ones(len(b))], np.r_[good, b])
    margin = float(np.mean(np.log(np.maximum(bad[full], 1e-12))) - np.mean(np.log(np.maximum(good, 1e-12))))
    return {"auroc": auroc(bad[full]), "graded": auroc(bad), "tpr": float(np.mean(bad > np.max(good))),
            "margin": margin}


def check_search_images(n: int, folds: int, method: str) -> int:
    """The number of folds for ``n`` images (``min(folds, n)``), or one clear error when ``n`` images are too
    few: every fold holds out at least one image and fits ``method`` on the others."""
    least = method_spec(method).min_train
    if n >= 2 and _fit_size(n, folds) >= least:
        return min(folds, n)
    need = next(m for m in range(2, 10 ** 6) if _fit_size(m, folds) >= least)
    raise LowdataError(f"{n} good image(s) are too few for a policy search with {method} and {folds} folds: each "
                       f"fold holds one out and {method} needs {least} to fit; give at least {need} images")


def search_policy(paths: Sequence, method: str, backbone, cache, config: SearchConfig | None = None, *,
                  space: dict | None = None, hashes: Sequence[str] | None = None, progress: bool = True,
                  desc: str = "policy search", params: dict | None = None, label: str | None = None) -> SearchResult:
    """Choose an augmentation policy for the good images ``paths`` and ``method`` (fitted with the detector
    parameters ``params``; see the module docstring). ``label`` names the images in the feature packs
    (``elpv/mono``; see :func:`~lowdata.features.encode.encode`)."""
    t_start = time.perf_counter()
    config = (config or SearchConfig()).validate()
    check_method(method)
    space = check_space(DEFAULT_SPACE if space is None else space)
    paths = list(paths)
    hashes = [source_key(p) for p in paths] if hashes is None else list(hashes)
    n = len(paths)
    k = check_search_images(n, config.folds, method)
    spec = method_spec(method)
    maps_needed = spec.consumes == "maps"
    folds = folds_of(n, k, config.seed)

    t0 = time.perf_counter()
    originals = encode(backbone, paths, cache, keys=hashes, progress=progress, desc="search: good images",
                       maps=maps_needed, label=label)
    sources, keys, owner = defect_sources(paths, hashes, config.generators, config.variants, config.seed,
                                          backbone.preprocessing, config.grades)
    full = np.array([s.strength == 1.0 for s in sources])
    defects = encode(backbone, sources, cache, keys=keys, progress=progress, desc="search: synthetic defects",
                     maps=maps_needed, label=label)
    owner = np.asarray(owner)
    orig_maps = stack_maps(originals, 256) if maps_needed else None
    defect_pool = FeaturePool(list(defects.pooled), stack_maps(defects, 256) if maps_needed else None, len(defects), 0)
    encode_s = time.perf_counter() - t0
    x = originals.pooled_concat().astype(np.float64)
    gaps_nn = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(gaps_nn, np.inf)
    nn = float(np.median(gaps_nn.min(axis=1)))  # the originals' median squared distance to their nearest other

    candidates = sample_candidates(space, config.budget, config.seed)
    rungs = config.rungs()
    sizes, left = [], len(candidates)
    for _ in rungs:
        sizes.append(left)
        left = max(1, math.ceil(left / config.eta))
    bar = tqdm(total=sum(sizes), desc=printable(desc), unit="policy", disable=not progress, leave=False,
               mininterval=0.1 if sys.stderr.isatty() else 10.0)
    rows, alive, memo = [], list(range(len(candidates))), {}
    spent = {"encode": encode_s, "fit": 0.0}

    def evaluate(ci: int, rung: int, copies: int, record: bool = True):
        """Candidate ``ci`` with ``copies`` copies per image: its fitness, margin and per-fold values (a row of the
        table, with ``record``)."""
        pol = candidates[ci]
        factor = 0 if pol.is_identity() else copies
        t1 = time.perf_counter()
        if (pol.digest(), factor) in memo:
            fits, per_fold, shift = memo[(pol.digest(), factor)]
        else:
            copy_emb = encode_augmented(backbone, paths, hashes, cache, pol, factor, config.seed,
                                        progress=False, maps=maps_needed, label=label) if factor else []
            allp = Embeddings.concat([originals] + copy_emb)
            maps = None
            if maps_needed:
                maps = np.concatenate([orig_maps] + [stack_maps(e, 256) for e in copy_emb]) if copy_emb else orig_maps
            spent["encode"] += time.perf_counter() - t1
            t2 = time.perf_counter()
            pool = FeaturePool(list(allp.pooled), maps, n, factor)
            per_fold = []
            for j in range(k):
                train = np.flatnonzero(folds != j)
                held = np.flatnonzero(folds == j)
                det = make_detector(method, **(params or {})).fit(pool.take(spec.consumes, pool.rows_with_copies(train, factor)))
                d_rows = np.flatnonzero(np.isin(owner, held))
                good = det.anomaly_score(pool.take(spec.consumes, held))
                bad = det.anomaly_score(defect_pool.take(spec.consumes, d_rows))
                per_fold.append(fold_fitness(good, bad, full[d_rows]))
            fits = {f: float(np.mean([p[f] for p in per_fold])) for f in OBJECTIVES}
            shift = float(np.median([((e.pooled_concat() - x) ** 2).sum(1) for e in copy_emb]) / nn) \
                if copy_emb else 0.0
            memo[(pol.digest(), factor)] = (fits, per_fold, shift)
            spent["fit"] += time.perf_counter() - t2
        if record:
            rows.append({"rung": rung, "copies": factor, "policy": pol.name, "transforms": describe(pol),
                         "digest": pol.digest(), "fitness": fits[config.objective], "margin": fits["margin"],
                         **{f"f_{f}": v for f, v in fits.items() if f != "margin"}, "copy_shift": shift,
                         "fold_auroc": " ".join(f"{p['auroc']:.4f}" for p in per_fold),
                         "seconds": time.perf_counter() - t1})
        return fits[config.objective], fits["margin"], [p[config.objective] for p in per_fold]

    with bar:
        for rung, copies in enumerate(rungs):
            results = []
            for ci in alive:
                fitness, margin, _ = evaluate(ci, rung, copies)
                results.append((ci, fitness, margin))
                bar.update(1)
                best = max(results, key=lambda r: (r[1], r[2]))
                bar.set_postfix_str(f"copies {copies}, best {best[1]:.3f} ({candidates[best[0]].name})", refresh=False)
            results.sort(key=lambda r: (r[1], r[2]), reverse=True)  # stable: earlier candidates win exact ties
            keep = max(1, math.ceil(len(results) / config.eta))
            alive = [ci for ci, _, _ in results[:keep]] if rung < len(rungs) - 1 else [results[0][0]]
    prior = next((i for i, c in enumerate(candidates) if c.name == "default"), None)
    kept = False
    if config.prior_z > 0 and prior is not None and alive[0] != prior and not candidates[alive[0]].is_identity():
        # the generic default unless the winner beats it by more than the folds' noise, at the last rung
        *_, won = evaluate(alive[0], len(rungs) - 1, rungs[-1], record=False)  # its row is there
        *_, base = evaluate(prior, len(rungs) - 1, rungs[-1])
        gain = np.subtract(won, base)
        kept = bool(gain.mean() <= config.prior_z * gain.std(ddof=1) / math.sqrt(len(gain)))
        if kept:
            alive = [prior]
    encode_s, fit_s = spent["encode"], spent["fit"]
    table = pd.DataFrame(rows)
    cfg = {**asdict(config), "generators": list(config.generators), "grades": list(config.grades), "rungs": rungs,
           "kept_default": kept,
           "space": {f: list(v) for f, v in space.items()}}
    return SearchResult(candidates[alive[0]], table, method, n, k, time.perf_counter() - t_start, encode_s, fit_s, cfg)


def write_search(result: SearchResult, out: str | Path) -> tuple[Path, Path]:
    """The chosen policy as a JSON file that ``--policy`` reads (its fields only), and every candidate's
    fitness beside it (``<stem>.search.csv``); both written atomically."""
    import json

    from ..core.atomic import atomic_path

    out = Path(out)
    table = out.with_name(out.stem + ".search.csv")
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result.best.to_dict(), indent=2) + "\n", encoding="utf-8")
    with atomic_path(table) as tmp:
        result.table.to_csv(tmp, index=False)
    return out, table
