"""``lowdata.pollution``: the import path of the book's committed notebooks, handing on :mod:`lowdata.experiments.pollution`.

The notebooks and their nbval references (``tests/notebooks/``) import these names from here, and a
refactor leaves those references byte for byte as they are; new code imports :mod:`lowdata.experiments.pollution`.
"""

from .experiments.pollution import ablation_table, rate_table, removal_table  # noqa: F401
