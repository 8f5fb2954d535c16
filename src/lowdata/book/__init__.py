"""The book: what its notebooks call, one module per kind of page.

:mod:`~lowdata.book.params` (one parameter schema per notebook, and the presets), :mod:`~lowdata.book.category`
(a category's study page), :mod:`~lowdata.book.chapters` (the pollution chapter), :mod:`~lowdata.book.walkthrough`
(the workflow chapter), :mod:`~lowdata.book.summary` and :mod:`~lowdata.book.record` (the summary pages and the
run's record), :mod:`~lowdata.book.figures`, :mod:`~lowdata.book.plots` and :mod:`~lowdata.book.paper` (figures and
the paper's tables); :mod:`~lowdata.book.runner` executes them all and builds the book. The names the notebooks
import from ``lowdata.book`` are handed on here (the runner is not: a notebook's kernel need not import papermill).
Importing it makes Python's warnings one line each (``UserWarning: ...``, no source path of the machine
that built the page): every page shows them that way. In a page the runner executes, every table a
cell shows is also written as CSV and linked under it (:mod:`~lowdata.book.tables`).
"""

import warnings as _warnings

from ..core.quiet import one_line_warning as _one_line_warning
from ..core.quiet import verbose as _verbose

if not _verbose():  # LOWDATA_VERBOSE / LOWDATA_DEBUG: Python's own format, with the source line
    _warnings.formatwarning = _one_line_warning
_warnings.filterwarnings("once", module=r"lowdata\.")  # the same warning of lowdata once per page

from .tables import install as _install_tables  # noqa: E402

_install_tables()  # in a page executed by the runner: every table also as CSV, linked under it

from .category import by_defect_type, category_overview, category_params, fit_times, run_category  # noqa: E402
from .chapters import run_pollution_category  # noqa: E402
from .figures import augmentation_preview, padim_examples  # noqa: E402
from .record import environment, read_run  # noqa: E402
from .summary import absent_sentence, curves, describe_results, load_results, run_status, show_status  # noqa: E402

__all__ = ["augmentation_preview", "by_defect_type", "category_overview", "category_params", "curves", "describe_results",
           "environment", "fit_times", "load_results", "padim_examples", "read_run", "run_category",
           "run_pollution_category", "run_status", "show_status", "absent_sentence"]
