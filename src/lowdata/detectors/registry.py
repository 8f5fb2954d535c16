"""The detectors, one registry: the one list of methods that the command line, the notebooks' parameter
checks, the study, the book's labels and the workflow all read.

A new detector is one module (a :class:`~lowdata.detectors.base.Detector` subclass declaring what it
consumes and offers) and one :func:`register_detector` line, here for the package's own, or in the
user's code before the run (``tests/toy_detector.py`` is an example that needs no other change)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..core.errors import LowdataError, quoted
from .base import Detector
from .params import describe_params, params_text
from .knn import KNN
from .mahalanobis import Mahalanobis
from .padim import PaDiM
from .patchcore import PatchCore


@dataclass(frozen=True)
class MethodEntry:
    """One registered method (:func:`register_detector`).

    Attributes
    ----------
    name : str
        The method's name, its detector's ``name``.
    make : callable
        ``make()`` returns a fresh, unfitted detector.
    paper : bool
        Whether it is one of the paper's methods (the study's and the book's default list).
    spec : Detector
        An unfitted instance, read for the method's declarations only (never fitted).
    """

    name: str
    make: Callable[[], Detector]  # a fresh, unfitted detector
    paper: bool  # one of the paper's methods: the study's and the book's default list
    spec: Detector  # an unfitted instance, read for the method's declarations only (never fitted)


#: method name -> entry, in the order tables and figures list them
DETECTORS: dict[str, MethodEntry] = {}


def register_detector(name: str, make: Callable[[], Detector], *, paper: bool = False) -> None:
    """Make ``name`` a method: ``make()`` returns a fresh detector whose ``name`` is ``name``.

    Parameters
    ----------
    name : str
        The method's name (the command line's ``--methods``, a results table's ``method``).
    make : callable
        ``make()`` returns a fresh, unfitted :class:`~lowdata.detectors.base.Detector` named ``name``.
    paper : bool, default=False
        One of the paper's methods: the study's and the book's default list.

    Raises
    ------
    lowdata.LowdataError
        If ``make()`` does not return a Detector named ``name``, or its ``consumes`` is not ``'pooled'`` or
        ``'maps'``.
    """
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
    """Every registered method, in order.

    Returns
    -------
    tuple of str
        The methods' names, in the order tables and figures list them.
    """
    return tuple(DETECTORS)


def paper_methods() -> tuple[str, ...]:
    """The paper's methods: ``knn``, ``maha-emp``, ``maha-lw``, ``padim`` (the default of studies).

    Returns
    -------
    tuple of str
        The names of the methods registered with ``paper=True``, in order.
    """
    return tuple(n for n, e in DETECTORS.items() if e.paper)


def check_method(method: str) -> str:
    """``method``, if it is registered.

    Parameters
    ----------
    method : str
        A method's name.

    Returns
    -------
    str
        ``method``.

    Raises
    ------
    lowdata.LowdataError
        If ``method`` is not registered (the message lists the methods).
    """
    if method not in DETECTORS:
        raise LowdataError(f"unknown method {method!r}; choose from {', '.join(DETECTORS)}")
    return method


def make_detector(method: str, **params) -> Detector:
    """A fresh detector by name (see :func:`method_names`), to fit, with ``params`` set (an unknown one is an
    error naming the method's parameters).

    Parameters
    ----------
    method : str
        A registered method's name.
    **params
        Constructor parameters of the method's detector (checked in ``fit``).

    Returns
    -------
    Detector
        A fresh, unfitted detector.

    Raises
    ------
    lowdata.LowdataError
        If ``method`` is not registered, or a parameter is not one of the method's.
    """
    det = DETECTORS[check_method(method)].make()
    return det.set_params(**params) if params else det


def method_spec(method: str) -> Detector:
    """What a method declares (what it consumes, whether it gives maps, its label...): an unfitted instance
    shared by every caller, never to be fitted (:func:`make_detector` gives one to fit).

    Parameters
    ----------
    method : str
        A registered method's name.

    Returns
    -------
    Detector
        The method's shared, unfitted instance.

    Raises
    ------
    lowdata.LowdataError
        If ``method`` is not registered.
    """
    return DETECTORS[check_method(method)].spec


def uses_maps(methods) -> bool:
    """Whether any of ``methods`` consumes feature maps (else pooled vectors only: no maps read nor kept)."""
    return any(method_spec(m).consumes == "maps" for m in methods)


def method_label(method: str) -> str:
    """How tables and figures name a method (``KNN``, ``PaDiM (Ledoit)``...); an unknown one by its name.

    Parameters
    ----------
    method : str
        A method's name.

    Returns
    -------
    str
        Its detector's ``label``, or ``method`` itself if it is not registered.
    """
    return DETECTORS[method].spec.label if method in DETECTORS else method


def method_order(method: str) -> int:
    """A method's place in the registry (unknown ones last), to sort tables and legends.

    Parameters
    ----------
    method : str
        A method's name.

    Returns
    -------
    int
        Its index in :func:`method_names`, or the number of methods if it is not registered.
    """
    names = list(DETECTORS)
    return names.index(method) if method in names else len(names)


def detector_from_state(method: str, params: dict, arrays: dict[str, np.ndarray]) -> Detector:
    """A fitted ``method`` detector from :meth:`Detector.get_state`'s parameters and arrays.

    Parameters
    ----------
    method : str
        A registered method's name.
    params : dict
        :meth:`~lowdata.detectors.base.Detector.get_state`'s parameters.
    arrays : dict of str to ndarray
        :meth:`~lowdata.detectors.base.Detector.get_state`'s arrays.

    Returns
    -------
    Detector
        The fitted detector.

    Raises
    ------
    lowdata.LowdataError
        If ``method`` is not registered, or the state is incomplete or malformed.
    """
    det = make_detector(method)
    try:
        return det.set_state(params, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise LowdataError(f"the saved state is incomplete or malformed ({type(exc).__name__}: "
                           f"{quoted(str(exc))})") from None


def method_params(methods: Sequence[str], given: Mapping[str, object] | None) -> dict[str, dict]:
    """Per method, the ``given`` parameters it declares, checked (a text, as typed after ``--param NAME=``, is
    read as the parameter's type). Each given name must be declared by at least one of ``methods`` (a
    parameter that none of them has is one line listing their parameters); a value out of range names the
    range.

    Parameters
    ----------
    methods : sequence of str
        Registered methods' names.
    given : mapping or None
        Parameter name -> value, or the text typed after ``--param NAME=`` (``None``: none).

    Returns
    -------
    dict of str to dict
        Method -> the checked values of the given parameters it declares (empty for a method that declares
        none of them).

    Raises
    ------
    lowdata.LowdataError
        If a given name is declared by none of ``methods`` (or only fixed by a method's registration), or a
        value is not of its parameter's type or out of its range.
    """
    given = dict(given or {})
    out = {m: {} for m in methods}
    for name, value in given.items():
        takers = [m for m in methods if name in {p.name for p in method_spec(m).parameters if not p.fixed}]
        fixed = [(m, p) for m in methods for p in method_spec(m).parameters if p.name == name and p.fixed]
        if not takers and fixed:
            m, p = fixed[0]
            raise LowdataError(f"--param {name}: {m}'s {name} is part of the method, not a parameter ({p.help})")
        if not takers:
            raise LowdataError(f"--param {name}: no such parameter of {', '.join(methods)}; their parameters: "
                               + " | ".join(describe_params(m, method_spec(m).parameters) for m in methods))
        for m in takers:
            p = next(p for p in method_spec(m).parameters if p.name == name)
            out[m][name] = p.parse(value, m) if isinstance(value, str) and p.kind is not str else p.check(value, m)
    return out


def params_for(method: str, given: Mapping[str, object] | None) -> dict:
    """The ``given`` parameters that ``method`` declares (the others are left to the methods that have them),
    checked; the values a fit of ``method`` is made with.

    Parameters
    ----------
    method : str
        A registered method's name.
    given : mapping or None
        Parameter name -> value (or text), for any methods (``None``: none).

    Returns
    -------
    dict
        The checked values of the parameters ``method`` declares.

    Raises
    ------
    lowdata.LowdataError
        If ``method`` is not registered, or a value it declares is out of range.
    """
    declared = {p.name for p in method_spec(method).parameters if not p.fixed}
    return method_params([method], {k: v for k, v in (given or {}).items() if k in declared})[method]


def params_key(method: str, params: Mapping[str, object]) -> str:
    """The ``params`` text of a results row of ``method`` fitted with ``params``: those that differ from the
    method's own values, as sorted compact JSON; ``""`` at its defaults.

    Parameters
    ----------
    method : str
        A registered method's name.
    params : mapping
        The parameters the fit was made with.

    Returns
    -------
    str
        The ``params`` text, e.g. ``{"coreset":0.05}``, or ``""``.
    """
    spec = method_spec(method)
    return params_text(params, spec.parameters, spec.get_params())


def params_from_columns(method: str, row: Mapping[str, object]) -> str:
    """The ``params`` text of a row of a table written before the ``params`` column, whose parameters were columns
    of their own (``coreset``: NaN for a method without it).

    Parameters
    ----------
    method : str
        The row's method.
    row : mapping
        The row's columns.

    Returns
    -------
    str
        The ``params`` text of :func:`params_key`, or ``""``.
    """
    declared = {p.name for p in method_spec(method).parameters} if method in DETECTORS else set()
    values = {k: v for k, v in row.items() if k in declared and v is not None
              and not (isinstance(v, float) and np.isnan(v))}
    return params_key(method, values) if values else ""
