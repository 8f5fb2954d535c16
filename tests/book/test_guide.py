"""The user guide's generated pages and what a summary page says about what ran."""

import importlib.util

import pandas as pd
from conftest import REPO

from lowdata.book.summary import absent_sentence, run_status
from lowdata.cli import build_parser


def _extension():
    spec = importlib.util.spec_from_file_location("lowdata_sphinx", REPO / "book" / "_ext" / "lowdata_sphinx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_reference_is_the_parsers_help_of_every_command():
    ext = _extension()
    text = ext.command_reference()
    names = [name for name, _ in ext._subcommands(build_parser())]
    assert {"study", "fit", "score", "policy search", "cache prune", "book"} <= set(names)
    for name in names:
        assert f"## `lowdata {name}`" in text, name
    assert "--param NAME=VALUE" in text and "--version" in text  # options come from the parser itself
    # the page's marker is replaced by it when the book is built
    source = [(REPO / "book" / "guide" / "command-line.md").read_text()]
    ext._commands(None, ext.COMMANDS, source)
    assert ext.MARKER not in source[0] and "## `lowdata score`" in source[0]


def test_absent_data_is_one_sentence_and_failed_studies_stay_in_the_table():
    run = {"categories": [{"source": "elpv", "category": "mono", "status": "done", "seconds": 60, "error": ""},
                          {"source": "elpv", "category": "poly", "status": "failed", "seconds": 6,
                           "error": "LowdataError: disk full"}],
           "absent": ["bottle", "cable", "capsule"], "data_root": None}
    results = pd.DataFrame({"source": ["elpv"] * 3, "category": ["mono"] * 3})
    table = run_status(run, results)
    assert list(table.index) == ["elpv/mono", "elpv/poly"] and table.loc["elpv/poly", "study"] == "failed"
    assert table.loc["elpv/poly", "error"] == "LowdataError: disk full" and table.loc["elpv/mono", "result rows"] == 3
    assert absent_sentence(run).startswith("MVTec AD: not found; set `MVTEC_ROOT`")
    assert "bottle, cable, capsule" in absent_sentence({**run, "data_root": "$MVTEC_ROOT"})
    assert absent_sentence({**run, "absent": []}) == ""
    # a record of several roots: MVTec AD is given when one of its categories ran, whatever other roots there are
    several = {**run, "data_roots": ["visa=/data/VisA"]}
    assert absent_sentence(several).startswith("MVTec AD: not found")
    ran = {**several, "categories": [*run["categories"], {"source": "mvtec", "category": "wood", "status": "done",
                                                          "seconds": 1, "error": ""}]}
    assert "3 of its categories not under the MVTec root (bottle, cable, capsule)" in absent_sentence(ran)
