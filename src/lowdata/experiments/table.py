"""The results table of an experiment (the study, the pollution study, the automatic-augmentation validation),
one way for all three: :class:`ResultsTable`.

* **lock**: the table is locked while a run writes it (``<out>.lock``): a second run on the same table stops at
  once, naming the first;
* **journal**: every row is appended to ``<out>.journal.jsonl`` as soon as it is made, flushed and synced: a run
  killed anywhere (``kill -9`` included) loses at most the row being written;
* **keyed resume**: the rows of the earlier table and of a journal left by a killed run are read back; a row
  whose key (the columns that identify it, compared as text) is already there is not made again;
* **atomic write**: at the end the table (earlier rows, then this run's, the last of each key kept) is written
  atomically (Parquet with a CRC-32 per page, or CSV when ``out`` ends in ``.csv``) and the journal removed.

A damaged earlier table is set aside as ``<out>.damaged`` (its rows are made again); a table that is not
lowdata's (a user's own file at ``out``) stops the run, untouched.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from ..core.atomic import make_dirs, writing
from ..core.errors import LowdataError
from ..core.locks import exclusive_lock
from ..core.tables import DamagedTable, ForeignTable, write_table

#: the columns every results table of lowdata has (study, beyond, pollution, autoaug): a table without them is not ours
IDENTITY = ("source", "category", "backbone", "method")
RESULT_SUFFIXES = (".parquet", ".csv")


def results_path(folder: str | Path, source: str, category: str, backbone: str, kind: str = "study") -> Path:
    """Where a category's results table goes by default: ``<folder>/<kind>-<source>-<category>-<backbone>.parquet``."""
    return Path(folder) / f"{kind}-{source}-{category}-{backbone}.parquet"


def check_results_path(out: str | Path) -> Path:
    """A results table is a ``.parquet`` or ``.csv`` file (its suffix says which it is); checked before any work."""
    out = Path(out)
    if out.suffix not in RESULT_SUFFIXES:
        raise LowdataError(f"--out {out}: a results table is written as .parquet or .csv (the suffix says which), "
                           f"not {out.suffix or 'a file without a suffix'}")
    if out.is_dir():
        raise LowdataError(f"--out {out} is a folder: give a .parquet or .csv file")
    return out


def results_lock(out: Path):
    """The exclusive lock of a results table (``<out>.lock``): one run writes a table at a time."""
    return exclusive_lock(out.with_name(out.name + ".lock"), f"the results table {out}")


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal.jsonl")


def earlier_table(out: Path, read) -> pd.DataFrame | None:
    """The table a run resumes or replaces at ``out``, read by ``read``: ``None`` when there is none, or it was
    damaged (set aside, :func:`set_aside`); a foreign table (not lowdata's) stops the run, untouched."""
    if not out.exists():
        return None
    try:
        return read(out)
    except DamagedTable as exc:
        set_aside(out, exc)
        return None
    except ForeignTable as exc:
        raise LowdataError(f"--out {exc}; it is not touched: give another --out") from None


def set_aside(out: Path, exc: LowdataError) -> None:
    """A damaged results table renamed ``<out>.damaged`` (kept, not deleted) and said: its fits are made again."""
    aside, k = out.with_name(out.name + ".damaged"), 1
    while aside.exists():  # an earlier one is kept too
        aside, k = out.with_name(f"{out.name}.damaged.{k}"), k + 1
    with writing(aside, "set aside the damaged table as"):
        os.replace(out, aside)
    warnings.warn(f"{exc}: set aside as {aside.name}; its fits are made again", stacklevel=4)


def journal_rows(journal: Path) -> list[dict]:
    """The rows of a journal left by a run that was killed (none when there is no journal); a line cut by the
    kill is skipped: that row is simply made again."""
    rows = []
    if journal.exists():
        with open(journal) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


class ResultsTable:
    """The results table at ``out`` while a run writes it; a context manager (see the module docstring).

    ``columns``: the table's columns, in order; ``key``: the columns that identify a row; ``read``: reads an
    earlier table (:func:`lowdata.core.tables.read_table` with the columns that make it lowdata's); ``sort``: the
    columns the written table is sorted by (a stable sort: rows of a key keep the order they were made in);
    ``filled``: completes a row read back (an older table's missing columns), applied to earlier and journal
    rows alike. Inside the ``with``: :attr:`rows` (every row so far), :meth:`has`, :meth:`keep`; after it,
    :attr:`frame` is the table written."""

    def __init__(self, out: str | Path, columns: Sequence[str], key: Sequence[str],
                 read: Callable[[Path], pd.DataFrame], sort: Sequence[str] = (),
                 filled: Callable[[dict], dict] | None = None):
        self.out = check_results_path(out)
        self.columns, self.key, self.sort = list(columns), list(key), list(sort)
        self._read, self._filled = read, filled or (lambda row: row)
        self.journal = journal_path(self.out)
        self.rows: list[dict] = []
        self.frame: pd.DataFrame | None = None
        self._lock = self._jf = None

    def key_of(self, row: dict) -> tuple:
        """A row's key, as text (a value read back from Parquet, CSV or JSON compares the same)."""
        return tuple(str(row[k]) for k in self.key)

    def __enter__(self) -> "ResultsTable":
        make_dirs(self.out.parent)
        self._lock = results_lock(self.out)
        self._lock.__enter__()  # a second run on the same table stops here, naming this one
        try:
            old = earlier_table(self.out, self._read)
            rows = [] if old is None else old.to_dict("records")
            rows += journal_rows(self.journal)
            self.rows = [self._filled(r) for r in rows]
            self._keys = {self.key_of(r) for r in self.rows}
            with writing(self.journal, "write the journal"):
                self._jf = open(self.journal, "a")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def has(self, row: dict, complete: Callable[[dict], bool] | None = None) -> bool:
        """Whether a row of ``row``'s key is already in the table (and, with ``complete``, one for which
        ``complete`` holds: a row that lacks a metric registered after it was made is made again)."""
        k = self.key_of(row)
        if complete is None:
            return k in self._keys
        return any(self.key_of(r) == k and complete(r) for r in self.rows) if k in self._keys else False

    def done(self, complete: Callable[[dict], bool] | None = None) -> set[tuple]:
        """The keys of the rows already made (for which ``complete`` holds, if given)."""
        return {self.key_of(r) for r in self.rows if complete is None or complete(r)}

    def keep(self, row: dict) -> None:
        """``row`` journaled (flushed and synced: a crash loses at most the row being written) and kept."""
        with writing(self.journal, "write the journal"):
            self._jf.write(json.dumps(row) + "\n")
            self._jf.flush()
            os.fsync(self._jf.fileno())
        self.rows.append(row)
        self._keys.add(self.key_of(row))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._jf.close()
            if exc_type is None:
                df = pd.DataFrame(self.rows, columns=self.columns)
                df = df.drop_duplicates(subset=self.key, keep="last")
                if self.sort:
                    df = df.sort_values(self.sort, kind="stable")
                self.frame = df.reset_index(drop=True)
                write_table(self.frame, self.out)
                self.journal.unlink(missing_ok=True)
            elif self.journal.exists() and self.journal.stat().st_size == 0:
                self.journal.unlink(missing_ok=True)  # a journal that holds no row is not left behind
        finally:
            self._lock.__exit__(exc_type, exc, tb)

    def frame_where(self, values: dict) -> pd.DataFrame:
        """The rows of the written table whose ``values`` columns hold those values (compared as text)."""
        mine = pd.Series(True, index=self.frame.index)
        for column, value in values.items():
            mine &= self.frame[column].astype(str) == str(value)
        return self.frame[mine.to_numpy()].reset_index(drop=True)

    def frame_of(self, keys: Iterable[tuple]) -> pd.DataFrame:
        """The rows of the written table whose key is one of ``keys``."""
        keys = set(keys)
        mine = [self.key_of(r) in keys for r in self.frame.to_dict("records")]
        return self.frame[mine].reset_index(drop=True)
