"""The book's runner: every notebook executed by papermill, then Jupyter Book 1.x.

:func:`build_book` runs every category notebook (``notebooks/category.ipynb``, once per category), the
pollution and workflow chapters' notebooks, then the summary notebooks (:data:`SUMMARY_NOTEBOOKS`) on all
results, then Jupyter Book 1.x, which renders the executed notebooks without executing anything. A page
the previous run made with the same template, parameters and package code is kept (:func:`notebook_digest`).
Every run leaves its record (command, settings, per-notebook status and timings) in
``book/results/run.json``. The parameters each notebook takes, and the presets, are
:mod:`lowdata.book.params`'.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..scheduling import Runner, Task, run_tasks
from ..core.errors import LowdataError
from ..core.quiet import verbose
from ..data.roots import DataRoot, Target, page_root
from ..data.sources import source_label
from .pages import REPO, finish_page, machine_paths, path_labels, relabel_files
from .params import SUMMARY, SUMMARY_NOTEBOOKS
from .tables import DIR_ENV, URL_ENV, page_tables
from .record import environment, read_run, write_run



#: the parts of a run record with a page per category
CHAPTERS = ("categories", "pollution", "workflow", "beyond", "backbones", "autoaug")


def _template(name: str) -> Path:
    return REPO / "notebooks" / f"{name}.ipynb"


def execute_notebook(name: str, page: Path, parameters: dict, cwd: Path, title: str | None = None,
                     live_stderr: bool = False, data_roots: dict | None = None) -> dict:
    """Execute ``notebooks/<name>.ipynb`` into ``page`` with papermill; the page keeps the outputs (and
    the error, if any). ``live_stderr``: the kernel's stderr (progress bars) is echoed as it comes; ``data_roots``
    (folder -> source): the run's data roots, shown on the page as their placeholders (``$LOWDATA_VISA_ROOT``).
    Returns status, error and seconds."""
    import papermill  # lazy: 0.4 s to import, and only executing a notebook needs it

    t0 = time.perf_counter()
    page.parent.mkdir(parents=True, exist_ok=True)
    folder, url = page_tables(cwd, page)  # the page's tables as CSV, linked under each (lowdata.book.tables)
    shutil.rmtree(folder, ignore_errors=True)
    before = {k: os.environ.get(k) for k in (DIR_ENV, URL_ENV)}
    os.environ.update({DIR_ENV: str(folder), URL_ENV: url})  # the kernel inherits them; one task per process
    try:
        # the kernel's own log (its "running over TCP without encryption" warning) only when asked for
        quiet = [] if verbose() else ["--IPKernelApp.log_level=ERROR"]
        papermill.execute_notebook(str(_template(name)), str(page), parameters=parameters, progress_bar=False,
                                   cwd=str(cwd), kernel_name="python3", extra_arguments=quiet,
                                   stderr_file=sys.stderr if live_stderr else None)
        status, why = "done", ""
    except papermill.PapermillExecutionError as exc:  # the executed notebook, with its error, is the page
        status, why = "failed", f"{exc.ename}: {exc.evalue}"
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if page.is_file():  # the injected parameters hidden, the title set, this machine's folders relabelled
        labels = path_labels(parameters, cwd, data_roots)
        finish_page(page, labels, title, why or None)
        relabel_files(folder, labels)
    return {"status": status, "error": why, "seconds": time.perf_counter() - t0, "page": str(page)}


def code_digest() -> str:
    """SHA-256 of the lowdata package's source files: a changed package re-executes every notebook."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def notebook_digest(template: str, params: dict) -> str:
    """What a notebook page depends on: its template, its parameters (progress aside) and the package code."""
    h = hashlib.sha256(_template(template).read_bytes())
    h.update(json.dumps({k: v for k, v in params.items() if k != "progress"}, sort_keys=True, default=str).encode())
    h.update(code_digest().encode())
    return h.hexdigest()


def run_notebooks(template: str, targets: list[Target], book_root: str | Path, params: dict,
                  title: str, subdir: str, progress: bool = True, runner=None,
                  previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/<template>.ipynb`` once per category (a :class:`~lowdata.data.roots.Target`: its source,
    name and root) into ``book/<subdir>/<source>-<category>.ipynb``,
    as tasks of ``runner`` (:mod:`lowdata.scheduling`; ``None``: serially here). Pages of categories not in
    ``targets`` are removed. A page that the ``previous`` run (page -> its report) executed successfully with
    the same template, parameters and package code is kept as it is, not executed again. ``title`` is
    formatted with ``source`` (its label) and ``category``. One report per target: status (``done`` or
    ``failed``: a study that failed on its page, or a task that failed), error, seconds, page, digest."""
    runner = runner or Runner("none")
    book_root = Path(book_root)
    out_dir = book_root / "book" / subdir
    wanted = {f"{t.source}-{t.category}.ipynb" for t in targets}
    for old in sorted(out_dir.glob("*.ipynb")):  # generated pages of categories not in this run
        if old.name not in wanted:
            old.unlink()
            shutil.rmtree(page_tables(book_root, old)[0], ignore_errors=True)
            print(f"removed the page of a category not in this run: {old}")
    # the notebooks' own progress bars go to this terminal when they cannot interleave: serially, or on a
    # single local worker (its output is this process's terminal)
    live = progress and (runner.serial or (runner.cluster is not None and runner.workers == 1))
    report, tasks = {}, []
    for target in targets:
        source, category = target.source, target.category
        page = out_dir / f"{source}-{category}.ipynb"
        p = {**params, "category": category, "data_root": page_root(target), "progress": live}
        digest = notebook_digest(template, p)
        before = (previous or {}).get(str(page))
        entry = {"source": source, "category": category, "page": str(page), "digest": digest}
        if before and before.get("status") == "done" and before.get("digest") == digest and page.is_file():
            report[(source, category)] = {**entry, "status": "done", "error": "", "seconds": 0.0, "reused": True}
            print(f"{template} {source}/{category}: unchanged since the last run, page kept")
            continue
        report[(source, category)] = entry
        tasks.append(Task(f"{template} {source}/{category}", execute_notebook, (template, page, p, book_root),
                          {"title": title.format(source=source_label(source), category=category),
                           "live_stderr": live, "data_roots": roots_of(targets)}))
    for t, r in zip(tasks, run_tasks(runner, tasks, desc=f"{template} notebooks", progress=progress)):
        key = tuple(t.name.split(" ", 1)[1].split("/", 1))
        if r.status == "done":
            report[key].update(r.value, reused=False)
        else:
            report[key].update(status="failed", error=r.error, seconds=r.seconds, reused=False)
    return [report[(t.source, t.category)] for t in targets]


def roots_of(targets: list[Target], roots: list[DataRoot] = ()) -> dict[str, str | None]:
    """Every data root of ``targets`` and ``roots`` (those given, their categories left out by ``--categories``
    too), with the source of its categories (how a page names it): ``None`` where they are of several sources or
    none ran (shown as ``$MVTEC_ROOT``, the variable read folder by folder), the root's own source if it has one."""
    out: dict[str, str | None] = {}
    for t in targets:
        if t.root is not None:
            key = str(t.root)
            out[key] = t.source if out.get(key, t.source) == t.source else None
    for r in roots:
        out.setdefault(str(r.path), r.source)
    return out


def run_category_notebooks(targets: list[Target], book_root: str | Path,
                           params: dict, progress: bool = True, runner=None, previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/category.ipynb`` with papermill once per target into
    ``<book_root>/book/categories/<source>-<category>.ipynb``; a failed study gets a page saying so."""
    return run_notebooks("category", targets, book_root, params, "{source}: {category}", "categories",
                         progress, runner, previous)


def heatmap_target(targets: list[Target]) -> Target | None:
    """The category of Figure 2: the paper's hazelnut if present, else the first MVTec AD category, else the
    first of another folder layout (they have defect masks to compare with), else the first one (ELPV)."""
    mvtec = [t for t in targets if t.source == "mvtec"]
    hazelnut = [t for t in mvtec if t.category == "hazelnut"]
    rooted = [t for t in targets if t.root is not None]
    return (hazelnut or mvtec or rooted or list(targets) or [None])[0]


def run_chapter_notebooks(template: str, targets: list[Target], book_root: str | Path,
                          params: dict, title: str, progress: bool = True, runner=None,
                          previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/<template>.ipynb`` once per category into ``book/<template>/<source>-<category>.ipynb``
    (the pollution and workflow chapters); see :func:`run_notebooks`."""
    return run_notebooks(template, targets, book_root, params, title, template, progress, runner, previous)


def run_pollution_notebooks(targets: list[Target], book_root: str | Path, params: dict,
                            progress: bool = True, runner=None, previous: dict | None = None) -> list[dict]:
    """Execute ``notebooks/pollution.ipynb`` once per category into ``book/pollution/<source>-<category>.ipynb``."""
    return run_chapter_notebooks("pollution", targets, book_root, params,
                                 "Polluted training sets: {source} {category}", progress, runner, previous)


def build_book(targets: list[Target], book_root: str | Path, params: dict,
               *, roots: list[DataRoot] = (), absent: list[str] = (), command: str = "", build: bool = True, progress: bool = True,
               pollution: dict | None = None, workflow: dict | None = None, beyond: dict | None = None,
               backbones: dict | None = None, autoaug: dict | None = None, runner=None, rerun: bool = False) -> dict:
    """Run every category notebook, the pollution notebooks (``pollution``: their settings, ``None``
    for none), the workflow notebooks (``workflow``: their settings, ``None`` for none), then the
    "Beyond the paper" notebooks (``beyond``: their settings, ``None`` for none), the backbone comparison
    (``backbones``: its settings, ``None`` for none), the notebooks choosing the
    augmentation automatically (``autoaug``: their settings, ``None`` for none), then the summary notebooks,
    then (``build``) Jupyter Book 1.x. Each target is read from its own root; ``roots`` are the data roots
    given (:class:`~lowdata.data.roots.DataRoot`), recorded and shown on every page as placeholders
    (``$LOWDATA_VISA_ROOT``). The per-category notebooks are tasks of
    ``runner`` (:func:`lowdata.scheduling.connect`; ``None``: serial, here): in parallel on a Dask cluster.
    A page the previous run made with the same template, parameters and code is kept, unless ``rerun``.
    Returns the run record, also written to ``<book_root>/book/results/run.json``."""
    book_root = Path(book_root).resolve()
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results_dir = book_root / "book" / "results"
    previous = {}
    if not rerun and (results_dir / "run.json").is_file():
        try:
            old = read_run(results_dir / "run.json")
            previous = {r["page"]: r for part in CHAPTERS
                        for r in old.get(part, [])
                        if isinstance(r, dict) and "page" in r}
        except (LowdataError, ValueError, KeyError, TypeError):
            previous = {}

    def show(part, reports):
        for r in reports:
            print(f"{part}{r['source']}/{r['category']}: {r['status']}"
                  + (" (unchanged, kept)" if r.get("reused") else f" in {r['seconds']:.0f} s")
                  + (f" ({r['error']})" if r["error"] else ""), flush=True)

    report = run_category_notebooks(targets, book_root, params, progress=progress, runner=runner,
                                    previous=previous)
    show("", report)
    shared = {k: params[k] for k in ("backbone", "input_size", "out_dir", "cache_dir", "seed")}
    done = [t for t, r in zip(targets, report) if r["status"] == "done"]
    report_p = run_pollution_notebooks(done if pollution is not None else [], book_root,
                                       {**(pollution or {}), **shared}, progress=progress, runner=runner,
                                       previous=previous)
    show("pollution ", report_p)
    report_w = run_chapter_notebooks("workflow", done if workflow is not None else [], book_root,
                                     {**(workflow or {}), **shared}, "Workflow: {source} {category}", progress,
                                     runner, previous)
    show("workflow ", report_w)
    report_b = run_chapter_notebooks("beyond", done if beyond is not None else [], book_root,
                                     {**(beyond or {}), **shared}, "Beyond the paper: {source} {category}", progress,
                                     runner, previous)
    show("beyond ", report_b)
    report_k = run_chapter_notebooks("backbones", done if backbones is not None else [], book_root,
                                     {**(backbones or {}), **shared}, "Which backbone? {source} {category}", progress,
                                     runner, previous)
    show("backbones ", report_k)
    report_a = run_chapter_notebooks("autoaug", done if autoaug is not None else [], book_root,
                                     {**(autoaug or {}), **shared}, "Choosing the augmentation automatically: {source} "
                                     "{category}", progress, runner, previous)
    show("autoaug ", report_a)
    run_file = results_dir / "run.json"
    run = {"command": command, "started": started, "params": params, "data_roots": [str(r) for r in roots], "categories": report,
           "pollution": report_p, "workflow": report_w, "beyond": report_b, "backbones": report_k, "autoaug": report_a,
           "absent": list(absent), "environment": environment(),
           "scheduler": "none" if runner is None else runner.describe(),
           "summaries": [], "categories_seconds": time.perf_counter() - t0}
    write_run(run_file, run)
    heat = heatmap_target(done)
    summary = SUMMARY.check({"results_dir": params["out_dir"], "run_file": str(run_file), "backbone": params["backbone"],
                             "input_size": params["input_size"], "cache_dir": params["cache_dir"], "seed": params["seed"],
                             "heat_source": heat[0] if heat else "", "heat_category": heat[1] if heat else "",
                             "data_root": None if heat is None or heat.root is None else str(heat.root)})
    for name in SUMMARY_NOTEBOOKS:
        if name == "reproduction":  # its page shows the record, with every timing so far
            run["summaries_seconds"] = sum(x["seconds"] for x in run["summaries"])
            write_run(run_file, run)
        r = execute_notebook(name, results_dir / f"{name}.ipynb", summary, book_root,
                             data_roots=roots_of(targets, roots))
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
        folders = [str(book_root), str(REPO), str(Path.home()), *(str(v) for k, v in params.items()
                   if k in ("out_dir", "cache_dir") and v), *roots_of(targets, roots)]
        run["machine_paths"] = [f"{f}: {around}" for f, around in machine_paths(book_root / "_build" / "html", folders)]
        for line in run["machine_paths"][:5]:
            print(f"lowdata: warning: a page shows a folder of this machine: {line}", file=sys.stderr)
    run["total_seconds"] = time.perf_counter() - t0
    write_run(run_file, run)
    return run
