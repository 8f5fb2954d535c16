"""The book's notebooks under nbval: re-executed on the tiny configuration of
``tests/notebooks/make_reference.py`` and compared, cell by cell, with the committed outputs
(timings, paths and addresses sanitized; cells tagged ``nbval-ignore-output`` not compared);
then the seeded study rows are compared with ``tests/notebooks/reference-results.csv``."""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

pytest.importorskip("nbval")
HERE = REPO / "tests" / "notebooks"
sys.path.insert(0, str(HERE))
from make_reference import KEY, NOTEBOOKS, POLLUTION_KEY  # noqa: E402


def test_notebooks_reproduce_their_committed_outputs(tmp_path):
    names = [f"{name}.ipynb" for _, name, _ in NOTEBOOKS]
    for n in names:
        shutil.copy(HERE / n, tmp_path / n)
    env = {**os.environ, "LOWDATA_CACHE": os.environ.get("LOWDATA_CACHE", str(REPO / "data" / "cache"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                           "--nbval-sanitize-with", str(HERE / "sanitize.cfg"), "--nbval-cell-timeout", "600",
                           *names], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    ours = pd.read_parquet(tmp_path / "nbval-results" / "study-elpv-mono-efficientnet-lite0.parquet")
    ref = pd.read_csv(HERE / "reference-results.csv")
    merged = ref.merge(ours[KEY + ["auroc"]], on=KEY, how="outer", suffixes=("_ref", ""), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    # the same seeds give the same subsets and copies; the tolerance only absorbs floating-point
    # differences of the network between CPUs
    pd.testing.assert_series_equal(merged["auroc"], merged["auroc_ref"], check_names=False, atol=1e-4, rtol=0)
    pol = pd.read_parquet(tmp_path / "nbval-results" / "pollution-elpv-mono-efficientnet-lite0.parquet")
    ref = pd.read_csv(HERE / "reference-pollution.csv", keep_default_na=False, na_values=[""])
    pol["params"] = pol["params"].fillna("")
    ref["params"] = ref["params"].fillna("")
    merged = ref.merge(pol[POLLUTION_KEY + ["auroc", "n_kept"]], on=POLLUTION_KEY, how="outer", suffixes=("_ref", ""),
                       indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert (merged["n_kept"] == merged["n_kept_ref"]).all()  # the same images removed
    pd.testing.assert_series_equal(merged["auroc"], merged["auroc_ref"], check_names=False, atol=1e-4, rtol=0)


@pytest.mark.parametrize("template,name", [(t, n) for t, n, _ in NOTEBOOKS])
def test_references_are_the_current_notebooks(template, name):
    """nbval executes the reference's own cells: they must be the template's, or the reference is stale
    (re-make it with tests/notebooks/make_reference.py)."""
    import nbformat

    def sources(path):
        nb = nbformat.read(path, as_version=4)
        # the source and the tags (nbval's markers are tags: nbval-ignore-output)
        return [(c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells
                if "injected-parameters" not in c.metadata.get("tags", [])]

    assert sources(HERE / f"{name}.ipynb") == sources(REPO / "notebooks" / f"{template}.ipynb"), \
        f"tests/notebooks/{name}.ipynb is stale: run tests/notebooks/make_reference.py"
