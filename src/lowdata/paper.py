"""``lowdata.paper``: the import path of the book's committed notebooks, handing on :mod:`lowdata.book.paper`.

The notebooks and their nbval references (``tests/notebooks/``) import these names from here, and a
refactor leaves those references byte for byte as they are; new code imports :mod:`lowdata.book.paper`.
"""

from .book.paper import auc_at, table_view  # noqa: F401
