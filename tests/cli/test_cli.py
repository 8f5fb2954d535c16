"""The ``lowdata`` command: the encode table, and one-line errors with exit status 2."""
import subprocess
import sys

from conftest import REPO
from lowdata.cli import main


def test_encode_table_then_all_cached(tiny_mvtec, tmp_path, capsys):
    args = ["encode", "--no-elpv", "--data", str(tiny_mvtec), "--input-size", "64", "--cache", str(tmp_path / "c"),
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0 at 64px" in out
    rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines() if line.startswith("mvtec/")}
    assert rows[("mvtec/widget", "train")][2:5] == ["6", "0", "6"]
    assert rows[("mvtec/widget", "test")][2:5] == ["4", "0", "4"]
    assert main(args) == 0
    rows = {tuple(line.split()[:2]): line.split() for line in capsys.readouterr().out.splitlines()
            if line.startswith("mvtec/")}
    assert rows[("mvtec/widget", "train")][2:5] == ["6", "6", "0"]


def test_errors_are_one_line(tiny_mvtec, tmp_path, capsys):
    cases = [
        (["encode", "--data", str(tmp_path / "missing")], "data folder not found"),
        (["encode", "--no-elpv", "--data", str(tiny_mvtec), "--categories", "gizmo"], "unknown category 'gizmo'"),
        (["encode", "--no-elpv"], "nothing to run"),
        (["categories", "--data", str(tmp_path)], "no category"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("lowdata: error: ") and message in err and "Traceback" not in err


def test_unknown_backbone_is_refused_by_the_parser():
    proc = subprocess.run([sys.executable, "-m", "lowdata.cli", "encode", "--backbone", "resnet"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "invalid choice: 'resnet'" in proc.stderr


def test_categories(tiny_mvtec, capsys):
    assert main(["categories", "--data", str(tiny_mvtec)]) == 0
    assert "widget" in capsys.readouterr().out
