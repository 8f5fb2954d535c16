"""``lowdata.model``: the import path the book's workflow page shows, handing on :mod:`lowdata.inspection.model`.

The committed notebook (and its nbval reference) names it, and a refactor leaves those byte for byte as they
are; new code imports :mod:`lowdata.inspection.model`.
"""

from .inspection.model import InspectionModel, fit_model, load_model  # noqa: F401
