"""What the cache holds, and freeing it: ``lowdata cache``, ``lowdata cache prune``, ``lowdata cache clear``.

The cache (:mod:`lowdata.features.cache`) holds, per backbone key (backbone, input size, weights), small entries
(pooled vectors) and feature packs (the maps), each pack labelled with what was encoded (``elpv/mono``). This
module lists them per backbone and label (images, GB, last used), finds what no results table needs, and removes
it. It removes files under ``embeddings/``, ``maps/`` and ``store/`` (the aligned store of lowdata before feature
packs) of the cache folder and nothing else, and never while another run uses the cache: every process that
opens a cache registers in ``<cache>/.users/`` (:func:`lowdata.core.locks.register_use`); pruning takes
``<cache>/.admin.lock`` and stops if another live process is registered, and a run that starts meanwhile waits.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import LowdataError
from ..core.locks import exclusive_lock, live_users
from .packs import SUFFIX, DamagedPack, Pack

UNLABELLED = "(unlabelled)"
_UNREADABLE = "\x00"


@dataclass
class PackInfo:
    path: Path
    backbone: str
    label: str
    images: int
    bytes: int
    used: float  # last used (the pack's access time, set when a process opens it)
    keys: list[str] = field(default_factory=list)
    damaged: str = ""


def _packs(root: Path) -> list[PackInfo]:
    out = []
    for path in sorted((root / "maps").glob(f"*/*{SUFFIX}")):
        st = path.stat()
        try:
            pack = Pack.open(path)
            info = PackInfo(path, path.parent.name, pack.label or UNLABELLED, len(pack), st.st_size,
                            max(st.st_atime, st.st_mtime), pack.keys)
            pack.close()
        except DamagedPack as exc:
            info = PackInfo(path, path.parent.name, UNLABELLED, 0, st.st_size, st.st_mtime, damaged=str(exc))
        out.append(info)
    return out


def _printable(text: str) -> str:
    """``text`` with control characters escaped (a label comes from a file: it must not drive the terminal)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _split(backbone_key: str) -> tuple[str, str]:
    """``efficientnet-lite0-380px-<digest>`` -> ``("efficientnet-lite0", "380")``."""
    parts = backbone_key.rsplit("-", 2)
    if len(parts) == 3 and parts[1].endswith("px"):
        return parts[0], parts[1][:-2]
    return backbone_key, ""


def usage(root: str | Path) -> pd.DataFrame:
    """One row per (backbone key, label): images, GB, last used; plus entries and older stores."""
    root = Path(root)
    rows = []
    for p in _packs(root):
        name, size = _split(p.backbone)
        rows.append({"backbone": name, "input_size": size, "what": _printable(p.label), "images": p.images, "bytes": p.bytes,
                     "used": p.used, "packs": 1})
    table = pd.DataFrame(rows, columns=["backbone", "input_size", "what", "images", "bytes", "used", "packs"])
    if not table.empty:
        table = table.groupby(["backbone", "input_size", "what"], as_index=False).agg(
            {"images": "sum", "bytes": "sum", "used": "max", "packs": "sum"})
    extra = []
    for folder in sorted((root / "embeddings").glob("*")):
        if folder.is_dir():
            name, size = _split(folder.name)
            files = [f for f in folder.rglob("*.npz")]
            extra.append({"backbone": name, "input_size": size, "what": "(entries: pooled vectors)",
                          "images": len(files), "bytes": sum(f.stat().st_size for f in files),
                          "used": max((f.stat().st_mtime for f in files), default=0.0), "packs": 0})
    if (root / "store").is_dir():
        extra.append({"backbone": "(any)", "input_size": "", "what": "(older aligned feature store: unused, prunable)",
                      "images": 0, "bytes": _size(root / "store"), "used": (root / "store").stat().st_mtime,
                      "packs": 0})
    return pd.concat([table, pd.DataFrame(extra, columns=table.columns)], ignore_index=True) if extra else table


def format_usage(root: str | Path, reason: str) -> str:
    table = usage(root)
    head = f"cache: {root} ({reason})"
    if table.empty:
        return head + "\nempty"
    shown = table.assign(GB=(table["bytes"] / 1e9).round(2),
                         last_used=[time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "" for t in table["used"]])
    shown = shown[["backbone", "input_size", "what", "images", "GB", "last_used"]]
    return (f"{head}\n{shown.to_string(index=False)}\n"
            f"total: {table['bytes'].sum() / 1e9:.2f} GB")


def needed(results: str | Path) -> set[tuple[str, str]]:
    """The (backbone key, ``source/category``) of every row of every results table under ``results``."""
    out = set()
    folder = Path(results)
    if not folder.is_dir():
        return out
    for path in sorted(list(folder.rglob("*.parquet")) + list(folder.rglob("*.csv"))):
        try:
            df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
        except Exception:  # noqa: BLE001 - a table we cannot read names nothing (said by the caller's count)
            continue
        if {"backbone", "source", "category"} <= set(df.columns):
            for b, s, c in df[["backbone", "source", "category"]].drop_duplicates().itertuples(index=False):
                out.add((str(b), f"{s}/{c}"))
    return out


@dataclass
class Plan:
    """What a prune or clear removes: files, and the bytes they free."""

    packs: list[Path] = field(default_factory=list)
    entries: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # removed whole
    bytes: int = 0
    why: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(self.packs)} feature packs", f"{len(self.entries)} entries"]
        if self.folders:
            parts.append(", ".join(str(f) for f in self.folders))
        return f"{' and '.join(parts[:2])}{'; ' + parts[2] if len(parts) > 2 else ''}: {self.bytes / 1e9:.2f} GB"


def _pointers(root: Path, backbone: str) -> dict[Path, str | None]:
    """Every entry of ``backbone`` and the pack its maps are in (``None``: inline maps; ``""``: pooled vectors
    only; :data:`_UNREADABLE`: a damaged entry)."""
    out = {}
    for entry in (root / "embeddings" / backbone).rglob("*.npz"):
        try:
            with np.load(entry, allow_pickle=False) as z:
                out[entry] = str(z["pack"]) if "pack" in z.files else None
        except Exception:  # noqa: BLE001 - a damaged entry: removed too (it would be encoded again anyway)
            out[entry] = _UNREADABLE
    return out


def _entries_pointing(root: Path, backbone: str, names: set[str],
                      pointers: dict[Path, str | None] | None = None) -> list[Path]:
    """The entries of ``backbone`` whose maps are in one of the packs ``names`` (or in no existing pack)."""
    packs = root / "maps" / backbone
    pointers = _pointers(root, backbone) if pointers is None else pointers
    return [e for e, pack in pointers.items()
            if pack == _UNREADABLE or (pack and (pack in names or not (packs / pack).exists()))]


def plan_prune(root: str | Path, results: str | Path) -> Plan:
    """Packs no results table under ``results`` needs (their backbone and ``source/category`` in no row),
    damaged or unlabelled packs, the entries pointing to them or to no pack, and the older aligned store."""
    root = Path(root)
    keep = needed(results)
    plan = Plan()
    doomed: dict[str, set[str]] = {}
    pointers = {b.name: _pointers(root, b.name) for b in sorted((root / "embeddings").glob("*")) if b.is_dir()}
    used = {(b, pack) for b, entries in pointers.items() for pack in entries.values() if pack and pack != _UNREADABLE}
    for p in _packs(root):
        # damaged, of no results table, or pointed to by no entry (its images were encoded again elsewhere)
        if p.damaged or (p.backbone, p.label) not in keep or (p.backbone, p.path.name) not in used:
            plan.packs.append(p.path)
            plan.bytes += p.bytes
            doomed.setdefault(p.backbone, set()).add(p.path.name)
    for backbone, entries in pointers.items():
        for entry in _entries_pointing(root, backbone, doomed.get(backbone, set()), entries):
            plan.entries.append(entry)
            plan.bytes += entry.stat().st_size
    if (root / "store").is_dir():
        plan.folders.append(root / "store")
        plan.bytes += _size(root / "store")
    for tmp in list((root / "maps").glob("*/.pack-*.tmp")):
        plan.packs.append(tmp)
        plan.bytes += tmp.stat().st_size
    return plan


def plan_clear(root: str | Path, backbone: str | None = None, category: str | None = None) -> Plan:
    """Everything of the cache, or the packs of a backbone (its name, or its whole key) and/or a category
    (``mono`` or ``elpv/mono``), with their entries."""
    root = Path(root)
    plan = Plan()
    if backbone is None and category is None:
        for name in ("embeddings", "maps", "store"):
            if (root / name).is_dir():
                plan.folders.append(root / name)
                plan.bytes += _size(root / name)
        return plan
    doomed: dict[str, set[str]] = {}
    for p in _packs(root):
        name, _ = _split(p.backbone)
        if backbone is not None and backbone not in (name, p.backbone):
            continue
        if category is not None and category not in (p.label, p.label.split("/")[-1]):
            continue
        plan.packs.append(p.path)
        plan.bytes += p.bytes
        doomed.setdefault(p.backbone, set()).add(p.path.name)
    for key, names in doomed.items():
        for entry in _entries_pointing(root, key, names):
            plan.entries.append(entry)
            plan.bytes += entry.stat().st_size
    return plan


def carry_out(root: str | Path, plan: Plan) -> None:
    """Remove what ``plan`` lists, holding the cache's admin lock; refused while another run uses the cache."""
    root = Path(root)
    with exclusive_lock(root / ".admin.lock", f"the cache {root}"):
        others = live_users(root / ".users")
        if others:
            raise LowdataError(f"the cache {root} is in use by another lowdata run ({others[0]}): nothing removed; "
                               "run this again once it has finished")
        for path in plan.packs + plan.entries:
            path.unlink(missing_ok=True)
        for folder in plan.folders:
            shutil.rmtree(folder, ignore_errors=True)
        for folder in (root / "embeddings", root / "maps"):  # folders left empty
            for sub in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the file system of ``folder`` (or of its nearest existing parent)."""
    folder = Path(folder).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def labelled_images(root: str | Path, backbone: str, label: str, input_size: int) -> int:
    """How many images of ``label`` the packs of ``backbone`` at ``input_size`` hold (what a run need not encode
    again)."""
    return sum(p.images for p in _packs(Path(root)) if _split(p.backbone) == (backbone, str(input_size))
               and p.label == label)

