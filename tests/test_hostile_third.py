"""Hostile and careless input, third round (issue 29): each case fails on the code before the fix.

The model file and the command line; tiny images (96 px) throughout."""
import json
import re

import numpy as np
import pytest

from lowdata import LowdataError
from lowdata.core.digests import file_hash
from lowdata.inspection.model import load_model

from test_hostile import _cli, _one_error_line, _terminal_safe, saved  # noqa: F401 (fixtures)
from test_model import elpv_images, good_folder  # noqa: F401 (fixtures)


def _edit(saved, change):
    meta = json.loads((saved / "model.json").read_text())
    change(meta)
    (saved / "model.json").write_text(json.dumps(meta))


def _rewrite_arrays(saved, change):
    """Apply ``change`` to the arrays and record the new file's digest, as a careful forger would."""
    meta = json.loads((saved / "model.json").read_text())
    npz = saved / meta["arrays"]["file"]
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size, names=sorted(arrays))
    (saved / "model.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- point 3: one rule for every writer
def test_score_out_does_not_replace_a_users_file_without_force(saved, good_folder, tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    rc, _, err = _cli(["score", saved, good_folder, "--out", notes, "--no-progress"], capsys)
    assert rc == 2 and "--out" in _one_error_line(err) and "exists: give another file, or --force" in err
    assert notes.read_text() == "my notes"
    rc, _, err = _cli(["score", saved, good_folder, "--out", notes, "--force", "--no-progress"], capsys)
    assert rc == 0 and json.loads(notes.read_text())["method"] == "maha-lw"


def test_refine_and_preview_outputs_are_not_replaced_without_force(tiny_mvtec, tmp_path, capsys):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    rc, _, err = _cli(["refine", tiny_mvtec / "widget" / "train" / "good", "--keep-list", keep, "--input-size", "96",
                       "--no-progress"], capsys)
    assert rc == 2 and "--keep-list" in _one_error_line(err) and keep.read_text() == "mine"
    png = tmp_path / "preview.png"
    png.write_bytes(b"mine")
    rc, _, err = _cli(["augment-preview", "--data", tiny_mvtec, "--category", "widget", "--out", png, "--size", "64"],
                      capsys)
    assert rc == 2 and "exists: give another file, or --force" in _one_error_line(err)
    assert png.read_bytes() == b"mine"


# ---------------------------------------------------------------- point 6: valid JSON, sane thresholds
@pytest.mark.parametrize("value", [5e-324, 1e-300, 1e300])
def test_a_threshold_no_ratio_can_be_divided_by_is_refused(saved, good_folder, capsys, value):
    _edit(saved, lambda m: m["threshold"].update(value=value))
    rc, out, err = _cli(["score", saved, good_folder, "--format", "json", "--no-progress"], capsys)
    assert rc == 2 and out == "" and "threshold.value must be a finite number from 1e-12 to 1e+12" in \
        _one_error_line(err)
    assert "warning" not in err  # point 14: no bare numpy warning either


def test_scores_json_is_valid_json_even_when_a_ratio_overflows(saved, good_folder, capsys, monkeypatch):
    from lowdata.inspection import model as model_module

    _edit(saved, lambda m: m["threshold"].update(value=1e-12))
    real = model_module.InspectionModel._score_features
    monkeypatch.setattr(model_module.InspectionModel, "_score_features",
                        lambda self, emb: (lambda s, m: (s * 0 + 1e300, m))(*real(self, emb)))
    rc, out, err = _cli(["score", saved, good_folder, "--format", "json", "--no-progress"], capsys)
    assert rc == 0 and "warning" not in err, err
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert all(r["ratio"] is None and r["verdict"] == "anomalous" for r in doc["images"])


# ---------------------------------------------------------------- point 8, 10, 18: the model file's text
@pytest.mark.parametrize("field", ["input_size", "oof_scores"])
def test_a_5000_digit_number_is_named_not_an_internal_error(saved, good_folder, capsys, field):
    text = (saved / "model.json").read_text()
    meta = json.loads(text)
    key = "backbone" if field == "input_size" else "threshold"
    meta[key][field] = "HUGE"
    (saved / "model.json").write_text(json.dumps(meta).replace('"HUGE"', "9" * 5000 if field == "input_size"
                                                              else "[" + "9" * 5000 + "]"))
    rc, _, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "unexpected" not in line and "model.json" in line and "digits" in line, line


@pytest.mark.parametrize("field", ["lowdata_version", "format", "format_version"])
def test_a_huge_value_is_quoted_short(saved, good_folder, capsys, field):
    _edit(saved, lambda m: m.update({field: "x" * 10_000_000}))
    rc, _, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and len(line) < 400 and "(10,000,000 characters)" in line, line[:500]


def test_a_missing_parameter_names_its_section(saved):
    _edit(saved, lambda m: m["detector"]["params"].pop("n_train"))
    with pytest.raises(LowdataError, match=r"model.json: detector.params lacks the field 'n_train'"):
        load_model(saved)


def test_quoted_caps_escapes_and_survives_what_repr_cannot_write():
    from lowdata.core.errors import quoted

    assert quoted("a\x1b[2J") == "'a\\x1b[2J'"
    assert quoted("x" * 1000).endswith("... (1,000 characters)") and len(quoted("x" * 1000)) < 110
    assert quoted(10 ** 5000) == "a whole number of about 5,001 digits"
    deep = []
    for _ in range(100_000):
        deep = [deep]
    assert "too deeply nested" in quoted(deep)


# ---------------------------------------------------------------- point 11: array errors name file, detector, level
def test_array_errors_name_the_file_the_detector_and_the_level(saved, good_folder, capsys):
    meta = json.loads((saved / "model.json").read_text())
    npz = meta["arrays"]["file"]
    name = next(k for k in meta["arrays"]["names"] if k.startswith("level1."))
    _rewrite_arrays(saved, lambda a: a.pop(name))
    rc, _, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and npz in line and f"bank level1 lacks the array '{name}'" in line, line
    _rewrite_arrays(saved, lambda a: a.update({"level0.location": np.zeros((1, 3), np.float32)}))
    rc, _, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and npz in line and "maha-lw" in line and "'level0.location' has shape (1, 3)" in line, line


# ---------------------------------------------------------------- point 13: argument errors in one line
@pytest.mark.parametrize("args, said", [
    (["policy", "search", "F", "--method", "knn", "--out", "p.json", "--budget", "abc"],
     "lowdata: error: --budget: 'abc' is not a whole number"),
    (["score", "MODEL", "--format", "xml"], "lowdata: error: --format: invalid choice: 'xml'"),
    (["score", "MODEL", "-part.png"], "use -- before file names that start with -"),
    (["fit", "F", "--fpr", "\x1b[31m"], "--fpr: '\\x1b[31m' is not a number"),
])
def test_argument_errors_are_one_line_without_the_usage_block(args, said, capsys):
    rc, out, err = _cli(args, capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and said in err and "usage:" not in err, err
    assert _terminal_safe(err)


# ---------------------------------------------------------------- point 14: numpy's warnings are explained
def test_a_numpy_warning_is_explained_and_placed():
    import warnings

    from lowdata.cli import _format_warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.float32(3e38) * np.float32(10)
    text = _format_warning(caught[0].message, caught[0].category, "/x/src/lowdata/inspection/overlays.py", 90)
    assert re.fullmatch(r"lowdata: warning: a computation went out of the range of floating-point numbers \(numpy: "
                        r"overflow encountered in .*, in lowdata/inspection/overlays.py:90\); .* defect\n", text), text
