"""What a reviewer checks: the embedded default run's figures, expected, and the command that verifies them.

``expected_default.csv`` (beside this module) holds the figures of one real ``make run`` of the embedded
default (ELPV mono and poly, EfficientNet-Lite0 at its default size, the ``default`` preset, seed 0):
our values of the paper's Tables 1, 5 and 7 on ELPV (:func:`figures`), under a header of ``# key: value``
lines saying which run made them (commit, date, command, minutes, the study's settings). The same seed
gives the same subsets and augmented copies, so a rerun on another machine differs only by the
network's floating-point order: :data:`TOLERANCE` (0.005) is generous.

``lowdata verify`` (``make verify``) compares a run's results with them and exits 1 if a figure is off
or missing; the reproduction page shows the same comparison.
"""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.atomic import atomic_path, check_new_file
from ..core.errors import LowdataError, printable, quoted
from .paper import compare

TOLERANCE = 0.005
#: the paper's tables whose ELPV values are the expected figures (AUC at the full training set; Table 7 with
#: and without augmentation)
TABLES = (1, 5, 7)
KEY = ["table", "group", "method", "aug_factor", "n_train"]
#: the settings of a run that must equal the expected run's for its figures to be comparable
SETTINGS = ("backbone", "input_size", "methods", "sizes", "reps", "aug", "sweep", "augment_only", "seed")


def figures(results: pd.DataFrame) -> pd.DataFrame:
    """Our values of :data:`TABLES` on ELPV (categories and their ``all`` row): table, group, method,
    augmentation factor, N and value, in a fixed order."""
    parts = []
    for number in TABLES:
        c = compare(number, results)
        c = c[(c["data"] == "elpv") & c["ours"].notna()]
        parts.append(c[KEY + ["ours"]].rename(columns={"ours": "value"}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=KEY + ["value"])
    out["aug_factor"] = out["aug_factor"].astype(int)
    out["n_train"] = out["n_train"].astype(str)
    return out.sort_values(KEY).reset_index(drop=True)


def read_expected(path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The expected figures and the record of the run that made them (``# key: value`` header lines)."""
    if path is None:
        packaged = resources.files("lowdata.book").joinpath("expected_default.csv")
        if not packaged.is_file():
            raise LowdataError("this copy of lowdata has no expected figures (lowdata/book/expected_default.csv)")
        text = packaged.read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise LowdataError(f"cannot read the expected figures {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise LowdataError(f"{path} is not a table of expected figures: it is not UTF-8 text") from None
    meta = {}
    lines = text.splitlines()
    for line in lines:
        if line.startswith("# ") and ": " in line:
            k, v = line[2:].split(": ", 1)
            meta[k.strip()] = v.strip()
    from io import StringIO

    where = path or "lowdata/book/expected_default.csv"
    try:
        df = pd.read_csv(StringIO(text), comment="#", dtype={"n_train": str, "value": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LowdataError(f"{where} is not a table of expected figures: {printable(' '.join(str(exc).split()))}") \
            from None
    if list(df.columns) != KEY + ["value"]:
        raise LowdataError(f"{where} has columns {quoted(list(df.columns))}, not {KEY + ['value']}")
    if df.empty:
        raise LowdataError(f"{where} has no expected figures")
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
    if len(bad):  # name the line: the table's rows are the file's lines that are neither blank nor comments
        rows = [i + 1 for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        line = rows[bad[0] + 1] if bad[0] + 1 < len(rows) else "?"
        raise LowdataError(f"{where}, line {line}: the expected value {quoted(df['value'].iloc[bad[0]])} is not a "
                           "finite number" + (f" (nor {len(bad) - 1} more)" if len(bad) > 1 else ""))
    df["value"] = values.astype(float)
    return df, meta


def write_expected(results: pd.DataFrame, path: str | Path, meta: dict, force: bool = False) -> pd.DataFrame:
    """Write this run's :func:`figures` as the expected ones, with ``meta`` as the header; an existing file is
    replaced only with ``force``. Written atomically."""
    path = check_new_file(path, "--write", force)
    fig = figures(results)
    if fig.empty:
        raise LowdataError("no ELPV results to take the expected figures from")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            for k, v in meta.items():
                f.write(f"# {k}: {' '.join(str(v).split())}\n")
            fig.to_csv(f, index=False, float_format="%.6f")
    return fig


def comparable(run: dict | None, meta: dict) -> list[str]:
    """Why ``run`` is not the expected run's setting (empty: it is): its settings against the recorded ones."""
    if not run:
        return ["no run record (the notebook was run by hand, not by `lowdata book`)"]
    params = run.get("params", {})
    out = []
    for k in SETTINGS:
        want = meta.get(k)
        if want is not None and str(params.get(k)) != want:
            out.append(f"{k} is {params.get(k)!r}, the expected run's {want!r}")
    return out


def check(results: pd.DataFrame, expected: pd.DataFrame | None = None, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Each expected figure beside this run's: expected, this run, diff and whether it is within ``tolerance``
    (a figure this run lacks is not)."""
    if expected is None:
        expected, _ = read_expected()
    ours = figures(results).rename(columns={"value": "this run"})
    df = expected.rename(columns={"value": "expected"}).merge(ours, on=KEY, how="left")
    df["diff"] = (df["this run"] - df["expected"]).round(6) + 0.0  # + 0.0: no "-0.0" shown
    df["within"] = (df["diff"].abs() <= tolerance + 1e-12) & df["this run"].notna()
    return df


def verdict(table: pd.DataFrame, tolerance: float = TOLERANCE) -> str:
    ok = int(table["within"].sum())
    missing = int(table["this run"].isna().sum())
    worst = table["diff"].abs().max()
    text = f"{ok} of {len(table)} expected figures within ±{tolerance:g}"
    if len(table) and not np.isnan(worst):
        text += f" (largest difference {worst:.4f})"
    if missing:
        text += f"; {missing} missing from this run"
    return text


def current_commit() -> str:
    """The checkout's commit (short), or ``unknown`` outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_results(results_dir: str | Path, run_path: str | Path) -> tuple[pd.DataFrame, dict]:
    """A book run's study tables (of its backbone and input size) and its run record (``{}`` if none)."""
    from .record import read_run
    from .summary import load_results

    results_dir, run_path = Path(results_dir), Path(run_path)
    if not results_dir.is_dir() or not any(results_dir.glob("study-*.parquet")):
        raise LowdataError(f"no study results in {printable(results_dir)}: run `make run` (or `lowdata book`) first")
    run = read_run(run_path) if run_path.is_file() else {}
    params = run.get("params", {})
    results = load_results(results_dir, params.get("backbone", "efficientnet-lite0"), params.get("input_size"),
                           run or None)
    return results, run


def record_expected(results_dir: str | Path, run_path: str | Path, path: str | Path,
                    force: bool = False) -> tuple[pd.DataFrame, dict]:
    """``lowdata verify --write``: a real book run's figures written as the expected ones, its record (commit,
    start, command, minutes, settings) as the header. Returns the figures and the record."""
    check_new_file(path, "--write", force)  # before any table is read
    results, run = run_results(results_dir, run_path)
    if not run:
        raise LowdataError(f"no run record {printable(run_path)}: the expected figures must come from a "
                           "`lowdata book` run")
    params = run.get("params", {})
    meta = {"made by": "lowdata verify --write, from a real `make run` of the embedded default",
            "commit": current_commit(), "started": run.get("started", ""), "command": run.get("command", ""),
            "minutes": f"{run.get('total_seconds', float('nan')) / 60:.1f}",
            **{k: str(params.get(k)) for k in SETTINGS}}
    return write_expected(results, path, meta, force=force), run


def verify_run(results_dir: str | Path, run_path: str | Path, expected: str | Path | None = None,
               tolerance: float = TOLERANCE) -> tuple[pd.DataFrame, dict, list[str]]:
    """``lowdata verify``: each expected figure beside the run's (:func:`check`), the expected run's record, and
    why the run is not the expected run's setting (empty: it is)."""
    if not tolerance > 0:
        raise LowdataError(f"--tolerance must be positive, got {tolerance}")
    results, run = run_results(results_dir, run_path)
    figures_expected, meta = read_expected(expected)
    return check(results, figures_expected, tolerance), meta, comparable(run, meta)


def expected_view(results: pd.DataFrame, run: dict | None):
    """The reproduction page's check: this run's figures beside the expected ones, and the verdict; when this
    run is not the expected run's setting (or no figures ship), says so instead of comparing."""
    from IPython.display import Markdown, display

    try:
        expected, meta = read_expected()
    except LowdataError as exc:
        return Markdown(f"*No expected figures: {exc}.*")
    made = (f"Expected: the `make run` started {meta.get('started', '?')} at commit `{meta.get('commit', '?')}`, "
            f"{meta.get('minutes', '?')} min on 2 CPU cores, from a cold cache.")
    why = comparable(run, meta)
    if why:
        display(Markdown(made + " This run is not that setting, so its figures are not compared: "
                         + "; ".join(why) + ". The expected figures:"))
        return expected
    table = check(results, expected)
    display(Markdown(made + f" **{'Verified' if table['within'].all() else 'Not verified'}**: {verdict(table)}."))
    return table.round(4)
