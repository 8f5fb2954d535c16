"""The study's design (paper section 4.3): the sample sizes, augmentation factors and replicates of a category's
fits, how each replicate's training subset is drawn (:func:`draw_subset`), the settings of a run
(:class:`StudyConfig`) and its fits (:class:`Job`, :func:`plan_jobs`).

Grid (:func:`size_grid`): 5 to 50 in steps of 5, then steps of 10, and always the category's full training set.
At the full size every replicate would draw the same set and every detector is deterministic, so one replicate
is fitted there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from ..core.errors import LowdataError
from ..detectors.registry import check_method, method_params, method_spec, params_for, params_key

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


def sizes_within(spec: str | int, n_pool: int, category: str) -> tuple[list[int], str]:
    """The sizes of ``spec`` a category of ``n_pool`` training images can take, and a note naming the others: a
    grid up to 100 (or a few-shot grid of 16) on a category of 20 images runs up to 20 and says so, so that a page
    never fails for a small category. ``auto`` is the paper's grid up to ``n_pool``; ``max`` is ``n_pool``."""
    spec = str(spec)
    if spec.strip() == "auto":
        return parse_sizes("auto", n_pool), ""
    wanted = parse_sizes(spec.replace("max", str(n_pool)), 10 ** 9)
    sizes = [n for n in wanted if n <= n_pool] or [n_pool]
    left = [n for n in wanted if n > n_pool]
    return sizes, (f"N = {', '.join(map(str, left))} left out: {category} has {n_pool} training images" if left else "")


def parse_test_aug(spec: str | None) -> list[int]:
    """``--test-aug K[,K...]``: numbers of test-time views, always with 0 (the image alone, what they are compared
    with); ``None``: ``[0]``. A value below 0, or only 0, is an error: the option asks for views."""
    if spec is None:
        return [0]
    ks = _parse_ints(spec, "--test-aug: a number of test-time views", 0)
    if not ks or max(ks) == 0:
        raise LowdataError(f"--test-aug {spec}: give a number of views of at least 1 (4 compares 4 views with none)")
    return sorted({0, *ks})


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
    #: test-time augmentation: each fit is scored once per value K, on each test image and K augmented views of
    #: it (the category's policy, seeded like the training copies), their scores averaged (0: the image alone)
    test_aug: list[int] = field(default_factory=lambda: [0])

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
        self.test_aug = sorted({_whole("test-time views", k, 0) for k in (self.test_aug or [0])})
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


class Job(NamedTuple):
    """One fit of the study: ``method`` on ``n`` images of replicate ``replicate``, with ``factor`` augmented
    copies of each (only the copies when ``only``: an augment-only run)."""

    n: int
    replicate: int
    factor: int
    only: bool
    method: str


def plan_jobs(config: StudyConfig, n_pool: int) -> list[Job]:
    """Every fit of a run, in order: by size, replicate (one at the full size), factor and method; with nested
    subsets, each (replicate, factor, method) series by growing ``N`` (fits that grow from the previous one)."""
    runs = [(f, False) for f in config.factors] + [(f, True) for f in config.augment_only]
    jobs = [Job(n, r, f, only, m) for n in config.sizes for r in range(1 if n == n_pool else config.reps)
            for f, only in runs for m in config.methods]
    if config.subsets == "nested":
        order = {run: i for i, run in enumerate(runs)}
        jobs.sort(key=lambda j: (j.replicate, order[(j.factor, j.only)], config.methods.index(j.method), j.n))
    return jobs
