"""The study and the book runner on Dask: same numbers as serial, failures reported, bad schedulers refused."""

import dataclasses
import math
import operator
import time

import numpy as np
import pandas as pd
import pytest

from lowdata import LowdataError
from lowdata.scheduling import Runner, Task, check_workers, connect, run_tasks

TIMINGS = ["fit_seconds", "score_seconds"]


@pytest.fixture(scope="module")
def local2():
    runner = connect("local", workers=2, check=False)
    yield runner
    runner.close()


def _study(tmp_path, name, backbone, runner, **kw):
    from lowdata.data.elpv import load_elpv
    from lowdata.features.encode import cache_for
    from lowdata.experiments.study import run_study
    from lowdata.experiments.design import StudyConfig

    data = load_elpv("mono")  # a share of it: the same code paths, a fifth of the images to encode and score
    data = dataclasses.replace(data, train=data.train[:60], test=data.test[::5])
    config = StudyConfig(methods=["knn", "maha-emp", "maha-lw", "padim"], sizes=[5, 10], reps=2, factors=[0, 1],
                         augment_only=[1], seed=0, **kw)
    return run_study(data, backbone, cache_for(backbone, tmp_path / f"cache-{name}"), config,
                     tmp_path / f"{name}.parquet", progress=False, runner=runner)


def test_study_on_a_local_cluster_is_bit_identical_to_serial(lite0_small, tmp_path, local2):
    serial = _study(tmp_path, "serial", lite0_small, None)
    dask = _study(tmp_path, "dask", lite0_small, local2)  # its own cache: the workers encode everything again
    assert len(serial) == 4 * 2 * 2 * 3 and local2.workers == 2
    assert (tmp_path / "cache-dask").is_dir() and not (tmp_path / "dask.parquet.journal.jsonl").exists()
    pd.testing.assert_frame_equal(serial.drop(columns=TIMINGS), dask.drop(columns=TIMINGS), check_exact=True)
    assert serial["auroc"].between(0.3, 1.0).all()


def test_a_failed_fit_batch_is_reported_and_a_rerun_redoes_only_it(lite0_small, tmp_path, monkeypatch):
    import lowdata.experiments.study as study

    real = study.fit_jobs
    calls = []

    failed = []

    def flaky(plan, jobs, embeddings=None, on_row=None):  # PaDiM's batch fails the first time only
        calls.append([j[4] for j in jobs])
        if jobs[0][4] == "padim" and not failed:
            failed.append(True)
            raise RuntimeError("out of memory in PaDiM")
        return real(plan, jobs, embeddings, on_row)

    monkeypatch.setattr(study, "fit_jobs", flaky)
    inline = Runner("inline")  # the task path, run in this process
    with pytest.raises(LowdataError, match=r"elpv/mono: 1 of \d+ tasks did not finish \(elpv/mono fits padim .*"
                                           r"out of memory in PaDiM.*run again"):
        _study(tmp_path, "x", lite0_small, inline)
    journal = tmp_path / "x.parquet.journal.jsonl"
    assert len(journal.read_text().splitlines()) == 3 * 12  # every other method's fits were kept
    calls.clear()
    df = _study(tmp_path, "x", lite0_small, inline)
    assert calls == [["padim"] * 12] and len(df) == 48 and not journal.exists()
    monkeypatch.setattr(study, "fit_jobs", real)
    pd.testing.assert_frame_equal(df.drop(columns=TIMINGS),
                                  _study(tmp_path, "y", lite0_small, None).drop(columns=TIMINGS), check_exact=True)


@pytest.mark.parametrize("where", ["serial", "local"])
def test_failures_are_reported_and_the_rest_finishes(where, local2):
    from lowdata.inspection.inputs import collect_images

    runner = Runner("none") if where == "serial" else local2
    tasks = [Task("bad", collect_images, ("/no/such/folder",)),
             Task("good", math.sqrt, (16.0,)),
             Task("after bad", math.sqrt, (4.0,), after=("bad",)),
             Task("zero", operator.truediv, (1, 0)),
             Task("after good", operator.add, (1, 2), after=("good",))]
    seen = []
    res = run_tasks(runner, tasks, progress=False, on_result=lambda r: seen.append(r.name))
    by = {r.name: r for r in res}
    assert [r.name for r in res] == [t.name for t in tasks] and sorted(seen) == sorted(by)
    assert by["bad"].status == "failed" and "no such file or folder: /no/such/folder" in by["bad"].error
    assert by["good"].status == "done" and by["good"].value == 4.0 and by["after good"].value == 3
    assert by["after bad"].status == "skipped" and "bad" in by["after bad"].error
    assert by["zero"].status == "failed" and "ZeroDivisionError" in by["zero"].error


def test_unreachable_scheduler_is_a_clear_error_within_seconds():
    t0 = time.perf_counter()
    with pytest.raises(LowdataError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s"):
        connect("tcp://127.0.0.1:9", timeout=2)
    assert time.perf_counter() - t0 < 15
    with pytest.raises(LowdataError, match="unknown scheduler 'laptop'"):
        connect("laptop")


def test_workers_are_checked(local2, tmp_path):
    check_workers(local2, tmp_path / "shared-cache")  # made, writable: fine
    with pytest.raises(LowdataError, match=r"2 of 2 Dask worker\(s\) cannot run lowdata tasks: .*the cache folder "
                                           r"/proc/lowdata-cache cannot be written"):
        check_workers(local2, "/proc/lowdata-cache")

    class NoPackage:
        scheduler = "tcp://cluster:8786"

        class client:
            @staticmethod
            def run(*a, **k):
                raise ModuleNotFoundError("No module named 'lowdata'")

    with pytest.raises(LowdataError, match="a Dask worker of tcp://cluster:8786 lacks the lowdata package"):
        check_workers(NoPackage(), tmp_path)
    assert "dashboard http" in local2.describe() and "2 worker(s)" in local2.describe()


def test_book_notebooks_as_tasks_and_kept_when_unchanged(tiny_mvtec, tmp_path, local2, capsys):
    from lowdata.book.params import CATEGORY
    from lowdata.book.runner import run_category_notebooks
    from lowdata.data.roots import Target

    root = tmp_path / "book"
    params = {"backbone": "efficientnet-lite0", "input_size": 96, "methods": "knn,maha-lw", **CATEGORY.preset("default"),
              "sizes": "3,max", "reps": 1, "aug": "0", "sweep": "", "augment_only": "",
              "out_dir": str(tmp_path / "res"), "cache_dir": str(tmp_path / "cache"), "seed": 0}
    first = run_category_notebooks([Target("mvtec", "widget", tiny_mvtec)], root, params, progress=False, runner=local2)
    assert first[0]["status"] == "done" and not first[0]["reused"]
    page = root / "book" / "categories" / "mvtec-widget.ipynb"
    assert page.is_file() and "MVTec AD: widget" in page.read_text()
    again = run_category_notebooks([Target("mvtec", "widget", tiny_mvtec)], root, params, progress=False, runner=local2,
                                   previous={r["page"]: r for r in first})
    assert again[0]["reused"] and "unchanged since the last run" in capsys.readouterr().out
    bad = run_category_notebooks([Target("mvtec", "widget", tiny_mvtec)], root, {**params, "sizes": "0"}, progress=False,
                                 runner=local2, previous={r["page"]: r for r in first})
    assert bad[0]["status"] == "failed" and "sample size must be at least 1, got 0" in bad[0]["error"]
    np.testing.assert_equal(sorted(p.name for p in (root / "book" / "categories").iterdir()), ["mvtec-widget.ipynb"])


def test_local_workers_get_their_share_of_the_cores(local2):
    import os

    # Dask's default (1 thread) would make numpy's fits and the notebooks' kernels slower than serial
    per = max(1, len(os.sched_getaffinity(0)) // 2)
    got = local2.client.run(os.environ.get, "OPENBLAS_NUM_THREADS")
    assert set(got.values()) == {str(per)}


def test_study_command_with_an_unreachable_scheduler(capsys):
    from lowdata.cli import main

    t0 = time.perf_counter()
    assert main(["study", "--category", "mono", "--scheduler", "tcp://127.0.0.1:9", "--no-progress"]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 5 s" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 15  # before the backbone is loaded, no hang
