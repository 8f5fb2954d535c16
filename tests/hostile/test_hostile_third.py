"""Hostile and careless input, third round (issue 29): each case fails on the code before the fix.

The model file and the command line; tiny images (96 px) throughout."""
import json
import re

import numpy as np
import pytest

from lowdata import LowdataError
from lowdata.core.digests import file_hash
from lowdata.inspection.model import load_model

from test_hostile import _cli, _one_error_line, _terminal_safe


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
                        lambda self, emb, views=(): (lambda s, m: (s * 0 + 1e300, m))(*real(self, emb, views)))
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
    (["score", "MODEL", "--format", "xml"], "lowdata: error: --format: unknown choice 'xml' (one of table, csv, json)"),
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

    from lowdata.console import format_warning as _format_warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.float32(3e38) * np.float32(10)
    text = _format_warning(caught[0].message, caught[0].category, "/x/src/lowdata/inspection/overlays.py", 90)
    assert re.fullmatch(r"lowdata: warning: a computation went out of the range of floating-point numbers \(numpy: "
                        r"overflow encountered in .*, in lowdata/inspection/overlays.py:90\); .* defect\n", text), text


# ---------------------------------------------------------------- point 1 (tables, progress bars)
def test_a_file_name_with_escapes_is_escaped_in_the_scores_table_and_the_progress_bar(saved, good_folder, tmp_path,
                                                                                       capsys):
    import shutil

    folder = tmp_path / "parts"
    folder.mkdir()
    for i, p in enumerate(sorted(good_folder.glob("*.png"))[:2]):
        shutil.copy(p, folder / f"part{i}\x1b[2J\x1b]0;pwned\x07.png")
    rc, out, err = _cli(["score", saved, folder], capsys)  # with the progress bar
    assert rc == 0 and "\\x1b[2J" in out, out
    assert "\x1b" not in out + err and "\x07" not in out + err, repr(out + err)


# ---------------------------------------------------------------- point 5: masks of another size than their image
def test_a_mask_of_another_size_than_its_image_is_said_once(tiny_mvtec):
    import warnings

    from PIL import Image

    from lowdata.data.dataset import load_masks
    from lowdata.data.sources import load_category

    data = load_category("mvtec", "widget", root=tiny_mvtec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same sizes: not a word
        same = load_masks(data.test, (20, 24))
    for s in data.test:
        if s.mask_path is not None:
            Image.open(s.mask_path).resize((77, 77), Image.NEAREST).save(s.mask_path)
    with pytest.warns(UserWarning) as caught:
        odd = load_masks(data.test, (20, 24))
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "2 of the 2 masks differ in size from their images" in said[0], said
    assert "is 77x77, its image" in said[0] and "48x40" in said[0] and odd.shape == same.shape == (4, 20, 24)


# ---------------------------------------------------------------- point 7: animated and multi-page images
@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_only_the_first_frame_is_read_and_that_is_said(tmp_path, suffix):
    from PIL import Image

    from lowdata.data.images import read_image

    frames = [Image.new("RGB", (32, 32), (40 * i, 0, 0)) for i in range(3)]
    path = tmp_path / f"moving{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match=rf"moving\{suffix} holds 3 frames .*: only the first is read"):
        img = read_image(path)
    assert img[0, 0, 0] == 0 and img.shape == (32, 32, 3)


# ---------------------------------------------------------------- point 9: damaged and foreign tables
def _tables(tmp_path):
    import pandas as pd

    bad = {"truncated": None, "random": np.random.default_rng(0).bytes(3000), "csv text": b"a,b\n1,2\n",
           "empty": b"", "foreign": None}
    out = {}
    for name, data in bad.items():
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        path = folder / "study-elpv-mono-efficientnet-lite0.parquet"
        if name == "foreign":
            pd.DataFrame({"x": [1, 2]}).to_parquet(path)
        elif name == "truncated":
            pd.DataFrame({"source": ["elpv"], "category": ["mono"], "backbone": ["b"], "method": ["knn"]}).to_parquet(path)
            path.write_bytes(path.read_bytes()[:200])
        else:
            path.write_bytes(data)
        out[name] = path
    return out


def test_verify_names_a_damaged_or_foreign_results_table(tmp_path, capsys):
    for name, path in _tables(tmp_path).items():
        rc, _, err = _cli(["verify", "--results", path.parent, "--run", tmp_path / "none.json"], capsys)
        line = _one_error_line(err)
        assert rc == 2 and str(path) in line and "unexpected" not in line, (name, line)
        assert ("is not a lowdata results table" if name == "foreign" else "is damaged") in line, (name, line)


def test_study_leaves_a_foreign_table_at_out_untouched(tiny_mvtec, tmp_path, capsys):
    import pandas as pd

    mine = tmp_path / "mine.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(mine)
    before = mine.read_bytes()
    rc, _, err = _cli(["study", "--data", tiny_mvtec, "--category", "widget", "--out", mine, "--sizes", "2",
                       "--reps", "1", "--methods", "knn", "--input-size", "96", "--cache", tmp_path / "cache",
                       "--scheduler", "none", "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "is not a lowdata results table: it lacks the column(s) source" in line, line
    assert "it is not touched: give another --out" in line and mine.read_bytes() == before
    assert not list(tmp_path.glob("mine.parquet.*"))  # no journal, no lock left, nothing set aside


def test_every_results_reader_goes_through_read_table():
    """One function reads tables: no module calls pandas' readers on a results table itself."""
    from pathlib import Path

    import lowdata

    src = Path(lowdata.__file__).parent
    direct = [f"{p.relative_to(src)}" for p in src.rglob("*.py")
              if re.search(r"pd\.read_parquet\(|pd\.read_csv\(", p.read_text()) and p.name != "tables.py"]
    # the packaged tables (paper figures, expected figures, anchors) are read from lowdata's own files
    assert sorted(direct) == ["book/beyond.py", "book/paper.py", "book/reproduce.py"], direct


# ---------------------------------------------------------------- point 12: a FIFO, a device
def test_a_fifo_or_a_device_is_named_for_what_it_is(saved, tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    rc, _, err = _cli(["score", saved, fifo], capsys)
    assert rc == 2 and "pipe.png is a named pipe (FIFO), not an image file or a folder" in _one_error_line(err)
    rc, _, err = _cli(["score", saved, "/dev/zero"], capsys)
    assert rc == 2 and "/dev/zero is a character device, not an image file or a folder" in _one_error_line(err)


# ---------------------------------------------------------------- point 15: a bad expected figure
def test_a_bad_expected_figure_is_named_by_line_and_value(tmp_path):
    from importlib import resources

    from lowdata.book.reproduce import read_expected

    lines = resources.files("lowdata.book").joinpath("expected_default.csv").read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    cells = lines[rows[3]].split(",")
    cells[-1] = "abc"
    lines[rows[3]] = ",".join(cells)
    path = tmp_path / "expected.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LowdataError, match=rf"expected.csv, line {rows[3] + 1}: the expected value 'abc' is not a "
                                           "finite number"):
        read_expected(path)


# ---------------------------------------------------------------- point 16: damaged cache entries
def test_damaged_cache_entries_are_one_warning_and_leak_no_file(lite0_small, elpv_images, tmp_path):
    import gc
    import warnings

    from lowdata.features.cache import EmbeddingCache
    from lowdata.features.encode import encode

    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    first = encode(lite0_small, elpv_images[0][:6], cache, progress=False)
    for i, k in enumerate(first.keys[:5]):
        path = cache.path(k)
        path.write_bytes(np.random.default_rng(i).bytes(path.stat().st_size) if i % 2 else path.read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = encode(lite0_small, elpv_images[0][:6], cache, progress=False)
        gc.collect()
    said = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert len(said) == 1 and said[0].startswith("UserWarning: 5 cache entries were damaged and are encoded again"), \
        said
    assert again.stats.encoded == 5 and again.stats.cached == 1
    for a, b in zip(again.pooled, first.pooled):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- found in review
def test_a_400_digit_threshold_is_refused_in_one_line(saved, good_folder, capsys):
    text = (saved / "model.json").read_text()
    meta = json.loads(text)
    meta["threshold"]["value"] = "HUGE"
    (saved / "model.json").write_text(json.dumps(meta).replace('"HUGE"', "1" + "0" * 400))
    rc, _, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "threshold.value must be a finite number" in line and "unexpected" not in line, line


def test_a_users_broken_csv_at_out_is_foreign_not_set_aside(tmp_path):
    from lowdata.core.tables import DamagedTable, ForeignTable, read_table

    mine = tmp_path / "notes.csv"
    mine.write_bytes(b"\xff\xfe not text at all \x00\x01")
    with pytest.raises(ForeignTable, match="notes.csv is not a lowdata results table"):
        read_table(mine, columns=("source", "category"))
    ours = tmp_path / "ours.csv"
    ours.write_bytes(b"source,category\nelpv,mono\n\xff\xfe\x00")
    with pytest.raises(DamagedTable, match="ours.csv is damaged"):
        read_table(ours, columns=("source", "category"))


def test_publish_never_hashes_a_listed_folder_or_pipe(tmp_path):
    import os

    from lowdata.book.publish import publish
    from conftest import built_site

    root = tmp_path / "repo"
    built_site(root)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    os.mkfifo(out / "pipe")
    (out / ".lowdata-publish.json").write_text(json.dumps(
        {"written_by": "lowdata publish", "files": {"sub": "0" * 64, "pipe": "0" * 64}}))
    with pytest.raises(LowdataError, match="did not write or that changed since"):
        publish(root, out)
    assert (out / "sub").is_dir() and (out / "pipe").exists()


def test_expected_figures_that_are_not_text_and_one_file_for_two_outputs(tmp_path, capsys):
    from lowdata.book.reproduce import read_expected

    binary = tmp_path / "expected.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(LowdataError, match="is not a table of expected figures: it is not UTF-8 text"):
        read_expected(binary)
    same = tmp_path / "out.txt"
    rc, _, err = _cli(["refine", tmp_path, "--keep-list", same, "--csv", same, "--no-progress"], capsys)
    assert rc == 2 and "--keep-list and --csv name the same file" in _one_error_line(err)
