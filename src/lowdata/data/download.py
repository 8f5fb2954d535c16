"""``lowdata download mvtec --to DIR``: fetch, verify and extract the official MVTec AD archive.

For users with internet (our own machines have none). The archive (about 5 GB) is downloaded to
``DIR/<name>.part``, resumed from where it stopped if that file exists (HTTP ``Range``, or a seek
for ``file://`` URLs), checked against its SHA-256, and only then renamed to ``DIR/<name>``. It is
extracted into a temporary folder inside ``DIR`` and each category folder is moved into place once
complete, so ``DIR`` never holds half a category. Extraction uses tarfile's ``data`` filter (no
absolute paths, links or devices escaping ``DIR``).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..core.digests import file_hash
from ..core.errors import LowdataError, printable
from .mvtec import list_categories

MVTEC_URL = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/"
    "download/420938113-1629952094/mvtec_anomaly_detection.tar.xz"
)
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
CHUNK = 1 << 20


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
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and verify it; return ``dest``."""
    if dest.is_file() and (sha256 is None or file_hash(dest) == sha256):
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
        except (urllib.error.URLError, OSError) as exc:
            raise LowdataError(
                f"download of {url} interrupted ({exc}); run the same command again to resume "
                f"from {part} ({part.stat().st_size} bytes so far)"
            ) from None
    if sha256 is not None:
        got = file_hash(part)
        if got != sha256:
            part.unlink()
            raise LowdataError(
                f"checksum mismatch for {url}: sha256 {got}, expected {sha256}. The partial file was "
                "removed; run the command again to download from scratch"
            )
    os.replace(part, dest)
    return dest


def extract(archive: Path, to: Path, progress: bool = True) -> list[str]:
    """Extract ``archive`` into ``to``; returns the top-level names it put there."""
    tmp = Path(tempfile.mkdtemp(prefix=".extracting-", dir=to))
    try:
        try:
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                for m in tqdm(members, desc=printable(f"extracting {archive.name}"), unit="file", disable=not progress):
                    tar.extract(m, tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
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


def download_mvtec(to: str | Path, url: str = MVTEC_URL, sha256: str | None = MVTEC_SHA256,
                   keep_archive: bool = True, progress: bool = True) -> list[str]:
    """Fetch, verify and extract MVTec AD into ``to``; returns the categories found there."""
    to = Path(to).expanduser()
    to.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "mvtec_anomaly_detection.tar.xz"
    archive = fetch(url, to / name, sha256, progress)
    extract(archive, to, progress)
    if not keep_archive:
        archive.unlink()
    found = list_categories(to)
    if not found:
        raise LowdataError(f"{archive} held no category in the MVTec AD layout (<category>/train/good)")
    return found
