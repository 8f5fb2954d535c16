"""Every table a page of the book shows, also as CSV, and a link to it under the table.

When the runner executes a page it sets :data:`DIR_ENV` (the page's folder of tables,
``book/_extra/tables/<page>/``) and :data:`URL_ENV` (that folder as the built page reaches it,
``../../tables/<page>``); Sphinx copies ``book/_extra`` to the site's root (``html_extra_path``), so the
CSV files lie beside the pages, online and in the published archive alike. In the notebook's kernel,
:func:`install` (called when :mod:`lowdata.book` is imported) makes every ``DataFrame`` a page displays
write ``table-<k>.csv`` there (k counts the page's tables; written atomically) and show its download link
under the table. Without those variables (papermill or nbval run by hand) nothing changes.
"""

from __future__ import annotations

import itertools
import os
from html import escape
from pathlib import Path

from ..core.atomic import atomic_path

DIR_ENV = "LOWDATA_TABLES_DIR"
URL_ENV = "LOWDATA_TABLES_URL"
_count = itertools.count(1)


def page_tables(book_root: Path, page: Path) -> tuple[Path, str]:
    """The folder of ``page``'s CSV files and its URL relative to the built page."""
    rel = page.resolve().relative_to(Path(book_root).resolve()).with_suffix("")
    up = "../" * (len(rel.parts) - 1)
    return Path(book_root) / "book" / "_extra" / "tables" / rel, f"{up}tables/{rel.as_posix()}"


def write_csv(df, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with atomic_path(path) as tmp:
        df.to_csv(tmp)
    return path


def _html(df) -> str:
    folder, url = os.environ[DIR_ENV], os.environ[URL_ENV]
    name = f"table-{next(_count)}.csv"
    write_csv(df, Path(folder), name)
    return (df._repr_html_() + f'\n<p><a class="lowdata-csv" href="{escape(url)}/{name}" download>'
            f"{name}: this table as CSV</a></p>")


def install() -> bool:
    """Register the DataFrame formatter in the running IPython kernel when the runner asked for tables;
    returns whether it did."""
    if not os.environ.get(DIR_ENV) or not os.environ.get(URL_ENV):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None:
        return False
    import pandas as pd

    ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _html)
    return True
