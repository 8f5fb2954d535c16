"""``lowdata download mvtec`` against a small local archive through a file:// URL."""
import hashlib
import tarfile

import numpy as np
import pytest

from conftest import write_png
from lowdata.cli import main
from lowdata.data.download import download_mvtec, fetch
from lowdata.core.errors import LowdataError
from lowdata.data.mvtec import load_mvtec


@pytest.fixture
def archive(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    for cat in ("bottle", "cable"):
        for i in range(3):
            write_png(src / cat / "train" / "good" / f"{i:03d}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_png(src / cat / "test" / "good" / "000.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_png(src / cat / "test" / "crack" / "000.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_png(src / cat / "ground_truth" / "crack" / "000_mask.png", np.full((64, 64), 255, np.uint8))
    (src / "license.txt").write_text("test archive")
    path = tmp_path / "mvtec_anomaly_detection.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for entry in sorted(src.iterdir()):
            tar.add(entry, arcname=entry.name)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verify_extract(archive, tmp_path):
    path, sha = archive
    found = download_mvtec(tmp_path / "out", url=path.as_uri(), sha256=sha, progress=False)
    assert found == ["bottle", "cable"]
    d = load_mvtec(tmp_path / "out", "cable")
    assert d.counts() == {"train/good": 3, "test/crack": 1, "test/good": 1}
    assert (tmp_path / "out" / path.name).is_file()
    assert not list((tmp_path / "out").glob(".extracting-*"))


def test_resume_from_a_partial_file(archive, tmp_path):
    path, sha = archive
    out = tmp_path / "out"
    out.mkdir()
    data = path.read_bytes()
    (out / (path.name + ".part")).write_bytes(data[: len(data) // 3])
    dest = fetch(path.as_uri(), out / path.name, sha, progress=False)
    assert dest.read_bytes() == data
    assert not (out / (path.name + ".part")).exists()


def test_checksum_mismatch_removes_the_partial_file(archive, tmp_path):
    path, _ = archive
    with pytest.raises(LowdataError, match="checksum mismatch"):
        download_mvtec(tmp_path / "out", url=path.as_uri(), sha256="0" * 64, progress=False)
    assert not list((tmp_path / "out").iterdir())


def test_command_line(archive, tmp_path, capsys):
    path, sha = archive
    assert main(["download", "mvtec", "--to", str(tmp_path / "cli"), "--url", path.as_uri(), "--sha256", sha,
                 "--no-progress", "--remove-archive"]) == 0
    assert "2 categories (bottle, cable)" in capsys.readouterr().out
    assert not (tmp_path / "cli" / path.name).exists()
    assert main(["download", "mvtec", "--to", str(tmp_path / "x"), "--url", (tmp_path / "none.tar").as_uri(),
                 "--no-progress"]) == 2
    assert "archive not found" in capsys.readouterr().err


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "bogus.tar.xz"
    bogus.write_bytes(b"not a tar file at all")
    with pytest.raises(LowdataError, match="cannot extract .*bogus.tar.xz"):
        download_mvtec(tmp_path / "out", url=bogus.as_uri(), sha256=None, progress=False)
