"""The data roots of a run, several at once: ``--data ROOT`` (every category folder under it, each in the layout
it is recognised in) or ``--data NAME=ROOT`` (read in source ``NAME``'s layout only: ``visa=/data/VisA``), given
any number of times; without ``--data``, the environment's ``LOWDATA_<SOURCE>_ROOT`` (``LOWDATA_VISA_ROOT``...,
each read in its source's layout) and ``MVTEC_ROOT`` (recognised, as before there were other layouts).

:func:`run_targets` turns them into the run's :class:`Target` list: ELPV's categories, then every root's, each
with the root it is read from. The same category of the same source under two roots is refused (its page and
results table would be one), and so is a root that holds no category in a known layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

from ..core.errors import LowdataError
from .elpv import ELPV_CATEGORIES
from .sources import SOURCES, detected, get_source, source_of

#: the environment variable kept from before several roots: a root recognised folder by folder
LEGACY_ENV = "MVTEC_ROOT"


def env_name(source: str) -> str:
    """``LOWDATA_VISA_ROOT`` for ``visa``: the variable naming a source's root."""
    return f"LOWDATA_{source.upper()}_ROOT"


@dataclass(frozen=True)
class DataRoot:
    """A folder of categories, and the source whose layout it is read in (``None``: recognised per folder).

    Attributes
    ----------
    path : Path
        The folder.
    source : str or None
        The layout forced on it (``--data visa=ROOT``, ``LOWDATA_VISA_ROOT``), or ``None``.
    origin : str
        Where it was given (``--data``, ``LOWDATA_VISA_ROOT``), for messages.
    """

    path: Path
    source: str | None = None
    origin: str = "--data"

    def __str__(self) -> str:
        return f"{self.source}={self.path}" if self.source else str(self.path)


class Target(NamedTuple):
    """One category of a run: its source, its name and the root it is read from (``None`` for ELPV)."""

    source: str
    category: str
    root: Path | None


def _absolute(path: str) -> Path:
    """A folder as an absolute path (``~`` expanded): the notebooks run in the book's folder, not here."""
    return Path(os.path.abspath(os.path.expanduser(path.strip())))  # ../x as the shell would read it


def parse_data(value: str, origin: str = "--data") -> DataRoot:
    """``ROOT`` or ``NAME=ROOT`` (``NAME`` a folder layout of :data:`~lowdata.data.sources.SOURCES`).

    A text before ``=`` with no path separator is taken as a source's name, unless the whole value is an existing
    path (a folder whose name holds ``=``).

    Raises
    ------
    lowdata.LowdataError
        If the name is no source, or a source that is not read from a folder (ELPV), or the folder is empty.
    """
    text = str(value)
    name, sep, path = text.partition("=")
    if not sep or os.sep in name or "/" in name or Path(text).exists():
        if not text.strip():
            raise LowdataError(f"{origin}: empty folder name")
        return DataRoot(_absolute(text), None, origin)
    name = name.strip().lower()
    if name not in SOURCES:
        raise LowdataError(f"{origin} {text}: unknown data source {name!r}; known: "
                           f"{', '.join(n for n, s in SOURCES.items() if s.detect is not None)}")
    if get_source(name).detect is None:
        raise LowdataError(f"{origin} {text}: the data source {name!r} is not read from a folder (it needs no --data)")
    if not path.strip():
        raise LowdataError(f"{origin} {text}: no folder after {name}=")
    return DataRoot(_absolute(path), name, origin)


def env_roots(environ: Mapping[str, str] | None = None) -> list[DataRoot]:
    """The roots the environment names: ``LOWDATA_<SOURCE>_ROOT`` for each folder layout, in the registry's order,
    then ``MVTEC_ROOT`` (recognised folder by folder) unless ``LOWDATA_MVTEC_ROOT`` names the same folder."""
    environ = os.environ if environ is None else environ
    roots = [DataRoot(_absolute(environ[env_name(n)]), n, env_name(n)) for n, s in SOURCES.items()
             if s.detect is not None and environ.get(env_name(n), "").strip()]
    legacy = environ.get(LEGACY_ENV, "").strip()
    mvtec = [r for r in roots if r.source == "mvtec"]
    if legacy and not any(r.path.resolve() == _absolute(legacy).resolve() for r in mvtec):
        roots.append(DataRoot(_absolute(legacy), None, LEGACY_ENV))
    return roots


def given_roots(values: list[str] | None, environ: Mapping[str, str] | None = None) -> list[DataRoot]:
    """The command line's ``--data`` values (each :func:`parse_data`), or, when there are none, the environment's
    (:func:`env_roots`)."""
    return [parse_data(v) for v in values] if values else env_roots(environ)


def unique_roots(roots: list[DataRoot]) -> list[DataRoot]:
    """``roots`` with each folder once (compared as resolved paths), in the order given: where a folder is given
    with a source and without, the one with its source.

    Raises
    ------
    lowdata.LowdataError
        If a folder is given with two different sources.
    """
    kept: dict[Path, DataRoot] = {}
    for root in roots:
        key = root.path.resolve()
        before = kept.get(key)
        if before is not None and before.source and root.source and before.source != root.source:
            raise LowdataError(f"{root.origin} {root}: the folder is also given as {before}: one layout per folder")
        if before is None or (root.source and not before.source):
            kept[key] = root if before is None else DataRoot(before.path, root.source, root.origin)
    return list(kept.values())


def run_targets(roots: list[DataRoot], elpv: bool = True, categories: list[str] | None = None) -> list[Target]:
    """ELPV's categories (unless ``elpv`` is false), then every category of each root, in the order given.

    Parameters
    ----------
    roots : list of DataRoot
        The folders of categories (a folder given twice is read once).
    elpv : bool, default=True
        Include ELPV mono and poly.
    categories : list of str or None, default=None
        Keep only these categories (``source/category`` or a bare name; ``None`` or empty: all).

    Returns
    -------
    list of Target

    Raises
    ------
    lowdata.LowdataError
        If a root holds no category in a known layout (or in its forced one), a category of a source is under two
        roots, a named category is unknown, or nothing is left to run.
    """
    targets = [Target("elpv", c, None) for c in ELPV_CATEGORIES] if elpv else []
    seen: dict[tuple[str, str], Path] = {}
    for root in unique_roots(roots):
        try:
            pairs = detected(root.path, root.source)
        except LowdataError as exc:
            raise LowdataError(f"{root.origin} {root}: {exc}") from None
        for source, category in pairs:
            key = (source, category.lower())  # Bottle and bottle would share a page on most file systems
            if key in seen:
                raise LowdataError(f"{source}/{category} is under two data roots, {seen[key]} and {root.path}: "
                                   "give one of them")
            seen[key] = root.path
            targets.append(Target(source, category, root.path))
    if categories:
        known = {f"{t.source}/{t.category}" for t in targets} | {t.category for t in targets}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise LowdataError(f"unknown category {', '.join(map(repr, unknown))}; available: "
                               f"{', '.join(sorted(f'{t.source}/{t.category}' for t in targets))}")
        targets = [t for t in targets if t.category in categories or f"{t.source}/{t.category}" in categories]
    if not targets:
        raise LowdataError("nothing to run: give a data root (--data ROOT or --data NAME=ROOT) or keep the ELPV data")
    return targets


def read_root(data_root: str | None, category: str) -> tuple[str, Path | None]:
    """A page's ``data_root`` parameter as ``(source, root)``: ``None`` is ELPV; ``ROOT`` is read in the layout
    its category folder is recognised in; ``SOURCE=ROOT`` (as ``--data``) in that source's layout.

    Raises
    ------
    lowdata.LowdataError
        As :func:`parse_data`.
    """
    if data_root is None:
        return "elpv", None
    root = parse_data(data_root, "data_root")
    return root.source or source_of(root.path, category), root.path


def page_root(target: Target) -> str | None:
    """What a page of ``target`` gets as its ``data_root``: its root, with its source (``btad=ROOT``) only where
    the root's layout would not be recognised as that source (a layout forced with ``--data NAME=ROOT``)."""
    if target.root is None:
        return None
    same = source_of(target.root, target.category) == target.source
    return str(target.root) if same else f"{target.source}={target.root}"

