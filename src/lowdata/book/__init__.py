"""The book: what its notebooks call, one module per kind of page.

:mod:`~lowdata.book.params` (one parameter schema per notebook, and the presets), :mod:`~lowdata.book.category`
(a category's study page), :mod:`~lowdata.book.chapters` (the pollution chapter), :mod:`~lowdata.book.walkthrough`
(the workflow chapter), :mod:`~lowdata.book.summary` and :mod:`~lowdata.book.record` (the summary pages and the
run's record), :mod:`~lowdata.book.figures`, :mod:`~lowdata.book.plots` and :mod:`~lowdata.book.paper` (figures and
the paper's tables); :mod:`~lowdata.book.runner` executes them all and builds the book. The names the notebooks
import from ``lowdata.book`` are handed on here (the runner is not: a notebook's kernel need not import papermill).
"""

from .category import category_overview, category_params, fit_times, run_category
from .chapters import run_pollution_category
from .figures import augmentation_preview, padim_examples
from .record import environment, read_run
from .summary import curves, describe_results, load_results, run_status

__all__ = ["augmentation_preview", "category_overview", "category_params", "curves", "describe_results",
           "environment", "fit_times", "load_results", "padim_examples", "read_run", "run_category",
           "run_pollution_category", "run_status"]
