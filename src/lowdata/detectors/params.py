"""A detector's parameters, declared once: :class:`Param` (name, type, range, default, what it is).

The declaration is the one schema of a parameter: :meth:`Detector.check_params` checks the values with it in
``fit``; the command line reads ``--param NAME=VALUE`` with it (:func:`parse_assignments`, :func:`method_params`)
and lists it in its help (:func:`describe_params`); a model file's stored values are checked with
:meth:`Param.spec`. Any detector's parameters travel as one mapping (``method_params``) from the command line or
a notebook to the fit, and as one ``params`` text in a results table's key (:func:`params_text`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core import schema as S
from ..core.errors import LowdataError, quoted


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is ``int``, ``float`` or ``str``; numbers lie in [``low``, ``high``] (``low_open``:
    above ``low``), ``odd`` whole numbers only; text is one of ``choices``."""

    name: str
    kind: type
    default: object
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    odd: bool = False
    choices: tuple[str, ...] = ()
    flag: bool = False  # also a command-line flag of its own (``--coreset F``), beside ``--param coreset=F``
    fixed: bool = False  # set by the method's registration (its name says it): not given with --param

    @property
    def range_text(self) -> str:
        if self.kind is str:
            return "one of " + ", ".join(self.choices) if self.choices else "a text"
        what = "a whole number" if self.kind is int else "a number"
        if self.odd:
            what = "an odd whole number"
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{_bound(self.low)}, {_bound(self.high)}]"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {_bound(self.low)}"
        return what

    def check(self, value, method: str):
        """``value`` as this parameter's type (a whole float for an int is taken), or one line naming the method,
        the parameter, its range and the value."""
        bad = LowdataError(f"{method}: {self.name} must be {self.range_text}, got {quoted(value)}")
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise bad
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad
        if not math.isfinite(float(value)):
            raise bad
        if self.kind is int:
            if float(value) != int(value):
                raise bad
            value = int(value)
        else:
            value = float(value)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        if self.odd and value % 2 == 0:
            raise bad
        return value

    def parse(self, text: str, method: str):
        """A value typed on the command line (``--param name=text``), checked."""
        if self.kind is str:
            return self.check(text, method)
        try:
            value = int(text) if self.kind is int and text.strip().lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise LowdataError(f"{method}: {self.name} must be {self.range_text}, got {quoted(text)}") from None
        return self.check(value, method)

    def spec(self) -> S.Spec:
        """The schema of a stored value (model files)."""
        if self.kind is str:
            return S.Str(self.choices or None)
        if self.kind is int:
            return S.Int(None if self.low is None else math.ceil(self.low), None if self.high is None else int(self.high))
        return S.Num(self.low, self.high, lo_open=self.low_open)

    def describe(self, long: bool = False) -> str:
        """``name (range, default)``, and with ``long`` what it is."""
        return f"{self.name} ({self.range_text}, default {self.default})" + (f": {self.help}" if long and self.help else "")


def _bound(x: float) -> str:
    """A range's end as people read it: 0.1, 1000, 1,048,576, 2^63."""
    if float(x).is_integer():
        x = int(x)
        if x > 10 ** 7 and x & (x - 1) == 0:
            return f"2^{x.bit_length() - 1}"
        return f"{x:,}"
    return f"{x:g}"


def describe_params(method: str, params: Sequence[Param], long: bool = False) -> str:
    """The parameters a method takes (``--param``; not those its name fixes) in one line (errors and help)."""
    given = [p for p in params if not p.fixed]
    return f"{method}: " + ("; ".join(p.describe(long) for p in given) if given else "no parameters")


def parse_assignments(items: Iterable[str] | str | None) -> dict[str, str]:
    """``NAME=VALUE`` items (``--param``, repeated, or one comma-separated text) as a mapping of texts."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    out = {}
    for item in items:
        name, eq, value = str(item).partition("=")
        if not eq or not name.strip() or not value.strip():
            raise LowdataError(f"--param {quoted(item)}: give NAME=VALUE (e.g. coreset=0.05)")
        out[name.strip()] = value.strip()
    return out


def params_text(values: Mapping[str, object], declared: Sequence[Param], defaults: Mapping[str, object]) -> str:
    """The ``params`` key of a results row: the ``values`` that differ from ``defaults`` (the method's own), as
    sorted compact JSON (``""``: every parameter at its default, so that a table made before a parameter could be
    set still matches)."""
    changed = {p.name: values[p.name] for p in declared if p.name in values and values[p.name] != defaults.get(p.name)}
    return json.dumps(changed, sort_keys=True, separators=(",", ":")) if changed else ""
