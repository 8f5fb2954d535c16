"""A small schema language for the JSON lowdata reads back (model files): types, ranges, finite numbers.

``check(value, spec, "path/model.json")`` walks ``value`` with ``spec`` and raises
:class:`LowdataError` at the first field that does not fit, naming the file, the field
(``threshold.value``), what was expected and what was found, in one line. Specs: :class:`Str`, :class:`Int`, :class:`Num`, :class:`Bool`,
:class:`List`, :class:`Dict`, :class:`Opt` (``None`` allowed) and :class:`Any`. Booleans are never
taken for numbers, and numbers are finite unless said otherwise (JSON readers accept ``NaN``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import LowdataError, quoted as _shown


class Spec:
    what = "a value"

    def check(self, value, where: str) -> None:
        raise NotImplementedError

    def fail(self, value, where: str):
        raise LowdataError(f"{where or 'the whole file'} must be {self.what}, got {_shown(value)}")


@dataclass
class Any(Spec):
    what: str = "anything"

    def check(self, value, where):
        pass


@dataclass
class Str(Spec):
    choices: tuple | None = None
    pattern: str | None = None
    max_len: int = 10_000

    @property
    def what(self):
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"a text matching {self.pattern}" if self.pattern else "a text"

    def check(self, value, where):
        if not isinstance(value, str) or len(value) > self.max_len:
            self.fail(value, where)
        if self.choices is not None and value not in self.choices:
            self.fail(value, where)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            self.fail(value, where)


@dataclass
class Int(Spec):
    lo: int | None = None
    hi: int | None = None

    @property
    def what(self):
        if self.lo is not None and self.hi is not None:
            return f"a whole number from {self.lo} to {self.hi}"
        return "a whole number" + (f" >= {self.lo}" if self.lo is not None else "") + \
            (f" <= {self.hi}" if self.hi is not None else "")

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(value, where)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            self.fail(value, where)


@dataclass
class Num(Spec):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    @property
    def what(self):
        parts = []
        if self.lo is not None and self.hi is not None and not (self.lo_open or self.hi_open):
            return f"a finite number from {self.lo:g} to {self.hi:g}"
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return "a finite number" + (" " + " and ".join(parts) if parts else "")

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(value, where)
        try:
            finite = math.isfinite(value)
        except OverflowError:  # a whole number past the float range (400 digits)
            finite = False
        if not finite:
            self.fail(value, where)
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            self.fail(value, where)
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            self.fail(value, where)


@dataclass
class Bool(Spec):
    what: str = "true or false"

    def check(self, value, where):
        if not isinstance(value, bool):
            self.fail(value, where)


@dataclass
class List(Spec):
    item: Spec
    min_len: int = 0
    max_len: int | None = None

    @property
    def what(self):
        size = f" of {self.min_len}" if self.min_len == self.max_len else \
            (f" of at least {self.min_len}" if self.min_len else "") + \
            (f" of at most {self.max_len}" if self.max_len is not None and self.min_len != self.max_len else "")
        return f"a list{size} items, each {self.item.what}"

    def check(self, value, where):
        if not isinstance(value, list) or len(value) < self.min_len or \
                (self.max_len is not None and len(value) > self.max_len):
            self.fail(value, where)
        for i, v in enumerate(value):
            self.item.check(v, f"{where}[{i}]" if where else f"[{i}]")


@dataclass
class Dict(Spec):
    fields: dict = field(default_factory=dict)
    optional: tuple = ()
    values: Spec | None = None  # every value of a dict of free keys

    what: str = "an object ({...})"

    def check(self, value, where):
        if not isinstance(value, dict):
            self.fail(value, where)
        for name, spec in self.fields.items():
            if name not in value:
                if name in self.optional:
                    continue
                raise LowdataError(f"{where or 'the file'} lacks the field {name!r}")
            spec.check(value[name], f"{where}.{name}" if where else name)
        if self.values is not None:
            for name, v in value.items():
                if name not in self.fields:
                    self.values.check(v, f"{where}.{name}" if where else name)


@dataclass
class Opt(Spec):
    spec: Spec

    @property
    def what(self):
        return f"null or {self.spec.what}"

    def check(self, value, where):
        if value is not None:
            self.spec.check(value, where)


def check(value, spec: Spec, source: str, at: str = "") -> None:
    """Raise ``LowdataError('SOURCE: FIELD must be ..., got ...')`` at the first field ``spec`` refuses;
    ``at`` names the section ``value`` is (``detector.params``), so that fields are named in full."""
    try:
        spec.check(value, at)
    except LowdataError as exc:
        raise LowdataError(f"{source}: {exc}") from None
