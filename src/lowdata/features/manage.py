"""What the cache holds, and freeing it: ``lowdata cache``, ``lowdata cache prune``, ``lowdata cache clear``.

The cache (:mod:`lowdata.features.cache`) holds, per backbone key (backbone, input size, weights), small entries
(pooled vectors) and feature packs (the maps), each pack labelled with what was encoded (``elpv/mono``). This
module lists them per backbone and label (images, GB, last used), finds what no results table needs, and removes
it.

What it removes is only what lowdata writes there, recognised by name and place: entries
``embeddings/<backbone>/<xx>/<key>.npz``, packs ``maps/<backbone>/<digest>.pack`` and their temporary files
``.pack-*.tmp``, and the ``.npy`` files of the aligned store of lowdata before packs (``store/``); then the
folders these leave empty. Symbolic links are not followed. Nothing is removed while another run uses the cache:
every process that opens a cache registers in ``<cache>/.users/`` (:func:`lowdata.core.locks.register_use`);
``prune`` and ``clear`` take ``<cache>/.admin.lock``, stop if another live process is registered, and make their
plan only then (a run that starts meanwhile waits for them).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..core.errors import LowdataError, printable
from ..core.locks import exclusive_lock, live_users
from ..core.tables import ForeignTable, read_table
from .packs import PACK_NAME, DamagedPack, Pack
from .keras_backbone import runtime

UNLABELLED = "(unlabelled)"
_UNREADABLE = "\x00"
_ENTRY = re.compile(r"[0-9a-f]{40,64}[A-Za-z0-9_.-]*\.npz")  # a content hash, then what made the copy, if any
_STORE_FILE = re.compile(r"[A-Za-z0-9_.]+-[0-9a-f]{16}\.npy(\.lock)?")


def _size(path: Path) -> int | None:
    """The file's size; ``None`` when it is gone (a live run renames and removes files as it goes)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _dirs(folder: Path) -> Iterator[Path]:
    """The real sub-folders of ``folder`` (no symbolic link followed)."""
    if folder.is_dir() and not folder.is_symlink():
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.is_symlink():
                yield sub


def _files(folder: Path, pattern: re.Pattern) -> Iterator[Path]:
    if folder.is_dir() and not folder.is_symlink():
        for f in sorted(folder.iterdir()):
            if pattern.fullmatch(f.name) and f.is_file() and not f.is_symlink():
                yield f


@dataclass
class PackInfo:
    path: Path
    backbone: str
    label: str
    images: int
    bytes: int
    used: float  # last used (the pack's access time, set when a process opens it)
    damaged: str = ""


def _packs(root: Path) -> list[PackInfo]:
    out = []
    for folder in _dirs(root / "maps"):
        for path in _files(folder, PACK_NAME):
            try:
                st = path.stat()
                try:
                    pack = Pack.open(path)
                    info = PackInfo(path, folder.name, pack.label or UNLABELLED, len(pack), st.st_size,
                                    max(st.st_atime, st.st_mtime))
                    pack.close()
                except DamagedPack as exc:
                    info = PackInfo(path, folder.name, UNLABELLED, 0, st.st_size, st.st_mtime, damaged=str(exc))
            except FileNotFoundError:  # removed meanwhile (a live run healing a damaged pack)
                continue
            out.append(info)
    return out


def _temporary(root: Path) -> list[Path]:
    return [f for folder in _dirs(root / "maps") for f in _files(folder, re.compile(r"\.pack-.*\.tmp"))]


def _pointers(root: Path, backbone: str) -> dict[Path, str | None]:
    """Every entry of ``backbone`` and the pack its maps are in (``None``: inline maps, an older lowdata's entry;
    ``""``: pooled vectors only; :data:`_UNREADABLE`: a damaged entry)."""
    out = {}
    for sub in _dirs(root / "embeddings" / backbone):
        for entry in _files(sub, _ENTRY):
            try:
                with np.load(entry, allow_pickle=False) as z:  # the pointer alone is read
                    out[entry] = str(z["pack"]) if "pack" in z.files else None
            except FileNotFoundError:
                continue
            except Exception:  # noqa: BLE001 - a damaged entry: removed too (it would be encoded again anyway)
                out[entry] = _UNREADABLE
    return out


def _pack_name(raw: str | None) -> str | None:
    """An entry's pack name as read: ``None`` (inline maps), ``""`` (pooled vectors only), a pack's name, or
    :data:`_UNREADABLE` (anything else: a damaged entry)."""
    if raw is None or raw == "" or raw == _UNREADABLE or PACK_NAME.fullmatch(raw):
        return raw
    return _UNREADABLE


_KEY = re.compile(r"(?P<name>.+)-(?P<size>\d+)px-[0-9a-f]{16}(?:-(?P<runtime>[a-z]+))?")


def _split(backbone_key: str) -> tuple[str, str, str]:
    """``efficientnet-lite0-380px-<digest>[-onnxruntime]`` -> ``("efficientnet-lite0", "380", "onnxruntime")``
    (``""`` for a key that names no runtime: TensorFlow's); a key of another form -> ``(key, "", "")``."""
    m = _KEY.fullmatch(backbone_key)
    if m is None:
        return backbone_key, "", ""
    return m["name"], m["size"], m["runtime"] or ""


def _shown(name: str, runtime: str) -> str:
    return printable(f"{name}, {runtime}" if runtime else name)


def usage(root: str | Path) -> pd.DataFrame:
    """One row per (backbone key, label): images, GB, last used; plus entries, older entries and stores."""
    root = Path(root)
    cols = ["backbone", "input_size", "what", "images", "bytes", "used"]
    rows = []
    for p in _packs(root):
        name, size, runtime = _split(p.backbone)
        rows.append({"backbone": _shown(name, runtime), "input_size": size, "what": printable(p.label), "images": p.images,
                     "bytes": p.bytes, "used": p.used})
    table = pd.DataFrame(rows, columns=cols)
    if not table.empty:
        table = table.groupby(["backbone", "input_size", "what"], as_index=False).agg(
            {"images": "sum", "bytes": "sum", "used": "max"})
    extra = []
    for folder in _dirs(root / "embeddings"):
        name, size, runtime = _split(folder.name)
        pointers = _pointers(root, folder.name)
        for what, pick in (("(entries: pooled vectors)", lambda v: v is not None),
                           ("(older lowdata's entries, maps inline: prunable)", lambda v: v is None)):
            files = [f for f, v in pointers.items() if pick(v)]
            sizes = [s for s in (_size(f) for f in files) if s is not None]
            if files:
                extra.append({"backbone": _shown(name, runtime), "input_size": size, "what": what, "images": len(files),
                              "bytes": sum(sizes), "used": 0.0})
    old = _store_files(root)
    if old:
        extra.append({"backbone": "(any)", "input_size": "", "what": "(older lowdata's aligned store: prunable)",
                      "images": 0, "bytes": sum(s for s in (_size(f) for f in old) if s), "used": 0.0})
    return pd.concat([table, pd.DataFrame(extra, columns=cols)], ignore_index=True) if extra else table


def format_usage(root: str | Path, reason: str) -> str:
    table = usage(root)
    head = f"cache: {printable(root)} ({reason})"
    if table.empty:
        return head + "\nempty"
    shown = table.assign(GB=(table["bytes"] / 1e9).round(2),
                         last_used=[time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "" for t in table["used"]])
    shown = shown[["backbone", "input_size", "what", "images", "GB", "last_used"]]
    return f"{head}\n{shown.to_string(index=False)}\ntotal: {table['bytes'].sum() / 1e9:.2f} GB"


@dataclass
class Needed:
    """What the results tables under a folder need: (backbone key, ``source/category``) pairs."""

    pairs: set[tuple[str, str]]
    tables: int
    unreadable: list[str]


def needed(results: str | Path) -> Needed:
    """The (backbone key, ``source/category``) of every row of every results table under ``results``."""
    out, tables, bad = set(), 0, []
    folder = Path(results)
    paths = sorted(list(folder.rglob("*.parquet")) + list(folder.rglob("*.csv"))) if folder.is_dir() else []
    for path in paths:
        try:
            df = read_table(path, columns=("backbone", "source", "category"), text=("backbone", "source", "category"))
        except ForeignTable:  # another kind of table (a user's, the moved-files list): it needs no entry
            continue
        except LowdataError as exc:  # damaged or unreadable: named by the caller, which then removes nothing
            bad.append(f"{printable(path)} ({type(exc).__name__})")
            continue
        tables += 1
        for b, s, c in df[["backbone", "source", "category"]].drop_duplicates().itertuples(index=False):
            out.add((str(b), f"{s}/{c}"))
    return Needed(out, tables, bad)


@dataclass
class Plan:
    """What a prune or clear removes: files, and the bytes they free."""

    packs: list[Path] = field(default_factory=list)
    entries: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # temporary packs, the older aligned store's files
    bytes: int = 0

    def add(self, kind: list, path: Path) -> None:
        size = _size(path)
        if size is not None:
            kind.append(path)
            self.bytes += size

    def empty(self) -> bool:
        return not (self.packs or self.entries or self.others)

    def describe(self) -> str:
        more = f" and {len(self.others)} other files (temporary packs, an older lowdata's store)" if self.others else ""
        return f"{len(self.packs)} feature packs and {len(self.entries)} entries{more}: {self.bytes / 1e9:.2f} GB"


def _store_files(root: Path) -> list[Path]:
    return [f for b in _dirs(root / "store") for d in _dirs(b) for f in _files(d, _STORE_FILE)]


def _entries_pointing(pointers: dict[Path, str | None], packs: Path, names: set[str]) -> list[Path]:
    """The entries whose maps are in one of the packs ``names`` or in no existing pack, the damaged ones, and the
    older lowdata's entries with inline maps."""
    out = []
    for entry, raw in pointers.items():
        pack = _pack_name(raw)
        if pack is None or pack == _UNREADABLE or (pack and (pack in names or not (packs / pack).exists())):
            out.append(entry)
    return out


def plan_prune(root: str | Path, keep: Needed) -> Plan:
    """Packs no results table needs (their backbone and ``source/category`` in no row), damaged packs, packs no
    entry points to, the entries pointing to them or to no pack, older entries with inline maps, temporary
    packs and the older aligned store."""
    root = Path(root)
    plan = Plan()
    pointers = {b.name: _pointers(root, b.name) for b in _dirs(root / "embeddings")}
    used = {(b, _pack_name(v)) for b, entries in pointers.items() for v in entries.values()}
    doomed: dict[str, set[str]] = {}
    for p in _packs(root):
        if p.damaged or (p.backbone, p.label) not in keep.pairs or (p.backbone, p.path.name) not in used:
            plan.add(plan.packs, p.path)
            doomed.setdefault(p.backbone, set()).add(p.path.name)
    for backbone, entries in pointers.items():
        for entry in _entries_pointing(entries, root / "maps" / backbone, doomed.get(backbone, set())):
            plan.add(plan.entries, entry)
    for f in _temporary(root) + _store_files(root):
        plan.add(plan.others, f)
    return plan


def plan_clear(root: str | Path, backbone: str | None = None, category: str | None = None) -> Plan:
    """Everything lowdata wrote in the cache, or the packs of a backbone (its name, or its whole key) and/or a
    category (``mono`` or ``elpv/mono``), with their entries."""
    root = Path(root)
    plan = Plan()
    everything = backbone is None and category is None
    doomed: dict[str, set[str]] = {}
    for p in _packs(root):
        name = _split(p.backbone)[0]
        if backbone is not None and backbone not in (name, p.backbone):
            continue
        if category is not None and category not in (p.label, p.label.split("/")[-1]):
            continue
        plan.add(plan.packs, p.path)
        doomed.setdefault(p.backbone, set()).add(p.path.name)
    for folder in _dirs(root / "embeddings"):
        pointers = _pointers(root, folder.name)
        for entry in (list(pointers) if everything else
                      _entries_pointing(pointers, root / "maps" / folder.name, doomed.get(folder.name, set()))
                      if folder.name in doomed else []):
            plan.add(plan.entries, entry)
    if everything:
        for f in _temporary(root) + _store_files(root):
            plan.add(plan.others, f)
    return plan


def carry_out(root: str | Path, make_plan: Callable[[], Plan], say: Callable[[Plan], None]) -> Plan:
    """Under the cache's admin lock, with no other run using the cache: make the plan, say it, remove what it lists
    and the folders that leaves empty (in ``embeddings/``, ``maps/``, ``store/`` only)."""
    root = Path(root)
    with exclusive_lock(root / ".admin.lock", f"the cache {root}"):
        others = live_users(root / ".users")
        if others:
            raise LowdataError(f"the cache {root} is in use by another lowdata run ({others[0]}): nothing removed; "
                               "run this again once it has finished")
        plan = make_plan()
        say(plan)
        for path in plan.packs + plan.entries + plan.others:
            path.unlink(missing_ok=True)
        for top in ("embeddings", "maps", "store"):
            for a in list(_dirs(root / top)):
                for b in list(_dirs(a)):
                    _rmdir(b)
                _rmdir(a)
            _rmdir(root / top)
    return plan


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()  # only when empty
    except OSError:
        pass


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the file system of ``folder`` (or of its nearest existing parent)."""
    import shutil

    folder = Path(folder).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def labelled_images(root: str | Path, backbone: str, label: str, input_size: int) -> int:
    """How many images of ``label`` the packs of ``backbone`` at ``input_size`` hold (what a run need not encode
    again)."""
    here = (backbone, str(input_size), "" if runtime() == "tensorflow" else runtime())
    return sum(p.images for p in _packs(Path(root)) if _split(p.backbone) == here and p.label == label)
