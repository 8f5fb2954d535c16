"""The space of augmentation policies the automatic search draws from: the transform families of the
paper's Table 4, their ranges, and the fill mode.

A space maps each family to the values it may take; the first value of every family is "off":

=================  ==================================================  ===========================
family             values (default space)                              policy field
=================  ==================================================  ===========================
flip_horizontal    false, true                                         ``flip_horizontal``
flip_vertical      false, true                                         ``flip_vertical``
rot90              false, true                                         ``rot90``
translate_px       0, 5, 10, 20 (shift in [-t, t] on both axes)        ``translate_px = (t, t)``
rotate_deg         0, 2, 5, 10, 20 (angle in [-a, a])                  ``rotate_deg = (-a, a)``
zoom               0, 0.02, 0.05 (scale in [1 - z, 1 + z])             ``zoom``
add                0, 10, 20 (grey levels in [-b, b])                  ``add``
multiply           0, 0.1, 0.2 (factor in [1 - m, 1 + m])              ``multiply``
fill               constant, edge, reflect (padding of the affine)     ``fill``
=================  ==================================================  ===========================

:func:`sample_candidates` draws each family independently: off with probability 1/2, else one of its
other values uniformly (so sparse and dense policies are both drawn), and keeps distinct policies
only. A space file (JSON) holds the same mapping, any subset of the families (a family left out is off).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import LowdataError
from ..data.augment import DEFAULT_POLICY, AugmentPolicy

DEFAULT_SPACE: dict[str, list] = {
    "flip_horizontal": [False, True],
    "flip_vertical": [False, True],
    "rot90": [False, True],
    "translate_px": [0, 5, 10, 20],
    "rotate_deg": [0, 2, 5, 10, 20],
    "zoom": [0, 0.02, 0.05],
    "add": [0, 10, 20],
    "multiply": [0, 0.1, 0.2],
    "fill": ["constant", "edge", "reflect"],
}
_OFF = {"flip_horizontal": False, "flip_vertical": False, "rot90": False, "translate_px": 0, "rotate_deg": 0,
        "zoom": 0, "add": 0, "multiply": 0, "fill": "constant"}
_BOOL = ("flip_horizontal", "flip_vertical", "rot90")
_GEOMETRIC = ("translate_px", "rotate_deg", "zoom")  # what the fill mode pads


def _number(family: str, v: Any, whole: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
        raise LowdataError(f"search space family {family!r}: values must be non-negative numbers, got {v!r}")
    if whole and float(v) != int(v):
        raise LowdataError(f"search space family {family!r}: a shift is a whole number of pixels, got {v!r}")
    return float(v)


def check_space(space: dict) -> dict[str, list]:
    """A space with every value checked (one clear error naming the family or value); families left out
    are off; each family's values are made distinct and "off" put first."""
    if not isinstance(space, dict) or not space:
        raise LowdataError(f"a search space must be a non-empty mapping of transform families to values, got {space!r}")
    unknown = [k for k in space if k not in DEFAULT_SPACE]
    if unknown:
        raise LowdataError(f"unknown transform {unknown[0]!r} in the search space; known: {', '.join(DEFAULT_SPACE)}")
    out = {}
    for family in DEFAULT_SPACE:
        values = space.get(family, [_OFF[family]])
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
            raise LowdataError(f"search space family {family!r}: expected a non-empty list of values, got {values!r}")
        if family in _BOOL:
            if any(not isinstance(v, bool) for v in values):
                raise LowdataError(f"search space family {family!r}: values must be true or false, got {values!r}")
        elif family == "fill":
            from ..data.augment import FILL_MODES
            bad = [v for v in values if v not in FILL_MODES]
            if bad:
                raise LowdataError(f"search space family 'fill': {bad[0]!r} is not one of {', '.join(FILL_MODES)}")
        else:
            values = [_number(family, v, family == "translate_px") for v in values]
            if family == "translate_px":
                values = [int(v) for v in values]
            if family in ("zoom", "multiply") and any(v >= 1 for v in values):
                raise LowdataError(f"search space family {family!r}: a half-width below 1 is needed (the factor "
                                   f"stays positive), got {values!r}")
        values = list(dict.fromkeys(values))
        off = _OFF[family]
        out[family] = ([off] if off in values else []) + [v for v in values if v != off]
    return out


def load_space(path: str | Path) -> dict[str, list]:
    """A search space from a JSON file (see the module docstring); every problem is one clear error."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LowdataError(f"search space file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LowdataError(f"cannot read search space file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LowdataError(f"search space file {path} is not valid JSON: {exc}") from None
    try:
        return check_space(d)
    except LowdataError as exc:
        raise LowdataError(f"search space file {path}: {exc}") from None


def policy_of(choice: dict, name: str) -> AugmentPolicy:
    """The policy of one choice of values per family (the fill mode kept only when a geometric transform pads)."""
    c = {**_OFF, **choice}
    geometric = any(c[f] for f in _GEOMETRIC)
    return AugmentPolicy(
        name=name, flip_horizontal=c["flip_horizontal"], flip_vertical=c["flip_vertical"], rot90=c["rot90"],
        translate_px=(c["translate_px"], c["translate_px"]),
        rotate_deg=(-float(c["rotate_deg"]), float(c["rotate_deg"])) if c["rotate_deg"] else None,
        zoom=(1 - c["zoom"], 1 + c["zoom"]) if c["zoom"] else None,
        add=(-float(c["add"]), float(c["add"])) if c["add"] else None,
        multiply=(1 - c["multiply"], 1 + c["multiply"]) if c["multiply"] else None,
        fill=c["fill"] if geometric else "constant")


def sample_candidates(space: dict, budget: int, seed: int) -> list[AugmentPolicy]:
    """``budget`` distinct policies: no augmentation (``none``) and the generic ``default`` policy first (when
    the space holds it), then random draws (see the module docstring), named ``auto-1``, ``auto-2``...
    Fewer when the space holds fewer distinct policies."""
    space = check_space(space)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise LowdataError(f"the search budget must be a whole number of candidate policies of at least 1, got {budget!r}")
    rng = np.random.default_rng([int(seed), 0xA07])
    out, seen = [], set()

    def add(p: AugmentPolicy) -> None:
        if p.digest() not in seen and len(out) < budget:
            seen.add(p.digest())
            out.append(p)

    add(policy_of({}, "none"))
    dflt = {"translate_px": DEFAULT_POLICY.translate_px[0], "add": DEFAULT_POLICY.add[1],
            "multiply": round(DEFAULT_POLICY.multiply[1] - 1, 10)}
    if all(v in space[k] for k, v in dflt.items()):
        add(policy_of(dflt, "default"))
    tries = 0
    while len(out) < budget and tries < 50 * budget:
        tries += 1
        choice = {}
        for family, values in space.items():
            others = values[1:] if values[0] == _OFF[family] else values
            if not others or (values[0] == _OFF[family] and rng.random() < 0.5):
                choice[family] = values[0]
            else:
                choice[family] = others[int(rng.integers(len(others)))]
        add(policy_of(choice, f"auto-{len(out) + 1}"))
    return out
