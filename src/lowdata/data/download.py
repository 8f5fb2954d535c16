"""``lowdata download SOURCE --to DIR``: fetch, verify and extract a data set's public archive.

For users with internet (our own machines have none). Each source's module states its archive's URL and
published checksum (:class:`~lowdata.data.layout.Archive`: SHA-256, or MD5 where only that is published);
a source without a public archive (MVTec AD 2: a form; MPDD: a shared drive) says where to get it instead.
The archive is downloaded to ``DIR/<name>.part``, resumed from where it stopped if that file exists (HTTP
``Range``, or a seek for ``file://`` URLs), checked against its checksum, and only then renamed to
``DIR/<name>``: an archive with another checksum is removed and never extracted. It is extracted (tar, or
zip) into a temporary folder inside ``DIR`` and each top-level folder is moved into place once complete, so
``DIR`` never holds half a category. Extraction refuses members that would land outside ``DIR`` (tarfile's
``data`` filter; for zip files, each name checked), links and devices.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..core.digests import file_hash
from ..core.errors import LowdataError, printable
from .mvtec import ARCHIVE as MVTEC_ARCHIVE
from .sources import SOURCES, detected, get_source

MVTEC_URL = MVTEC_ARCHIVE.url
MVTEC_SHA256 = MVTEC_ARCHIVE.digest.split(":", 1)[1]
CHUNK = 1 << 20
ALGORITHMS = ("sha256", "md5")


def downloadable() -> list[str]:
    """The sources ``lowdata download`` knows: those with a public archive or a way to get them."""
    return [name for name, src in SOURCES.items() if src.archive is not None or src.manual]


def _parse_digest(digest: str | None) -> tuple[str, str] | None:
    """``"sha256:<hex>"`` or ``"md5:<hex>"`` (a bare hex of 64 digits is a SHA-256) as (algorithm, hex)."""
    if digest is None:
        return None
    algorithm, _, value = digest.rpartition(":")
    algorithm = algorithm or ("sha256" if len(value) == 64 else "md5" if len(value) == 32 else "")
    if algorithm not in ALGORITHMS or not value or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise LowdataError(f"checksum {digest!r}: give sha256:<64 hex digits> or md5:<32 hex digits>")
    return algorithm, value.lower()


def _open(url: str, offset: int):
    """Return ``(stream, total_size or None, resumed)`` starting at ``offset`` where possible."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.is_file():
            raise LowdataError(f"archive not found: {path}")
        f = open(path, "rb")
        f.seek(offset)
        return f, path.stat().st_size, True
    req = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except (urllib.error.URLError, OSError) as exc:
        raise LowdataError(f"cannot download {url}: {exc}") from None
    resumed = offset > 0 and resp.status == 206
    length = resp.headers.get("Content-Length")
    total = (int(length) + (offset if resumed else 0)) if length else None
    return resp, total, resumed


def fetch(url: str, dest: Path, sha256: str | None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and verify it against ``sha256`` (a SHA-256's hex,
    or ``"md5:<hex>"``/``"sha256:<hex>"``; ``None``: no check); return ``dest``."""
    expect = _parse_digest(sha256)
    if dest.is_file() and (expect is None or file_hash(dest, expect[0]) == expect[1]):
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    stream, total, resumed = _open(url, offset)
    if not resumed:
        offset = 0
    with stream, open(part, "ab" if resumed else "wb") as out, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, desc=printable(f"downloading {dest.name}"),
        disable=not progress,
    ) as bar:
        try:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise LowdataError(
                f"download of {url} interrupted ({exc}); run the same command again to resume "
                f"from {part} ({part.stat().st_size} bytes so far)"
            ) from None
    if total is not None and part.stat().st_size < total:
        raise LowdataError(f"download of {url} interrupted after {part.stat().st_size} of {total} bytes; run the "
                           f"same command again to resume from {part}")
    if expect is not None:
        got = file_hash(part, expect[0])
        if got != expect[1]:
            part.unlink()
            raise LowdataError(
                f"checksum mismatch for {url}: {expect[0]} {got}, expected {expect[1]}. The partial file was "
                "removed (nothing was extracted); run the command again to download from scratch"
            )
    os.replace(part, dest)
    return dest


def _extract_zip(archive: Path, tmp: Path, progress: bool) -> None:
    """A zip file's members into ``tmp``; a member whose path would leave ``tmp`` (absolute, ``..``) or that is a
    link is refused, naming it."""
    with zipfile.ZipFile(archive) as z:
        for info in tqdm(z.infolist(), desc=printable(f"extracting {archive.name}"), unit="file",
                         disable=not progress):
            target = (tmp / info.filename).resolve()
            if not target.is_relative_to(tmp.resolve()) or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise LowdataError(f"{archive}: the member {printable(info.filename)} would be written outside "
                                   "the folder (or is a link): refused, nothing extracted")
            z.extract(info, tmp)


def extract(archive: Path, to: Path, progress: bool = True) -> list[str]:
    """Extract ``archive`` into ``to``; returns the top-level names it put there."""
    tmp = Path(tempfile.mkdtemp(prefix=".extracting-", dir=to))
    try:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, tmp, progress)
            else:
                with tarfile.open(archive) as tar:
                    members = tar.getmembers()
                    for m in tqdm(members, desc=printable(f"extracting {archive.name}"), unit="file",
                                  disable=not progress):
                        tar.extract(m, tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise LowdataError(f"cannot extract {archive}: {exc}") from None
        names = []
        for entry in sorted(tmp.iterdir()):
            target = to / entry.name
            if target.exists():
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink()
            os.replace(entry, target)
            names.append(entry.name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download(source: str, to: str | Path, url: str | None = None, digest: str | None = "published",
             keep_archive: bool = True, progress: bool = True) -> tuple[Path, list[str]]:
    """Fetch, verify and extract ``source``'s public archive into ``to``; returns the data folder (``to``, or the
    folder of the archive that holds the categories) and the categories found there. ``url``: another copy of
    the archive (``file://`` works); ``digest``: ``"published"`` (the source's), a checksum, or ``None`` (none).

    Raises
    ------
    lowdata.LowdataError
        If the source is unknown or has no public archive (the message says where to get it), the download
        fails or is interrupted (run again to resume), the checksum differs (nothing is extracted), the archive
        cannot be extracted, or it holds no category in the source's layout.
    """
    src = get_source(source)
    if src.archive is None:
        raise LowdataError(src.manual or f"{src.label} has no archive to download (it is {source!r}: "
                           f"{'installed with lowdata' if not src.needs_root else 'your own folder'})")
    to = Path(to).expanduser()
    to.mkdir(parents=True, exist_ok=True)
    url = url or src.archive.url
    name = Path(urllib.parse.urlparse(url).path).name or Path(urllib.parse.urlparse(src.archive.url).path).name
    archive = fetch(url, to / name, src.archive.digest if digest == "published" else digest, progress)
    names = extract(archive, to, progress)
    if not keep_archive:
        archive.unlink()
    for root in [to, *(to / n for n in names if (to / n).is_dir())]:
        try:
            return root, [cat for _, cat in detected(root, source)]
        except LowdataError:
            continue
    raise LowdataError(f"{archive} held no category in the {src.label} layout (see lowdata categories --data {to})")


def download_mvtec(to: str | Path, url: str = MVTEC_URL, sha256: str | None = MVTEC_SHA256,
                   keep_archive: bool = True, progress: bool = True) -> list[str]:
    """Fetch, verify and extract MVTec AD into ``to``; returns the categories found there (:func:`download`)."""
    return download("mvtec", to, url=url, digest=sha256, keep_archive=keep_archive, progress=progress)[1]
