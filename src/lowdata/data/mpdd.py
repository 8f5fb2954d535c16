"""MPDD, the Metal Parts Defect Detection data set: six metal parts in the MVTec AD layout.

``<root>/<category>/train/good/*.png`` (normal training images),
``<root>/<category>/test/<good|defect_type>/*.png`` (test images),
``<root>/<category>/ground_truth/<defect_type>/<stem>_mask.png`` (binary defect masks).

The categories are ``bracket_black``, ``bracket_brown``, ``bracket_white``, ``connector``, ``metal_plate``
and ``tubes``: detection names a folder in the MVTec AD layout ``mpdd`` when it bears one of these names
(the layouts are the same). Read by :func:`lowdata.data.mvtec.load_mvtec`, recorded as source ``mpdd``.

Where it comes from: https://github.com/stepanje/MPDD (Jezek et al., ICUMT 2021); licence CC BY-NC-SA 4.0.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .dataset import CategoryData
from .layout import Match
from .mvtec import detect as detect_mvtec, load_mvtec

MPDD_CATEGORIES = ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes")
#: no public archive: where to get it
MANUAL = ("MPDD is shared through the link in https://github.com/stepanje/MPDD: download and extract it, and give "
          "its folder (the one holding the category folders) as --data")


def detect(folder: Path) -> Match:
    """Whether ``folder`` is an MPDD category: the MVTec AD layout, and one of MPDD's names."""
    found = detect_mvtec(folder)
    if found.missing is None and folder.name not in MPDD_CATEGORIES:
        return Match(f"not one of MPDD's categories ({', '.join(MPDD_CATEGORIES)})", found.found)
    return found


def load_mpdd(root: str | Path, category: str) -> CategoryData:
    """One MPDD category (any folder in the MVTec AD layout; see :func:`~lowdata.data.mvtec.load_mvtec`).

    Raises
    ------
    lowdata.LowdataError
        As :func:`~lowdata.data.mvtec.load_mvtec`.
    """
    return replace(load_mvtec(root, category), source="mpdd")
