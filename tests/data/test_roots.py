"""Several data roots at once: ``--data ROOT`` and ``--data NAME=ROOT``, the environment's roots, and the run's
targets (each category with its root), with the bad inputs each a line naming the value."""
from pathlib import Path

import pytest

from lowdata.core.errors import LowdataError
from lowdata.data.roots import (DataRoot, Target, env_name, env_roots, given_roots, page_root, parse_data, read_root,
                                run_targets, unique_roots)
from miniatures import build_btad, build_loco, build_visa_original


def test_a_data_value_is_a_folder_or_a_source_and_a_folder(tmp_path, monkeypatch):
    assert parse_data("/data/VisA") == DataRoot(Path("/data/VisA"), None)
    visa = parse_data("visa=/data/VisA")
    assert (visa.source, str(visa.path), str(visa)) == ("visa", "/data/VisA", "visa=/data/VisA")
    assert parse_data("MVTec=rel/x").source == "mvtec"  # a source's name in any case
    # relative folders are made absolute (the notebooks run in the book's folder), ~ expanded
    assert parse_data("MVTec=rel/x").path == Path.cwd() / "rel" / "x"
    assert parse_data("visa=~/VisA").path == Path.home() / "VisA"
    assert parse_data("../x/./y").path == Path.cwd().parent / "x" / "y"  # as the shell reads it
    assert parse_data("/a=b/c").source is None  # a separator before '=': a path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x=y").mkdir()  # an existing folder whose name holds '=' is that folder
    assert parse_data("x=y") == DataRoot(tmp_path / "x=y", None)
    for value, says in (("vsia=/d", "unknown data source 'vsia'"), ("elpv=/d", "not read from a folder"),
                        ("visa=", "no folder after visa="), ("", "empty folder name")):
        with pytest.raises(LowdataError, match=says):
            parse_data(value)


def test_the_environment_names_a_root_per_source_and_mvtec_root_is_kept(tmp_path):
    env = {"LOWDATA_VISA_ROOT": "/v", "LOWDATA_BTAD_ROOT": "/b", "MVTEC_ROOT": "/m", "HOME": "/h"}
    roots = env_roots(env)
    assert [(r.source, str(r.path), r.origin) for r in roots] == [
        ("btad", "/b", "LOWDATA_BTAD_ROOT"), ("visa", "/v", "LOWDATA_VISA_ROOT"), (None, "/m", "MVTEC_ROOT")]
    # MVTEC_ROOT naming the same folder as LOWDATA_MVTEC_ROOT is one root, read as MVTec AD
    same = env_roots({"LOWDATA_MVTEC_ROOT": "/m", "MVTEC_ROOT": "/m/"})
    assert [(r.source, str(r.path)) for r in same] == [("mvtec", "/m")]
    # another source's variable naming that folder does not hide MVTEC_ROOT; an empty variable names nothing
    other = env_roots({"LOWDATA_BTAD_ROOT": "/m", "MVTEC_ROOT": "/m", "LOWDATA_VISA_ROOT": " "})
    assert [(r.source, str(r.path)) for r in other] == [("btad", "/m"), (None, "/m")]
    assert env_name("mvtec3d") == "LOWDATA_MVTEC3D_ROOT"
    # --data replaces the environment's roots
    assert [str(r) for r in given_roots(["btad=/x"], env)] == ["btad=/x"]
    assert [str(r) for r in given_roots(None, env)] == ["btad=/b", "visa=/v", "/m"]


def test_several_roots_give_every_category_with_its_root(tmp_path, tiny_mvtec):
    visa, btad, loco = tmp_path / "VisA", tmp_path / "BTAD", tmp_path / "LOCO"
    build_visa_original(visa)
    build_btad(btad)
    build_loco(loco)
    roots = [parse_data(f"visa={visa}"), parse_data(str(btad)), DataRoot(tiny_mvtec), DataRoot(loco, "loco")]
    targets = run_targets(roots)
    assert targets == [Target("elpv", "mono", None), Target("elpv", "poly", None), Target("visa", "candle", visa),
                       Target("btad", "01", btad), Target("mvtec", "widget", tiny_mvtec),
                       Target("loco", "breakfast_box", loco)]
    # the same folder given twice is read once (with its source where one spelling gives it); categories by name
    # or source/name
    again = [DataRoot(btad / ".." / "BTAD"), parse_data(f"btad={btad}")]
    assert unique_roots(again) == [DataRoot(btad / ".." / "BTAD", "btad")]
    assert run_targets(roots + again, elpv=False, categories=["btad/01", "widget"]) == [
        Target("btad", "01", btad), Target("mvtec", "widget", tiny_mvtec)]


def test_bad_roots_are_one_line_naming_the_value(tmp_path, tiny_mvtec):
    btad = tmp_path / "BTAD"
    build_btad(btad)
    copy = tmp_path / "copy"
    build_btad(copy)
    with pytest.raises(LowdataError, match=r"btad/01 is under two data roots, .*BTAD and .*copy: give one of them"):
        run_targets([DataRoot(btad), DataRoot(copy)])
    # a forced layout the folder is not in: the value and what the layout misses
    with pytest.raises(LowdataError, match=r"--data visa=.*BTAD: no category in the VisA layout"):
        run_targets([parse_data(f"visa={btad}")])
    with pytest.raises(LowdataError, match=r"LOWDATA_LOCO_ROOT .*missing: data folder not found"):
        run_targets(env_roots({"LOWDATA_LOCO_ROOT": str(tmp_path / "missing")}))
    # Bottle and bottle under two roots would share a page and a results table on most file systems
    upper = tmp_path / "upper"
    build_btad(upper, cat="01")
    (upper / "01").rename(upper / "Ab")
    lower = tmp_path / "lower"
    build_btad(lower, cat="ab")
    with pytest.raises(LowdataError, match="btad/ab is under two data roots"):
        run_targets([DataRoot(upper), DataRoot(lower)])
    # one folder with two layouts
    with pytest.raises(LowdataError, match=r"--data loco=.*BTAD: the folder is also given as btad=.*one layout per"):
        run_targets([parse_data(f"btad={btad}"), parse_data(f"loco={btad}")])
    with pytest.raises(LowdataError, match="unknown category 'gizmo'; available: btad/01"):
        run_targets([DataRoot(btad)], elpv=False, categories=["gizmo"])
    with pytest.raises(LowdataError, match="nothing to run"):
        run_targets([], elpv=False)


def test_a_page_gets_its_root_with_its_source_only_where_the_layout_would_not_say_it(tmp_path, tiny_mvtec):
    btad = tmp_path / "BTAD"
    build_btad(btad)
    assert page_root(Target("elpv", "mono", None)) is None and read_root(None, "mono") == ("elpv", None)
    assert page_root(Target("btad", "01", btad)) == str(btad)  # recognised as BTAD
    assert read_root(str(btad), "01") == ("btad", btad)
    # MVTec AD's layout forced on a folder of another name: the page must be told, and reads it so
    forced = page_root(Target("mpdd", "widget", tiny_mvtec))
    assert forced == f"mpdd={tiny_mvtec}" and read_root(forced, "widget") == ("mpdd", tiny_mvtec)
    with pytest.raises(LowdataError, match="data_root vsia=/x: unknown data source 'vsia'"):
        read_root("vsia=/x", "01")
