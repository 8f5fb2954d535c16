"""``lowdata download`` for every source with a public archive, against a local HTTP server on 127.0.0.1 serving
small archives made by the test: the checksum checked before anything is extracted, an interrupted transfer
resumed with an HTTP Range request, zip files that try to write outside the folder refused, and the sources
without a public archive saying where to get them."""

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import pytest

from lowdata.cli import main
from lowdata.core.errors import LowdataError
from lowdata.data.download import download, downloadable
from lowdata.data.sources import SOURCES, load_category

from test_sources import build_btad, build_loco


class Server:
    """Files by name, with HTTP Range support; ``cut``: the first GET of a file stops after that many bytes."""

    def __init__(self):
        self.files, self.cut, self.ranges = {}, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                stop = server.cut.pop(self.path.lstrip("/"), None)
                self.wfile.write(data[start:stop] if stop is not None else data[start:])
                if stop is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


def _zip(folder, top):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{top}/{p.relative_to(folder)}")
    return buf.getvalue()


def _tar(folder):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for p in sorted(folder.iterdir()):
            tar.add(p, arcname=p.name)
    return buf.getvalue()


def test_every_source_has_an_archive_with_a_checksum_or_says_where_to_get_it():
    assert set(downloadable()) == {"mvtec", "btad", "loco", "mvtec3d", "visa", "mvtec2", "mpdd"}
    for name in downloadable():
        src = SOURCES[name]
        assert (src.archive is None) != (not src.manual), name
        if src.archive is not None:
            algorithm, value = src.archive.digest.split(":")
            assert {"sha256": 64, "md5": 32}[algorithm] == len(value) and src.archive.url.startswith("https://")


def test_a_zip_over_http_is_verified_extracted_and_read(server, tmp_path):
    build_btad(tmp_path / "src")
    data = _zip(tmp_path / "src", "BTech_Dataset_transformed")
    server.files["btad.zip"] = data
    root, found = download("btad", tmp_path / "out", url=f"{server.url}/btad.zip",
                           digest="sha256:" + hashlib.sha256(data).hexdigest(), progress=False)
    assert root == tmp_path / "out" / "BTech_Dataset_transformed" and found == ["01"]
    assert load_category("btad", "01", root).counts()["test/ko"] == 2
    assert (tmp_path / "out" / "btad.zip").read_bytes() == data and not list((tmp_path / "out").glob(".extracting-*"))


def test_a_wrong_checksum_is_never_extracted(server, tmp_path):
    build_loco(tmp_path / "src")
    server.files["loco.tar.xz"] = _tar(tmp_path / "src")
    with pytest.raises(LowdataError, match="checksum mismatch .*nothing was extracted"):
        download("loco", tmp_path / "out", url=f"{server.url}/loco.tar.xz", digest="md5:" + "0" * 32, progress=False)
    assert list((tmp_path / "out").iterdir()) == []  # no category, no archive, no partial file


def test_an_interrupted_transfer_resumes_where_it_stopped(server, tmp_path):
    build_loco(tmp_path / "src")
    data = _tar(tmp_path / "src")
    server.files["loco.tar.xz"] = data
    server.cut["loco.tar.xz"] = len(data) // 3
    url, md5 = f"{server.url}/loco.tar.xz", "md5:" + hashlib.md5(data).hexdigest()
    with pytest.raises(LowdataError, match="interrupted.*run the same command again to resume"):
        download("loco", tmp_path / "out", url=url, digest=md5, progress=False)
    part = tmp_path / "out" / "loco.tar.xz.part"
    assert part.stat().st_size == len(data) // 3 and not (tmp_path / "out" / "breakfast_box").exists()
    root, found = download("loco", tmp_path / "out", url=url, digest=md5, progress=False)
    assert server.ranges[-1] == f"bytes={len(data) // 3}-" and found == ["breakfast_box"] and root == tmp_path / "out"
    assert (tmp_path / "out" / "loco.tar.xz").read_bytes() == data and not part.exists()


def test_a_zip_member_outside_the_folder_is_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("01/train/ok/0000.png", b"x")
        z.writestr("../escaped.txt", b"gotcha")
    server.files["btad.zip"] = buf.getvalue()
    with pytest.raises(LowdataError, match="escaped.txt would be written outside the folder"):
        download("btad", tmp_path / "out", url=f"{server.url}/btad.zip", digest=None, progress=False)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "01").exists()


def test_sources_without_a_public_archive_say_where_to_get_them(tmp_path, capsys):
    with pytest.raises(LowdataError, match="after a form at https://www.mvtec.com/.*give its folder .*as --data"):
        download("mvtec2", tmp_path / "out")
    assert main(["download", "mpdd", "--to", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "https://github.com/stepanje/MPDD" in err and not (tmp_path / "out").exists()


def test_the_command_downloads_a_source_and_says_where_to_point_data(server, tmp_path, capsys):
    build_btad(tmp_path / "src")
    data = _zip(tmp_path / "src", "BTech_Dataset_transformed")
    server.files["btad.zip"] = data
    assert main(["download", "btad", "--to", str(tmp_path / "out"), "--url", f"{server.url}/btad.zip",
                 "--sha256", hashlib.sha256(data).hexdigest(), "--no-progress", "--remove-archive"]) == 0
    out = capsys.readouterr().out
    assert "BTAD in" in out and "1 categories (01)" in out and f"--data {tmp_path / 'out' / 'BTech_Dataset_transformed'}" in out
    assert not (tmp_path / "out" / "btad.zip").exists()
