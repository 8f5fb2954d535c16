"""``lowdata.plots``: the import path of the book's committed notebooks, handing on :mod:`lowdata.book.plots`.

The notebooks and their nbval references (``tests/notebooks/``) import these names from here, and a
refactor leaves those references byte for byte as they are; new code imports :mod:`lowdata.book.plots`.
"""

from .book.plots import auc_curves, curve_panels, heatmap_grid, pollution_curves  # noqa: F401
