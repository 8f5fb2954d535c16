"""The built book as artefacts readers get without building it (``make publish``, ``lowdata publish``).

:func:`publish` checks the built HTML (``_build/html``) and writes, into ``_build/publish/``:

- ``lowdata-book-<version>.zip``: the whole site under one folder, ``lowdata-book/``. It works opened
  from disk (``lowdata-book/index.html``) or from any static server: every link is relative, MathJax is
  served from the site itself (``make book-assets``), and no page loads a script from elsewhere (checked);
- ``lowdata-book-tables-<version>.zip`` and ``tables/``: every table a page shows, as CSV
  (:mod:`lowdata.book.tables`), with ``tables/index.csv`` naming the page each one comes from;
- ``SHA256SUMS``;
- ``.lowdata-publish.json``, the manifest: every file this run wrote, with its SHA-256.

Refused, with the command that fixes it: no built book; MathJax missing; a page loading a script from
another site; a page showing a folder of the building machine (:func:`lowdata.book.pages.machine_paths`).
Each file is written atomically, and the output folder holds only what this run wrote. A folder that is
not empty is written only when it is an earlier output: its manifest lists every file in it, each one
unchanged (same SHA-256); then exactly those files are removed. Any other file there (a user's, or one
changed since) and the folder is refused, nothing removed: names alone never make a folder ours.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..core.atomic import atomic_path
from ..core.errors import LowdataError, printable
from ..core.version import __version__
from .pages import machine_paths

#: a script (or a stylesheet) the page would fetch from another site: it would not work offline
REMOTE = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+""", re.I)
#: a fixed time for every zip entry: the same book gives the same archive
EPOCH = (2026, 1, 1, 0, 0, 0)
#: the manifest of an output folder: what publish wrote there, with SHA-256s (what a later run may remove)
MANIFEST = ".lowdata-publish.json"


def check_site(html: Path, folders: list[str]) -> list[str]:
    """Why the built site in ``html`` cannot be published as it is (empty: it can)."""
    problems = []
    if not (html / "index.html").is_file():
        return [f"no built book in {html}: build it first with `make run` (or `lowdata book`)"]
    if not (html / "_static" / "mathjax" / "tex-chtml.js").is_file():
        problems.append(f"MathJax is not in {html / '_static' / 'mathjax'}: run `make book-assets`, then `make run`")
    for page in sorted(html.rglob("*.html")):
        m = REMOTE.search(page.read_text(errors="replace"))
        if m:
            problems.append(f"{page.relative_to(html)} loads {m.group(0).split('=', 1)[1][1:]} from another site")
    for f, around in machine_paths(html, folders):
        problems.append(f"{f} shows a folder of this machine: {around}")
    return problems


def _zip(target: Path, files: list[tuple[Path, str]]) -> None:
    with atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for path, name in files:
                info = zipfile.ZipInfo(name, EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, whatever the platform: the same book, the same bytes
                info.external_attr = 0o644 << 16
                z.writestr(info, path.read_bytes(), compresslevel=9)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _regular(path: Path) -> bool:
    """A regular file itself (not a symbolic link, a folder, a pipe): the only kind hashed, and removed."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _listed(out: Path) -> dict[str, str]:
    """The files an earlier :func:`publish` wrote into ``out``, by its manifest: ``{relative path: SHA-256}``;
    empty when there is no manifest, or one that is damaged or names a path outside ``out``."""
    try:
        meta = json.loads((out / MANIFEST).read_text())
        files = meta["files"] if meta.get("written_by") == "lowdata publish" else {}
    except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return {}
    if not isinstance(files, dict):
        return {}
    ok = {}
    for name, digest in files.items():
        parts = PurePosixPath(name).parts if isinstance(name, str) else ()
        if not parts or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) \
                or not isinstance(digest, str):
            return {}  # a manifest that reaches out of the folder is not ours
        ok[name] = digest
    return ok


def _clear(out: Path) -> None:
    """An empty ``out``: made, or emptied of an earlier output (see the module's text); anything else is
    refused before a single file is removed (nothing a user owns is removed)."""
    if os.path.lexists(out) and not out.is_dir():
        raise LowdataError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        listed = _listed(out)
        found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                       if p.is_symlink() or not p.is_dir())
        if not listed:
            raise LowdataError(f"--out {out} is not empty and holds no manifest of an earlier `lowdata publish` "
                               f"({MANIFEST}): give an empty or new folder; nothing was removed")
        parents = {q.as_posix() for f in listed for q in PurePosixPath(f).parents}
        found += sorted(p.relative_to(out).as_posix() for p in out.rglob("*")  # a folder of the user's, even empty
                        if p.is_dir() and not p.is_symlink() and p.relative_to(out).as_posix() not in parents)
        foreign = [f for f in found if f != MANIFEST and f not in listed]
        changed = [f for f in found if f in listed and (not _regular(out / f) or _sha256(out / f) != listed[f])]
        if foreign or changed:
            named = ", ".join(printable(f) for f in (foreign + changed)[:3])
            more = f" and {len(foreign) + len(changed) - 3} more" if len(foreign) + len(changed) > 3 else ""
            raise LowdataError(f"--out {out} holds files an earlier `lowdata publish` did not write or that changed "
                               f"since ({named}{more}): move them, or give an empty or new folder; nothing was removed")
        for f in found:  # every one listed and unchanged (checked above): removed
            (out / f).unlink()
        for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            d.rmdir()  # emptied above: every file in it was ours
    out.mkdir(parents=True, exist_ok=True)


def publish(root: str | Path, out: str | Path | None = None, folders: list[str] = ()) -> dict:
    """Check ``<root>/_build/html`` and write the archives (see the module's text) to ``out``
    (default ``<root>/_build/publish``). ``folders``: absolute folders no page may show, besides the
    root. Returns what was written: paths, sizes, page and table counts."""
    root = Path(root).resolve()
    html = root / "_build" / "html"
    out = Path(out) if out is not None else root / "_build" / "publish"
    problems = check_site(html, [str(root), str(Path.home()), *folders])
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LowdataError("cannot publish the book: " + "; ".join(problems[:5]) + more)
    files = sorted(p for p in html.rglob("*") if p.is_file() and ".doctrees" not in p.parts and p.name != ".buildinfo")
    tables = sorted(p for p in (html / "tables").rglob("*.csv")) if (html / "tables").is_dir() else []
    _clear(out)
    book = out / f"lowdata-book-{__version__}.zip"
    _zip(book, [(p, "lowdata-book/" + p.relative_to(html).as_posix()) for p in files])
    index = io.StringIO()
    w = csv.writer(index, lineterminator="\n")
    w.writerow(["table", "page"])
    for t in tables:
        rel = t.relative_to(html / "tables")
        w.writerow([rel.as_posix(), rel.parent.as_posix() + ".html"])
    for t in tables:
        target = out / "tables" / t.relative_to(html / "tables")
        with atomic_path(target) as tmp:
            shutil.copyfile(t, tmp)
    with atomic_path(out / "tables" / "index.csv") as tmp:
        Path(tmp).write_text(index.getvalue())
    table_zip = out / f"lowdata-book-tables-{__version__}.zip"
    _zip(table_zip, [(out / "tables" / "index.csv", "tables/index.csv")]
         + [(t, "tables/" + t.relative_to(html / "tables").as_posix()) for t in tables])
    with atomic_path(out / "SHA256SUMS") as tmp:
        Path(tmp).write_text("".join(f"{_sha256(p)}  {p.name}\n" for p in (book, table_zip)))
    written = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    with atomic_path(out / MANIFEST) as tmp:
        Path(tmp).write_text(json.dumps({"written_by": "lowdata publish", "version": __version__,
                                         "files": {p.relative_to(out).as_posix(): _sha256(p) for p in written}},
                                        indent=1) + "\n")
    return {"book": book, "tables_zip": table_zip, "tables": out / "tables", "pages": sum(p.suffix == ".html" for p in files),
            "files": len(files), "n_tables": len(tables), "book_bytes": book.stat().st_size,
            "tables_bytes": table_zip.stat().st_size}
