"""Every table lowdata reads back (results, expected figures, cache needs) goes through :func:`read_table`.

A table is a ``.parquet`` file (written with a CRC-32 per page, checked when read) or a ``.csv`` file. What
can be wrong with one is said in one line naming it, never as the reader library's exception:

* **damaged** (:class:`DamagedTable`): truncated, random bytes, text in a ``.parquet``, a broken CSV, a
  page whose checksum does not match;
* **foreign** (:class:`ForeignTable`): a readable table without the columns lowdata writes (a user's own
  ``results.parquet``); a caller that would write to it leaves it untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from .atomic import atomic_path, os_error_text
from .errors import LowdataError, printable


class DamagedTable(LowdataError):
    """A table whose bytes are not what was written (a page checksum, or the file's structure)."""


class ForeignTable(LowdataError):
    """A readable table that lacks the columns lowdata writes: not lowdata's."""


def _damaged(path: Path, what: str, why: BaseException) -> DamagedTable:
    text = printable(" ".join(str(why).split())[:200]) or type(why).__name__
    return DamagedTable(f"the {what} {path} is damaged ({text})")


def read_parquet_checked(path: str | Path, what: str = "results table") -> pd.DataFrame:
    """A Parquet table, its pages checked against their CRC-32 (:func:`write_table` writes them)."""
    try:
        return pd.read_parquet(path, page_checksum_verification=True)
    except OSError as exc:
        if exc.errno is not None:  # the system's error (permission denied, an I/O error): not the table's bytes
            raise LowdataError(f"cannot read the {what} {path}: {os_error_text(exc)}") from None
        raise _damaged(Path(path), what, exc) from None
    except (ValueError, TypeError, IndexError, KeyError, NotImplementedError) as exc:  # ArrowInvalid and kin
        raise _damaged(Path(path), what, exc) from None
    except Exception as exc:  # pyarrow's other errors (ArrowCapacityError, ...) derive from ArrowException only
        if type(exc).__module__.startswith("pyarrow"):
            raise _damaged(Path(path), what, exc) from None
        raise


def read_table(path: str | Path, columns: Iterable[str] = (), text: Iterable[str] = (),
               what: str = "results table") -> pd.DataFrame:
    """The table at ``path`` (``.csv``: the ``text`` columns kept as text, so that a category "01" stays "01"),
    with at least ``columns``; :class:`DamagedTable` or :class:`ForeignTable` naming the file otherwise."""
    path = Path(path)
    if not path.exists():
        raise LowdataError(f"{what} not found: {path}")
    if not path.is_file():
        raise LowdataError(f"the {what} {path} is not a file")
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path, dtype={c: str for c in text})
        except OSError as exc:
            raise LowdataError(f"cannot read the {what} {path}: {os_error_text(exc)}") from None
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            if not _header_has(path, columns):  # a user's own broken CSV is not ours to set aside
                raise ForeignTable(f"{path} is not a lowdata {what}: it cannot be read as a table "
                                   f"({printable(type(exc).__name__)})") from None
            raise _damaged(path, what, exc) from None
    else:
        df = read_parquet_checked(path, what)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ForeignTable(f"{path} is not a lowdata {what}: it lacks the column(s) "
                           f"{', '.join(printable(c) for c in missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return df


def _header_has(path: Path, columns: Iterable[str]) -> bool:
    """Whether the first line of the CSV ``path`` names ``columns`` (a table lowdata wrote, damaged further on)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return False
    names = {c.strip().strip('"') for c in first.rstrip("\r\n").split(",")}
    return bool(first.strip()) and set(columns) <= names


def write_table(df: pd.DataFrame, out: Path) -> None:
    """``df`` written atomically to ``out``: CSV, or Parquet with a CRC-32 per page (checked when read)."""
    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False, write_page_checksum=True)
