"""The detectors, one registry: the one list of methods that the command line, the notebooks' parameter
checks, the study, the book's labels and the workflow all read.

A new detector is one module (a :class:`~lowdata.detectors.base.Detector` subclass declaring what it
consumes and offers) and one :func:`register_detector` line, here for the package's own, or in the
user's code before the run (``tests/toy_detector.py`` is an example that needs no other change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import LowdataError, quoted
from .base import Detector
from .knn import KNN
from .mahalanobis import Mahalanobis
from .padim import PaDiM
from .patchcore import PatchCore


@dataclass(frozen=True)
class MethodEntry:
    name: str
    make: Callable[[], Detector]  # a fresh, unfitted detector
    paper: bool  # one of the paper's methods: the study's and the book's default list
    spec: Detector  # an unfitted instance, read for the method's declarations only (never fitted)


#: method name -> entry, in the order tables and figures list them
DETECTORS: dict[str, MethodEntry] = {}


def register_detector(name: str, make: Callable[[], Detector], *, paper: bool = False) -> None:
    """Make ``name`` a method: ``make()`` returns a fresh detector whose ``name`` is ``name``."""
    made = make()
    if not isinstance(made, Detector) or made.name != name:
        raise LowdataError(f"register_detector({name!r}): make() must return a Detector named {name!r}, "
                           f"got {made!r}")
    if made.consumes not in ("pooled", "maps"):
        raise LowdataError(f"register_detector({name!r}): consumes must be 'pooled' or 'maps', not {made.consumes!r}")
    DETECTORS[name] = MethodEntry(name, make, paper, made)


register_detector("knn", KNN, paper=True)
register_detector("maha-emp", lambda: Mahalanobis("empirical"), paper=True)
register_detector("maha-lw", lambda: Mahalanobis("ledoit-wolf"), paper=True)
register_detector("padim", PaDiM, paper=True)
register_detector("patchcore", PatchCore)  # beyond the paper (Roth et al. 2022)


def method_names() -> tuple[str, ...]:
    """Every registered method, in order."""
    return tuple(DETECTORS)


def paper_methods() -> tuple[str, ...]:
    """The paper's methods: ``knn``, ``maha-emp``, ``maha-lw``, ``padim`` (the default of studies)."""
    return tuple(n for n, e in DETECTORS.items() if e.paper)


def check_method(method: str) -> str:
    if method not in DETECTORS:
        raise LowdataError(f"unknown method {method!r}; choose from {', '.join(DETECTORS)}")
    return method


def make_detector(method: str, **params) -> Detector:
    """A fresh detector by name (see :func:`method_names`), to fit, with ``params`` set (an unknown one is an
    error naming the method's parameters)."""
    det = DETECTORS[check_method(method)].make()
    return det.set_params(**params) if params else det


def method_spec(method: str) -> Detector:
    """What a method declares (what it consumes, whether it gives maps, its label...): an unfitted instance
    shared by every caller, never to be fitted (:func:`make_detector` gives one to fit)."""
    return DETECTORS[check_method(method)].spec


def method_label(method: str) -> str:
    """How tables and figures name a method (``KNN``, ``PaDiM (Ledoit)``...); an unknown one by its name."""
    return DETECTORS[method].spec.label if method in DETECTORS else method


def method_order(method: str) -> int:
    """A method's place in the registry (unknown ones last), to sort tables and legends."""
    names = list(DETECTORS)
    return names.index(method) if method in names else len(names)


def detector_from_state(method: str, params: dict, arrays: dict[str, np.ndarray]) -> Detector:
    """A fitted ``method`` detector from :meth:`Detector.get_state`'s parameters and arrays."""
    det = make_detector(method)
    try:
        return det.set_state(params, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise LowdataError(f"the saved state is incomplete or malformed ({type(exc).__name__}: "
                           f"{quoted(str(exc))})") from None
