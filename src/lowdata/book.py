"""What the book's notebooks call: checked parameters and one category's study.

``notebooks/category.ipynb`` is executed by papermill once per category; its parameters arrive as
plain values, so :func:`category_params` checks each one's type and value first and fails with one
clear message naming the parameter (the notebook stops at its first cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import LowdataError

_PARAMS = {"data_root": (str, type(None)), "category": (str,), "backbone": (str,), "input_size": (int, type(None)),
           "methods": (str,), "sizes": (str, int), "reps": (int,), "aug": (str, int), "out_dir": (str,),
           "cache_dir": (str, type(None)), "seed": (int,)}


@dataclass
class CategoryParams:
    data_root: str | None
    category: str
    backbone: str
    input_size: int | None
    methods: str
    sizes: str  # "auto" or e.g. "5,10,max" (a single int is accepted)
    reps: int
    aug: str  # e.g. "0,10" (a single int is accepted)
    out_dir: str
    cache_dir: str | None
    seed: int

    @property
    def source(self) -> str:
        return "elpv" if self.data_root is None else "mvtec"

    @property
    def out(self) -> Path:
        return Path(self.out_dir) / f"study-{self.source}-{self.category}-{self.backbone}.parquet"


def category_params(**values) -> CategoryParams:
    """The notebook's parameters, checked: a wrong type or an unknown name raises :class:`LowdataError`."""
    from .backbones import BACKBONES
    from .study import StudyConfig, parse_factors

    unknown = sorted(set(values) - set(_PARAMS))
    if unknown:
        raise LowdataError(f"unknown notebook parameter {unknown[0]!r}; known: {', '.join(_PARAMS)}")
    missing = sorted(set(_PARAMS) - set(values))
    if missing:
        raise LowdataError(f"notebook parameter {missing[0]!r} is missing")
    for name, types in _PARAMS.items():
        v = values[name]
        if not isinstance(v, types) or isinstance(v, bool):
            want = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise LowdataError(f"notebook parameter {name} must be {want}, got {v!r} ({type(v).__name__})")
    if values["backbone"] not in BACKBONES:
        raise LowdataError(f"unknown backbone {values['backbone']!r}; choose from {', '.join(BACKBONES)}")
    # methods, factors, replicates and seed: the study's own checks, before anything slow
    StudyConfig(methods=[m.strip() for m in values["methods"].split(",")], sizes=[], reps=values["reps"],
                factors=parse_factors(str(values["aug"])), seed=values["seed"]).validate()
    values["sizes"], values["aug"] = str(values["sizes"]), str(values["aug"])  # papermill -p aug 0 gives an int
    return CategoryParams(**values)


def run_category(p: CategoryParams, progress: bool = False) -> pd.DataFrame:
    """Run (or resume) the study of ``p.category``; returns this run's rows."""
    from .backbones import load_backbone
    from .dataset import load_category
    from .encode import cache_for
    from .study import StudyConfig, parse_factors, parse_sizes, run_study

    data = load_category(p.source, p.category, root=p.data_root)
    config = StudyConfig(methods=[m.strip() for m in p.methods.split(",")], sizes=parse_sizes(p.sizes, len(data.train)),
                         reps=p.reps, factors=parse_factors(p.aug), seed=p.seed)
    config.validate()
    backbone = load_backbone(p.backbone, p.input_size)
    return run_study(data, backbone, cache_for(backbone, p.cache_dir), config, p.out, progress=progress)


def run_category_notebooks(targets: list[tuple[str, str]], data_root: str | Path | None, book_root: str | Path,
                           params: dict, progress: bool = True) -> list[dict]:
    """Execute ``notebooks/category.ipynb`` with papermill once per target into
    ``<book_root>/book/categories/<source>-<category>.ipynb``; a failed study gets a page saying so."""
    import papermill
    from tqdm.auto import tqdm

    book_root = Path(book_root)
    template = Path(__file__).resolve().parents[2] / "notebooks" / "category.ipynb"
    out_dir = book_root / "book" / "categories"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = []
    for source, category in tqdm(targets, desc="category notebooks", unit="nb", disable=not progress):
        page = out_dir / f"{source}-{category}.ipynb"
        p = {**params, "category": category, "data_root": None if source == "elpv" else str(data_root)}
        t0 = __import__("time").perf_counter()
        try:
            papermill.execute_notebook(str(template), str(page), parameters=p, progress_bar=False,
                                       cwd=str(book_root), kernel_name="python3")
            status, why = "done", ""
        except papermill.PapermillExecutionError as exc:  # the executed notebook, with its error, is the page
            status, why = "failed", f"{exc.ename}: {exc.evalue}"
        report.append({"source": source, "category": category, "status": status, "error": why,
                       "seconds": __import__("time").perf_counter() - t0, "page": str(page)})
    return report
