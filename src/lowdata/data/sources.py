"""The data sources, one registry: each has a label (for tables and figures), a loader, and how to recognise
its layout. One file per source (its module docstring states its layout, origin and licence), one line here:

* ``elpv``: the ELPV solar cells (categories ``mono``, ``poly``; offline, from a PyPI package);
* ``mvtec``: any folder in the MVTec AD layout (its root given as ``root``); ``mpdd`` the same layout;
* ``btad``, ``mvtec2`` (MVTec AD 2), ``mvtec3d`` (MVTec 3D-AD, RGB), ``loco`` (MVTec LOCO AD), ``visa``
  (converted or original layout) and ``folder`` (a user's ``good/`` and ``bad/`` images).

:func:`load_category` loads one category of a source; :func:`detect_sources` says which layout each folder
of a root is in (or why none); :func:`available_categories` lists what a run can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import LowdataError
from .btad import ARCHIVE as BTAD_ARCHIVE, detect as detect_btad, load_btad
from .dataset import CategoryData
from .elpv import ELPV_CATEGORIES, load_elpv
from .folder import detect as detect_folder, load_folder
from .layout import Archive, Match, check_root
from .loco import ARCHIVE as LOCO_ARCHIVE, detect as detect_loco, load_loco
from .mpdd import MANUAL as MPDD_MANUAL, detect as detect_mpdd, load_mpdd
from .mvtec import ARCHIVE as MVTEC_ARCHIVE, detect as detect_mvtec, load_mvtec
from .mvtec2 import MANUAL as MVTEC2_MANUAL, detect as detect_mvtec2, load_mvtec2
from .mvtec3d import ARCHIVE as MVTEC3D_ARCHIVE, detect as detect_mvtec3d, load_mvtec3d
from .visa import ARCHIVE as VISA_ARCHIVE, detect as detect_visa, load_visa


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
    detect : callable or None, default=None
        ``detect(folder)`` -> :class:`~lowdata.data.layout.Match`: whether a category folder is in its layout
        (``None``: not a folder layout).
    fallback : bool, default=False
        A generic layout, named by detection only when no other matches (MVTec AD's).
    root_category : bool, default=False
        The root itself may be the one category (named after it).
    aux : tuple of str, default=()
        Folders of a root that belong to the layout and are no category (VisA's ``split_csv``).
    archive : Archive or None, default=None
        Its public archive and checksum, for ``lowdata download`` (stated in the source's module).
    manual : str, default=""
        Where to get it when there is no public archive (a form, a shared drive).
    """

    name: str
    label: str  # how tables and figures name it
    load: Callable[..., CategoryData]  # load(category, root, **options)
    needs_root: bool
    detect: Callable[[Path], Match] | None = None
    fallback: bool = False
    root_category: bool = False
    aux: tuple[str, ...] = ()
    archive: Archive | None = None
    manual: str = ""


def _load_elpv(category: str, root, **options) -> CategoryData:
    return load_elpv(category, **options)


def _rooted(load: Callable[..., CategoryData], label: str) -> Callable[..., CategoryData]:
    """``load(root, category)`` as a registry loader, refusing a missing root."""
    def loader(category: str, root, **options) -> CategoryData:
        if root is None:
            raise LowdataError(f"a data set in the {label} layout needs its root folder (--data ROOT)")
        return load(root, category, **options)
    return loader


SOURCES: dict[str, Source] = {
    "mvtec": Source("mvtec", "MVTec AD", _rooted(load_mvtec, "MVTec"), True, detect_mvtec, fallback=True,
                    archive=MVTEC_ARCHIVE),
    "elpv": Source("elpv", "ELPV", _load_elpv, False),
    "mpdd": Source("mpdd", "MPDD", _rooted(load_mpdd, "MPDD"), True, detect_mpdd, manual=MPDD_MANUAL),
    "btad": Source("btad", "BTAD", _rooted(load_btad, "BTAD"), True, detect_btad, archive=BTAD_ARCHIVE),
    "mvtec2": Source("mvtec2", "MVTec AD 2", _rooted(load_mvtec2, "MVTec AD 2"), True, detect_mvtec2,
                     manual=MVTEC2_MANUAL),
    "mvtec3d": Source("mvtec3d", "MVTec 3D-AD", _rooted(load_mvtec3d, "MVTec 3D-AD"), True, detect_mvtec3d,
                      archive=MVTEC3D_ARCHIVE),
    "loco": Source("loco", "MVTec LOCO AD", _rooted(load_loco, "MVTec LOCO"), True, detect_loco, archive=LOCO_ARCHIVE),
    "visa": Source("visa", "VisA", _rooted(load_visa, "VisA"), True, detect_visa, aux=("split_csv",),
                   archive=VISA_ARCHIVE),
    "folder": Source("folder", "own parts", _rooted(load_folder, "good/bad folder"), True, detect_folder,
                     root_category=True),
}


def get_source(name: str) -> Source:
    """The registered source ``name``.

    Raises
    ------
    lowdata.LowdataError
        If there is none of that name.
    """
    if name not in SOURCES:
        raise LowdataError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


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
    """``source`` is ``'elpv'`` (categories mono, poly) or a folder layout of :data:`SOURCES` (``'mvtec'``,
    ``'btad'``...: a category folder under ``root``).

    Parameters
    ----------
    source : str
        The data source, a key of :data:`SOURCES`.
    category : str
        One of its categories (``mono`` or ``poly`` for ELPV; a category folder under ``root`` otherwise).
    root : str or Path or None, default=None
        The root folder (ignored for ELPV).
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
        If the source is unknown, a folder layout is given no root, or the loader finds no such category.
    """
    return get_source(source).load(category, root, **options)


def _detect_one(folder: Path, names: list[str]) -> tuple[str | None, str]:
    """The source whose layout ``folder`` is in (a specific layout before a fallback), and why; or ``None`` and
    what the closest layout misses."""
    matches, misses = [], []
    for name in names:
        found = SOURCES[name].detect(folder)
        (matches if found.missing is None else misses).append((name, found))
    if matches:
        name = min(matches, key=lambda m: SOURCES[m[0]].fallback)[0]  # stable: registry order among equals
        return name, f"{SOURCES[name].label} layout"
    name, found = max(misses, key=lambda m: m[1].found)  # the first of the closest
    if found.found == 0 and len(names) > 1:
        return None, "matches no layout: " + "; ".join(f"{SOURCES[n].label} {f.missing}" for n, f in misses)
    return None, f"not {SOURCES[name].label}: {found.missing}"


def source_of(root: str | Path | None, category: str) -> str:
    """The source whose layout ``root/category`` is in, what a command or a book page uses when no source is
    given: ``elpv`` without a root; ``folder`` also where ``root`` itself is the good/bad folder named
    ``category``; ``mvtec`` where none matches, whose loader then says which folder is missing."""
    if root is None:
        return "elpv"
    root = Path(root)
    names = [n for n, src in SOURCES.items() if src.detect is not None]
    if (root / category).is_dir():
        name, _ = _detect_one(root / category, names)
        if name is not None:
            return name
    if root.name == category and SOURCES["folder"].detect(root).missing is None:
        return "folder"
    return "mvtec"


def detect_sources(root: str | Path, source: str | None = None) -> list[tuple[str, str | None, str]]:
    """For each folder of ``root`` (hidden ones and a layout's own, such as VisA's ``split_csv``, left out), the
    source whose layout it is in, or why none is; ``root`` itself is the one category when it is in a layout
    whose root may be its category (a ``folder`` of ``good/`` and ``bad/``).

    Parameters
    ----------
    root : str or Path
        A folder of categories.
    source : str or None, default=None
        Only try this source's layout (``None``: every folder layout of :data:`SOURCES`).

    Returns
    -------
    list of tuple
        ``(category, source or None, reason)``, sorted by category: the reason names the layout matched, or
        which expected folder is missing (from the layout it comes closest to).

    Raises
    ------
    lowdata.LowdataError
        If ``root`` is not a folder or ``source`` is unknown or not a folder layout.
    """
    root = check_root(root)
    if source is not None and get_source(source).detect is None:
        raise LowdataError(f"the data source {source!r} is not read from a folder (it needs no --data)")
    names = [source] if source else [n for n, s in SOURCES.items() if s.detect is not None]
    for name in names:
        if SOURCES[name].root_category and SOURCES[name].detect(root).missing is None:
            return [(root.name, name, f"{SOURCES[name].label} layout (the root itself)")]
    aux = {a for n in names for a in SOURCES[n].aux}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in aux)
    return [(p.name, *_detect_one(p, names)) for p in folders]


def detected(root: str | Path, source: str | None = None) -> list[tuple[str, str]]:
    """The ``(source, category)`` pairs :func:`detect_sources` recognises under ``root``.

    Raises
    ------
    lowdata.LowdataError
        If ``root`` is not a folder, ``source`` is unknown, or no folder of ``root`` is in a known layout (the
        error says what the first folders miss).
    """
    found = detect_sources(root, source)
    pairs = [(src, cat) for cat, src, _ in found if src is not None]
    if not pairs:
        layout = f"the {get_source(source).label} layout" if source else "a known layout"
        why = "; ".join(f"{cat}: {reason}" for cat, _, reason in found[:3])
        raise LowdataError(f"no category in {layout} under {root}" + (f" ({why})" if why else " (no folder in it)"))
    return pairs


def available_categories(data_root: str | Path | None = None, elpv: bool = True,
                         categories: list[str] | None = None) -> list[tuple[str, str]]:
    """(source, category) pairs: ELPV mono and poly (unless ``elpv`` is false) and every category under
    ``data_root`` in a known layout (:func:`detect_sources`); ``categories`` keeps only those named (an unknown
    name is an error).

    Parameters
    ----------
    data_root : str or Path or None, default=None
        A folder of categories in the MVTec AD layout or another of :data:`SOURCES` (``None``: none).
    elpv : bool, default=True
        Include ELPV mono and poly.
    categories : list of str or None, default=None
        Keep only these categories (``None`` or empty: all).

    Returns
    -------
    list of tuple of str
        ``(source, category)`` pairs: ELPV's first, then the categories of ``data_root``, sorted.

    Raises
    ------
    lowdata.LowdataError
        If ``data_root`` holds no category, a named category is unknown, or nothing is left to run.
    """
    targets = [("elpv", c) for c in ELPV_CATEGORIES] if elpv else []
    if data_root is not None:
        targets += detected(data_root)
    if categories:
        known = {c for _, c in targets}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise LowdataError(f"unknown category {', '.join(map(repr, unknown))}; "
                               f"available: {', '.join(sorted(known))}")
        targets = [t for t in targets if t[1] in categories]
    if not targets:
        raise LowdataError("nothing to run: give a data root (--data ROOT) or keep the ELPV data")
    return targets
