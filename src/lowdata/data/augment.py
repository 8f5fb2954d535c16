"""Per-category augmentation policies (the paper's Table 4) and seeded, reproducible augmented copies.

A policy says which transforms are enabled and in which range. As in the paper (section 3.2), every
enabled transform is applied *systematically* to every copy, each copy drawing its own parameters:
flips with probability 1/2, ``rot90`` by ``k * 90`` degrees with ``k`` uniform in {0, 1, 2, 3},
translation by a uniform integer number of pixels in ``[-t, t]`` on each axis, rotation and zoom
uniform in their range, then brightness: one value added to all pixels and channels, and one factor
multiplied with all of them. Table 4 lists "Rotate (90°s)" as 90°, 180° and 270°; we include ``k = 0``
so that the original orientation stays possible, as it does with the 50 % flips.

Copy ``c`` of an image depends only on ``(seed, content hash, c)`` and the policy (:func:`lowdata.data.copies.copy_seed`, which makes the copies),
not on which other images are augmented or in which order, so augmented copies can be cached by
:func:`lowdata.features.cache.entry_key` with :meth:`AugmentPolicy.digest`. imgaug is imported only through
:mod:`lowdata.data.imgaug_compat`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import LowdataError

DIGEST_VERSION = "lowdata-augment-v1"
FILL_MODES = ("constant", "edge", "reflect")
_RANGE_FIELDS = ("rotate_deg", "zoom", "add", "multiply")
_POSITIVE_RANGES = ("zoom", "multiply")
# a range that can only give this value leaves the image unchanged: it counts as not enabled
_NEUTRAL = {"rotate_deg": 0.0, "zoom": 1.0, "add": 0.0, "multiply": 1.0}


def _bad(field: str, value: Any, why: str) -> LowdataError:
    return LowdataError(f"augmentation policy field {field!r}: {why}, got {value!r}")


def _as_bool(field: str, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise _bad(field, value, "expected true or false")


def _as_pair(field: str, value: Any) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise _bad(field, value, "expected a pair [low, high]")
    return value[0], value[1]


def _as_number(field: str, value: Any, whole: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(field, whole, "expected numbers")
    value = float(value)
    if not math.isfinite(value):
        raise _bad(field, whole, "expected finite numbers")
    return value


def _as_range(field: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (_as_number(field, v, value) for v in _as_pair(field, value))
    if lo > hi:
        raise _bad(field, value, f"low {lo:g} is above high {hi:g}")
    if field in _POSITIVE_RANGES and lo <= 0:
        raise _bad(field, value, "the range must be positive")
    return lo, hi


def _as_translate(value: Any) -> tuple[int, int]:
    out = []
    for v in _as_pair("translate_px", value):
        x = _as_number("translate_px", v, value)
        if not x.is_integer():
            raise _bad("translate_px", value, "expected whole numbers of pixels")
        if x < 0:
            raise _bad("translate_px", value, "expected non-negative maxima (the shift is drawn in [-t, t])")
        out.append(int(x))
    return out[0], out[1]


@dataclass(frozen=True)
class AugmentPolicy:
    """Which transforms an augmented copy gets, and their ranges (see the module docstring).

    Values are checked and normalised on construction (ranges become float pairs, translations int
    pairs), so equal parameters give equal policies and equal digests. Bad values raise
    :class:`LowdataError` naming the field.
    """

    name: str = "custom"
    flip_horizontal: bool = False
    flip_vertical: bool = False
    translate_px: tuple[int, int] = (0, 0)
    rotate_deg: tuple[float, float] | None = None
    rot90: bool = False
    zoom: tuple[float, float] | None = None
    add: tuple[float, float] | None = None
    multiply: tuple[float, float] | None = None
    fill: str = "constant"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise _bad("name", self.name, "expected a string")
        for f in ("flip_horizontal", "flip_vertical", "rot90"):
            object.__setattr__(self, f, _as_bool(f, getattr(self, f)))
        object.__setattr__(self, "translate_px", _as_translate(self.translate_px))
        for f in _RANGE_FIELDS:
            object.__setattr__(self, f, _as_range(f, getattr(self, f)))
        if self.fill not in FILL_MODES:
            raise _bad("fill", self.fill, f"expected one of {', '.join(FILL_MODES)}")

    def to_dict(self) -> dict:
        """JSON-able fields: ranges as ``[lo, hi]`` lists, disabled ranges as ``None``."""
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AugmentPolicy:
        """Policy from :meth:`to_dict`'s fields; missing fields take their default."""
        if not isinstance(d, dict):
            raise LowdataError(f"an augmentation policy must be a mapping of fields, got {d!r}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in known]
        if unknown:
            raise LowdataError(
                f"unknown augmentation policy field(s) {', '.join(map(repr, unknown))}; "
                f"known fields: {', '.join(known)}"
            )
        return cls(**d)

    def digest(self) -> str:
        """SHA-256 of the parameters (not the name) and :data:`DIGEST_VERSION`: the cache key part.

        Bump :data:`DIGEST_VERSION` whenever the same parameters would give different pixels (a
        change to :func:`augmenter` or :func:`copy_seed`), so cached augmented copies are not reused.
        """
        params = self.to_dict()
        del params["name"]
        text = json.dumps({"version": DIGEST_VERSION, "policy": params}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _enabled(self, field: str) -> bool:
        v = getattr(self, field)
        return v is not None and v != (_NEUTRAL[field], _NEUTRAL[field])

    def is_identity(self) -> bool:
        """True when no transform is enabled (a range that can only give the neutral value is not)."""
        return not (self.flip_horizontal or self.flip_vertical or self.rot90 or any(self.translate_px)
                    or any(self._enabled(f) for f in _RANGE_FIELDS))


def _table4(name: str, flips: str, translate: tuple[int, int], rotate: tuple[float, float] | None,
            rot90: bool, zoom: tuple[float, float] | None) -> AugmentPolicy:
    return AugmentPolicy(name=name, flip_horizontal="h" in flips, flip_vertical="v" in flips,
                         translate_px=translate, rotate_deg=rotate, rot90=rot90, zoom=zoom,
                         add=(-10.0, 10.0), multiply=(0.9, 1.1))


#: Table 4 of the paper (Appendix A), keyed by MVTec AD folder name; every category also gets
#: add (-10, 10) and multiply (0.9, 1.1). Padding is imgaug's default (constant 0).
TABLE4: dict[str, AugmentPolicy] = {
    p.name: p
    for p in (
        _table4("carpet", "hv", (5, 5), None, True, None),
        _table4("tile", "hv", (5, 5), None, True, None),
        _table4("leather", "hv", (5, 5), None, True, None),
        _table4("grid", "hv", (5, 5), None, True, None),
        _table4("wood", "hv", (5, 5), (-2, 2), False, None),
        _table4("capsule", "", (10, 10), (-3, 3), False, (0.98, 1.02)),
        _table4("cable", "", (10, 10), (-5, 5), False, None),
        _table4("pill", "", (10, 10), (-3, 3), False, (0.98, 1.02)),
        _table4("transistor", "h", (5, 5), (-2, 2), False, None),
        _table4("metal_nut", "", (10, 10), (-10, 10), True, None),
        _table4("toothbrush", "h", (10, 10), None, False, None),
        _table4("screw", "hv", (10, 10), (-10, 10), True, (0.98, 1.02)),
        _table4("hazelnut", "hv", (10, 10), (-20, 20), True, (0.98, 1.02)),
        _table4("zipper", "h", (30, 0), None, False, None),
        _table4("bottle", "", (5, 5), (-10, 10), True, None),
    )
}

#: For categories outside Table 4 (ELPV solar cells, a user's folder): small shifts and brightness
#: changes only. Flips and rotations are left out because on parts whose orientation or handedness
#: matters (a cell's busbars, a connector, a printed label) a mirrored or rotated normal part may look
#: like a defect; a few pixels of shift and +-10 % brightness mimic placement and lighting jitter.
DEFAULT_POLICY = AugmentPolicy(name="default", translate_px=(5, 5), add=(-10.0, 10.0), multiply=(0.9, 1.1))


def load_policy(path: str | Path) -> AugmentPolicy:
    """Policy from a JSON file holding :meth:`AugmentPolicy.to_dict`'s fields (``name``: the file's stem
    when absent). A missing or unreadable file, bad JSON or bad fields raise :class:`LowdataError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LowdataError(f"augmentation policy file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LowdataError(f"cannot read augmentation policy file {path}: {exc}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LowdataError(f"augmentation policy file {path} is not valid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise LowdataError(f"augmentation policy file {path} must hold a JSON object, got {type(d).__name__}")
    d.setdefault("name", path.stem)
    try:
        return AugmentPolicy.from_dict(d)
    except LowdataError as exc:
        raise LowdataError(f"augmentation policy file {path}: {exc}") from None


def policy_for(category: str, policy: AugmentPolicy | dict | str | Path | None = None) -> AugmentPolicy:
    """The policy to use for ``category``.

    ``None``: Table 4's policy for an MVTec category, else :data:`DEFAULT_POLICY`. An
    :class:`AugmentPolicy` is used as is, a dict through :meth:`AugmentPolicy.from_dict`, a string
    naming a Table 4 category or ``"default"`` gives that policy, and a path to a ``.json`` file is
    read with :func:`load_policy`.
    """
    if policy is None:
        return TABLE4.get(category, DEFAULT_POLICY)
    if isinstance(policy, AugmentPolicy):
        return policy
    if isinstance(policy, dict):
        return AugmentPolicy.from_dict(policy)
    if isinstance(policy, str) and policy in TABLE4:
        return TABLE4[policy]
    if isinstance(policy, str) and policy == DEFAULT_POLICY.name:
        return DEFAULT_POLICY
    if isinstance(policy, (str, Path)) and Path(policy).suffix.lower() == ".json":
        return load_policy(policy)
    raise LowdataError(
        f"unknown augmentation policy {policy!r}: expected a Table 4 category "
        f"({', '.join(TABLE4)}), 'default', a .json policy file, or a mapping of policy fields"
    )


def _rng(r: tuple[float, float]) -> str:
    return f"{r[0]:g}..{r[1]:g}"


def describe(policy: AugmentPolicy) -> str:
    """One line: e.g. ``flip h, translate ±5/±5 px, rotate -10..10°, rot90, add -10..10, multiply 0.9..1.1``."""
    parts = []
    flips = "+".join(a for a, on in (("h", policy.flip_horizontal), ("v", policy.flip_vertical)) if on)
    if flips:
        parts.append(f"flip {flips}")
    tx, ty = policy.translate_px
    if tx or ty:
        parts.append(f"translate ±{tx}/±{ty} px")
    if policy._enabled("rotate_deg"):
        parts.append(f"rotate {_rng(policy.rotate_deg)}°")
    if policy.rot90:
        parts.append("rot90")
    if policy._enabled("zoom"):
        parts.append(f"zoom {_rng(policy.zoom)}")
    if policy.fill != "constant" and (tx or ty or policy._enabled("rotate_deg") or policy._enabled("zoom")):
        parts.append(f"fill {policy.fill}")
    if policy._enabled("add"):
        parts.append(f"add {_rng(policy.add)}")
    if policy._enabled("multiply"):
        parts.append(f"multiply {_rng(policy.multiply)}")
    return ", ".join(parts) if parts else "no augmentation"


def policy_table(policies: dict[str, AugmentPolicy] | None = None):
    """Table 4 (or any policies) as a table: one row per category, one column per transform."""
    import pandas as pd

    def rng(r):
        return "" if r is None else _rng(r)

    rows = []
    for name, p in (TABLE4 if policies is None else policies).items():
        rows.append({"category": name,
                     "flip": "+".join(a for a, on in (("horizontal", p.flip_horizontal),
                                                      ("vertical", p.flip_vertical)) if on),
                     "translate x/y (px)": f"±{p.translate_px[0]} / ±{p.translate_px[1]}",
                     "rotate (°)": rng(p.rotate_deg), "rotate (90°s)": "yes" if p.rot90 else "",
                     "zoom": rng(p.zoom), "add": rng(p.add), "multiply": rng(p.multiply), "padding": p.fill})
    return pd.DataFrame(rows).set_index("category")
