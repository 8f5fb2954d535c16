"""``lowdata.augment``: the import path of the book's committed notebooks, handing on :mod:`lowdata.data.augment`.

The notebooks and their nbval references (``tests/notebooks/``) import these names from here, and a
refactor leaves those references byte for byte as they are; new code imports :mod:`lowdata.data.augment`.
"""

from .data.augment import DEFAULT_POLICY, TABLE4, policy_table  # noqa: F401
