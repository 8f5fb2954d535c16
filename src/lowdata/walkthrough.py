"""``lowdata.walkthrough``: the import path of the book's committed notebooks, handing on :mod:`lowdata.book.walkthrough`.

The notebooks and their nbval references (``tests/notebooks/``) import these names from here, and a
refactor leaves those references byte for byte as they are; new code imports :mod:`lowdata.book.walkthrough`.
"""

from .book.walkthrough import fpr_plot, fpr_table, overlay_grid, run_walkthrough, score_histogram, thumbnails, verdict_table  # noqa: F401
