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
    assert proc.returncode == 2 and "--backbone: unknown choice 'resnet' (one of efficientnet-lite0," in proc.stderr


def test_no_command_prints_the_short_help_and_an_unknown_one_the_closest(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lowdata") and "lowdata fit GOOD --out MODEL" in err and "Traceback" not in err
    assert main(["stdy", "--category", "mono"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lowdata: error: COMMAND: unknown command 'stdy'; did you mean study? (one of encode,")
    assert main(["frobnicate"]) == 2
    assert "did you mean" not in capsys.readouterr().err  # nothing close: no guess


def test_version_and_the_top_level_help(capsys):
    from lowdata import __version__

    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"lowdata {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and "the most common commands:" in out and "lowdata score MODEL IMAGES" in out


def test_categories(tiny_mvtec, capsys):
    assert main(["categories", "--data", str(tiny_mvtec)]) == 0
    assert "widget" in capsys.readouterr().out
