"""Running the study and the book on Dask, from one laptop to a cluster.

``--scheduler`` picks where the work runs:

* ``local`` (default): a :class:`distributed.LocalCluster` sized to this machine (one worker process
  per two cores, at least one, each with one task thread and its share of the cores for numpy's and
  TensorFlow's threads: every task already uses several cores);
* ``tcp://HOST:PORT`` (or ``tls://``): an existing Dask cluster. Its workers need this lowdata
  version installed and **the same folders at the same paths** as this machine: the embedding cache
  (``--cache`` / ``$LOWDATA_CACHE``), the data, and for the book the repository and results folder.
  On a cluster that means a shared file system. Start workers with one task thread each and give
  their tasks the cores (``dask worker ADDRESS --nthreads 1`` with
  ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__OMP_NUM_THREADS=<cores>``, likewise ``OPENBLAS``):
  Dask's default limits numpy to one thread per worker. Embeddings are written atomically to the shared
  cache, so workers never encode an image twice and never read half a file;
* ``none``: a plain serial run in this process, the same task functions in the same order.

Tasks are natural units (:func:`run_tasks`): encoding a category (its originals, then one task per
augmented copy index), a batch of a category's fits, executing one notebook. A task that fails is
reported with its name and error; the other tasks finish; a task that depends on a failed one is
skipped and says why. Results are collected by the calling process, which journals them as they
arrive, so a re-run only redoes what is missing.

Before any task, :func:`connect` checks every worker: the lowdata version, and that the cache folder
exists there (or can be made) and is writable. An unreachable scheduler is an error within
``timeout`` seconds, not a hang.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .core.version import __version__
from .core.atomic import os_error_text
from .core.errors import LowdataError, one_line, printable
from .core.machine import usable_cpus
from .features.cache import default_cache_root

SCHEDULER_ENV = "LOWDATA_SCHEDULER"
CONNECT_TIMEOUT_S = 5.0


def default_workers() -> int:
    """One worker process per two cores (at least one)."""
    return max(1, usable_cpus() // 2)


@dataclass
class Task:
    """One unit of work: ``fn(*args, **kwargs)``, run after the tasks named in ``after``."""

    name: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    after: tuple[str, ...] = ()


@dataclass
class TaskResult:
    name: str
    status: str  # "done", "failed" or "skipped"
    value: Any = None
    error: str = ""
    seconds: float = 0.0


class Runner:
    """Where tasks run: this process (``client`` None) or a Dask cluster."""

    def __init__(self, scheduler: str, client=None, cluster=None):
        self.scheduler = scheduler
        self.client = client
        self.cluster = cluster

    @property
    def serial(self) -> bool:
        return self.client is None

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def describe(self) -> str:
        if self.client is None:
            return "serial (this process)"
        link = self.client.dashboard_link if self._has_dashboard() else "no dashboard (install bokeh)"
        where = "a LocalCluster" if self.cluster is not None else f"the cluster at {self.scheduler}"
        return f"Dask: {where} with {self.workers} worker(s); dashboard {link}"

    def _has_dashboard(self) -> bool:
        try:
            return bool(self.client.scheduler_info().get("services", {}).get("dashboard"))
        except Exception:  # pragma: no cover - an old scheduler
            return False

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quiet_dask_logs() -> None:
    import logging

    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.http.proxy", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)


def connect(scheduler: str | None = None, *, cache_dir: str | Path | None = None, workers: int | None = None,
            timeout: float = CONNECT_TIMEOUT_S, check: bool = True) -> Runner:
    """A :class:`Runner` for ``scheduler`` (``none``, ``local`` or an address; default ``$LOWDATA_SCHEDULER``
    or ``local``). The workers are checked (:func:`check_workers`) unless ``check`` is false."""
    scheduler = (scheduler or os.environ.get(SCHEDULER_ENV) or "local").strip()
    if scheduler == "none":
        return Runner("none")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise LowdataError("--scheduler local or an address needs Dask: pip install 'distributed' (or use "
                           "--scheduler none)") from None
    _quiet_dask_logs()
    if scheduler == "local":
        n = default_workers() if workers is None else int(workers)
        if n < 1:
            raise LowdataError(f"a local cluster needs at least 1 worker, got {workers}")
        import dask

        # Dask's nanny starts workers with OMP/MKL/OpenBLAS limited to 1 thread; our tasks (a notebook's
        # kernel, a batch of fits) are the only work of their worker, so each gets its share of the cores:
        # with 1 worker on 2 cores, numpy and the kernels it starts would otherwise run 27 % slower
        per = max(1, usable_cpus() // n)
        environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                   # a fixed trim threshold turns off glibc's dynamic mmap threshold: numpy's large temporaries
                   # would then be mapped and unmapped at each allocation
                   if k != "MALLOC_TRIM_THRESHOLD_"}
        environ.update({k: per for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=40)  # logging.ERROR
        runner = Runner("local", Client(cluster), cluster)
    elif "://" in scheduler:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise LowdataError(f"unknown scheduler address {scheduler!r}: expected tcp://HOST:PORT")
        t0 = time.perf_counter()
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise LowdataError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}). "
                               "Is it running (dask scheduler), and is the address right? Or use --scheduler local "
                               "or none") from None
        if not client.scheduler_info().get("workers"):
            client.close()
            raise LowdataError(f"the Dask scheduler at {scheduler} has no worker (after "
                               f"{time.perf_counter() - t0:.1f} s): start some with `dask worker {scheduler}`")
        runner = Runner(scheduler, client)
    else:
        raise LowdataError(f"unknown scheduler {scheduler!r}: choose local, none, or tcp://HOST:PORT")
    if check:
        try:
            check_workers(runner, cache_dir)
        except BaseException:
            runner.close()
            raise
    return runner


def probe_worker(cache_root: str | None, version: str) -> str:
    """Run on each worker: '' when it can run lowdata tasks, else what is missing."""
    problems = []
    if __version__ != version:
        problems.append(f"lowdata {__version__} is installed, not {version}")
    root = Path(cache_root) if cache_root else default_cache_root()
    if not root.is_absolute():
        problems.append(f"the cache folder {root} is relative: give an absolute --cache that every worker shares")
    else:
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            problems.append(f"the cache folder {root} cannot be written ({os_error_text(exc)})")
    return "; ".join(problems)


def check_workers(runner: Runner, cache_dir: str | Path | None = None) -> None:
    """Every worker must have this lowdata version and reach the cache folder: a clear error otherwise."""
    if runner.client is None:
        return
    root = str(Path(cache_dir).resolve()) if cache_dir is not None else str(default_cache_root().resolve())
    try:
        answers = runner.client.run(probe_worker, root, __version__)
    except Exception as exc:  # a worker that cannot unpickle lowdata's function has no lowdata
        text = f"{type(exc).__name__}: {exc}"
        if "lowdata" in text and ("No module" in text or "ModuleNotFound" in text):
            raise LowdataError(f"a Dask worker of {runner.scheduler} lacks the lowdata package ({text}): install "
                               "this repository on every worker (pip install -e .)") from None
        raise LowdataError(f"cannot check the Dask workers of {runner.scheduler}: {text}") from None
    bad = {w: a for w, a in answers.items() if a}
    if bad:
        lines = "; ".join(f"{w}: {a}" for w, a in sorted(bad.items()))
        raise LowdataError(f"{len(bad)} of {len(answers)} Dask worker(s) cannot run lowdata tasks: {lines}")


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, LowdataError):
        return str(exc)
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"the worker running it died ({exc}); out of memory?"
    return f"{name}: {exc}"


def _call(fn: Callable, args: tuple, kwargs: dict, *_after):
    """A task's body on a worker (``_after``: results of the tasks it waits for, unused), and the warnings it
    gave: the client says them, in lowdata's form, where the user sees them (not in a worker's log)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(*args, **kwargs)
    said = list(dict.fromkeys((str(w.message), w.category, w.filename, w.lineno) for w in caught))  # each once
    return value, said


def _say(message: str, category, filename: str, lineno: int) -> None:
    """A warning a worker gave, given again here, at its own place (file and line) on the worker."""
    try:
        warnings.warn_explicit(message, category, filename, lineno, module="lowdata.worker")
    except TypeError:  # a warning class whose constructor wants more than a message
        warnings.warn_explicit(f"{category.__name__}: {message}", UserWarning, filename, lineno,
                               module="lowdata.worker")


def run_tasks(runner: Runner, tasks: Sequence[Task], *, desc: str = "tasks", progress: bool = True,
              on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
    """Run ``tasks`` (serially in order, or on the cluster as their dependencies allow) and return one
    :class:`TaskResult` per task, in the given order. ``on_result`` is called in this process as each
    result arrives (e.g. to journal it). Failures do not stop the other tasks."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise LowdataError(f"task names must be unique: {names}")
    known = set(names)
    for t in tasks:
        missing = [a for a in t.after if a not in known]
        if missing:
            raise LowdataError(f"task {t.name!r} waits for unknown task(s) {missing}")
    results: dict[str, TaskResult] = {}
    bar = tqdm(total=len(tasks), desc=printable(desc), unit="task", disable=not progress or not tasks,
               mininterval=0.1 if sys.stderr.isatty() else 10.0)

    def finish(r: TaskResult) -> None:
        results[r.name] = r
        if r.status == "failed":
            tqdm.write(one_line(f"failed: {r.name}: {r.error}"), file=sys.stderr)
        elif r.status == "skipped":
            tqdm.write(one_line(f"skipped: {r.name}: {r.error}"), file=sys.stderr)
        if on_result is not None:
            on_result(r)
        bar.set_postfix_str(f"{r.name}: {r.status}", refresh=False)
        bar.update(1)

    with bar:
        if runner.client is None:
            for t in tasks:
                blocked = [a for a in t.after if results[a].status != "done"]
                if blocked:
                    finish(TaskResult(t.name, "skipped", error=f"{blocked[0]} {results[blocked[0]].status}"))
                    continue
                t0 = time.perf_counter()
                try:
                    value = t.fn(*t.args, **t.kwargs)
                    finish(TaskResult(t.name, "done", value, seconds=time.perf_counter() - t0))
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    if not isinstance(exc, LowdataError):
                        traceback.print_exc()
                    finish(TaskResult(t.name, "failed", error=_describe_error(exc),
                                      seconds=time.perf_counter() - t0))
        else:
            from distributed import as_completed

            client = runner.client
            futures, started = {}, {}
            for t in tasks:  # in order: a task's dependencies are submitted before it
                deps = [futures[a] for a in t.after]
                futures[t.name] = client.submit(_call, t.fn, t.args, t.kwargs, *deps, key=f"lowdata-{t.name}-"
                                                f"{os.getpid()}-{time.time_ns()}", pure=False, retries=0)
                started[t.name] = time.perf_counter()
            by_future = {f.key: name for name, f in futures.items()}
            order = {t.name: t for t in tasks}
            for fut in as_completed(list(futures.values())):
                name = by_future[fut.key]
                secs = time.perf_counter() - started[name]
                if fut.status == "finished":
                    value, said = fut.result()
                    for warning in said:
                        _say(*warning)
                    finish(TaskResult(name, "done", value, seconds=secs))
                    continue
                # a task whose dependency failed errs with the dependency's error: it was skipped, not run
                failed_dep = [a for a in order[name].after if futures[a].status != "finished"]
                if failed_dep:
                    finish(TaskResult(name, "skipped", error=f"{failed_dep[0]} failed", seconds=secs))
                elif fut.status == "cancelled":
                    finish(TaskResult(name, "failed", error="cancelled", seconds=secs))
                else:
                    finish(TaskResult(name, "failed", error=_describe_error(fut.exception()), seconds=secs))
    return [results[n] for n in names]
