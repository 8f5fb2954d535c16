"""The data sources, one registry: each has a label (for tables and figures), its categories, and a loader.

* ``elpv``: the ELPV solar cells (categories ``mono``, ``poly``; offline, from a PyPI package);
* ``mvtec``: any folder in the MVTec AD layout (its root given as ``root``).

:func:`load_category` loads one category of a source; :func:`available_categories` lists what a run can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import LowdataError
from .dataset import CategoryData
from .elpv import ELPV_CATEGORIES, load_elpv
from .mvtec import list_categories, load_mvtec


@dataclass(frozen=True)
class Source:
    """One data source.

    Attributes
    ----------
    name : str
        The source's name (``elpv``, ``mvtec``).
    label : str
        How tables and figures name it.
    load : callable
        ``load(category, root, **options)`` returns a :class:`~lowdata.data.dataset.CategoryData`.
    needs_root : bool
        Whether it needs a root folder (``--data ROOT``).
    """

    name: str
    label: str  # how tables and figures name it
    load: Callable[..., CategoryData]  # load(category, root, **options)
    needs_root: bool


def _load_elpv(category: str, root, **options) -> CategoryData:
    return load_elpv(category, **options)


def _load_mvtec(category: str, root, **options) -> CategoryData:
    if root is None:
        raise LowdataError("an MVTec-layout data set needs its root folder (--data ROOT)")
    return load_mvtec(root, category, **options)


SOURCES: dict[str, Source] = {
    "mvtec": Source("mvtec", "MVTec AD", _load_mvtec, True),
    "elpv": Source("elpv", "ELPV", _load_elpv, False),
}


def source_label(source: str) -> str:
    """``MVTec AD``, ``ELPV``; an unknown source's own name.

    Parameters
    ----------
    source : str
        A source's name.

    Returns
    -------
    str
        How tables and figures name it.
    """
    return SOURCES[source].label if source in SOURCES else source


def load_category(source: str, category: str, root: str | Path | None = None, **options) -> CategoryData:
    """``source`` is ``'elpv'`` (categories mono, poly) or ``'mvtec'`` (any MVTec-layout ``root``).

    Parameters
    ----------
    source : {'elpv', 'mvtec'}
        The data source.
    category : str
        One of its categories (``mono`` or ``poly`` for ELPV; a category folder under ``root`` for MVTec).
    root : str or Path or None, default=None
        The MVTec-layout root folder (ignored for ELPV).
    **options
        The source's loader's options (:func:`~lowdata.data.elpv.load_elpv`'s ``anomalous_from``,
        ``uncertain``, ``test_every``).

    Returns
    -------
    CategoryData
        The category's training and test images.

    Raises
    ------
    lowdata.LowdataError
        If the source is unknown, ``mvtec`` is given no root, or the loader finds no such category.
    """
    if source not in SOURCES:
        raise LowdataError(f"unknown data source {source!r}; known: elpv, mvtec")
    return SOURCES[source].load(category, root, **options)


def available_categories(data_root: str | Path | None = None, elpv: bool = True,
                         categories: list[str] | None = None) -> list[tuple[str, str]]:
    """(source, category) pairs: ELPV mono and poly (unless ``elpv`` is false) and every category in the
    MVTec layout under ``data_root``; ``categories`` keeps only those named (an unknown name is an error).

    Parameters
    ----------
    data_root : str or Path or None, default=None
        A folder in the MVTec AD layout (``None``: none).
    elpv : bool, default=True
        Include ELPV mono and poly.
    categories : list of str or None, default=None
        Keep only these categories (``None`` or empty: all).

    Returns
    -------
    list of tuple of str
        ``(source, category)`` pairs: ELPV's first, then the MVTec-layout categories, sorted.

    Raises
    ------
    lowdata.LowdataError
        If ``data_root`` holds no category, a named category is unknown, or nothing is left to run.
    """
    targets = [("elpv", c) for c in ELPV_CATEGORIES] if elpv else []
    if data_root is not None:
        found = list_categories(data_root)
        if not found:
            raise LowdataError(f"no category in the MVTec AD layout (<category>/train/good) under {data_root}")
        targets += [("mvtec", c) for c in found]
    if categories:
        known = {c for _, c in targets}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise LowdataError(f"unknown category {', '.join(map(repr, unknown))}; "
                               f"available: {', '.join(sorted(known))}")
        targets = [t for t in targets if t[1] in categories]
    if not targets:
        raise LowdataError("nothing to run: give an MVTec-layout root (--data ROOT) or keep the ELPV data")
    return targets
