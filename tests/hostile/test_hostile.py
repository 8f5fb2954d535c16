"""Hostile and careless input (issue 13): each case fails on the code before the fix."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from lowdata import LowdataError
from lowdata.data.images import image_size, list_images, read_image
from lowdata.inspection.model import fit_model, load_model
from lowdata.inspection.overlays import plan_overlays

from conftest import write_png


def _set(path, section, field, value):
    meta = json.loads((path / "model.json").read_text())
    meta[section][field] = value
    (path / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../etc/passwd", "detector-notes.npz"])
def test_arrays_file_outside_the_folder_is_refused_unread(saved, name):
    _set(saved, "arrays", "file", name)
    with pytest.raises(LowdataError, match=r"arrays.file must be a text matching detector-") as e:
        load_model(saved)
    assert "SHA-256" not in str(e.value) and "bytes" not in str(e.value)


def test_symlink_out_of_the_folder_is_refused(saved, tmp_path):
    npz = next(saved.glob("detector-*.npz"))
    outside = tmp_path / "elsewhere.npz"
    npz.rename(outside)
    npz.symlink_to(outside)
    with pytest.raises(LowdataError, match="symbolic link out of the model folder"):
        load_model(saved)


@pytest.mark.parametrize("section, field, value, match", [
    ("threshold", "value", "abc", r"threshold.value must be a finite number from 1e-12 to 1e\+12, got 'abc'"),
    ("threshold", "value", float("nan"), r"threshold.value must be a finite number from 1e-12 to 1e\+12"),
    ("backbone", "input_size", "big", r"backbone.input_size must be a whole number from 32 to 1024"),
    ("backbone", "input_size", 1000000, r"backbone.input_size must be a whole number from 32 to 1024"),
    ("arrays", "names", None, r"arrays.names must be a list"),
    ("training", "image_sizes", 7, r"training.image_sizes must be a list"),
])
def test_every_field_is_checked(saved, section, field, value, match):
    _set(saved, section, field, value)
    with pytest.raises(LowdataError, match=match):
        load_model(saved)


def test_missing_sha256_and_string_arrays(saved):
    meta = json.loads((saved / "model.json").read_text())
    del meta["arrays"]["sha256"]
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="arrays lacks the field 'sha256'"):
        load_model(saved)


def test_string_dtype_arrays_with_a_matching_hash_are_refused(saved):
    from lowdata.core.digests import file_hash

    meta = json.loads((saved / "model.json").read_text())
    npz = saved / meta["arrays"]["file"]
    with np.load(npz) as z:
        arrays = {k: (z[k].astype(str) if i == 0 else z[k]) for i, k in enumerate(z.files)}
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size)
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="a lowdata model holds floats only"):
        load_model(saved)
    npz.write_bytes(b"not a zip at all")  # hash matches, zip does not
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size)
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match="not a valid arrays file"):
        load_model(saved)


def test_decompression_bomb_is_named(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (14000, 14000)).save(path, optimize=True)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(LowdataError, match=r"bomb.png is .*196,000,000 pixels, over the limit"):
        read_image(path)
    with pytest.raises(LowdataError, match=r"bomb.png is .*196,000,000 pixels"):
        image_size(path)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=100)
    out = read_image(path)
    assert out.shape == (40, 20, 3) and image_size(path) == (20, 40)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the white half is now on top


def test_dangling_symlinks_and_special_files_are_warned(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.warns(UserWarning, match=r"gone.png \(dangling symlink\).*pipe.png \(not a regular file\)"):
        assert [p.name for p in list_images(tmp_path)] == ["a.png"]


def test_overlays_never_replace_a_users_file(tmp_path):
    imgs = [write_png(tmp_path / "parts" / f"{i}.png", np.zeros((4, 4, 3), np.uint8)) for i in range(2)]
    with pytest.raises(LowdataError, match="holds images being scored"):
        plan_overlays(tmp_path / "parts", imgs)
    (tmp_path / "heat").mkdir()
    (tmp_path / "heat" / "0.heatmap.png").write_bytes(b"mine")
    with pytest.raises(LowdataError, match="0.heatmap.png exists and was not written by lowdata"):
        plan_overlays(tmp_path / "heat", imgs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(LowdataError, match="is a file, not a folder"):
        plan_overlays(tmp_path / "file", imgs)
    targets = plan_overlays(tmp_path / "fresh", imgs)
    assert [t.name for t in targets] == ["0.heatmap.png", "1.heatmap.png"]
    targets[0].write_bytes(b"ours")
    assert plan_overlays(tmp_path / "fresh", imgs) == targets  # what lowdata wrote may be replaced


def test_save_replaces_only_a_lowdata_model(saved, tmp_path, good_folder, lite0_small):
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_text(json.dumps({"someone": "else"}))
    (other / "detector-notes.npz").write_bytes(b"x")
    model = load_model(saved)
    with pytest.raises(LowdataError, match="is not a lowdata model: not overwriting it"):
        model.save(other)
    assert (other / "detector-notes.npz").read_bytes() == b"x"
    keep = saved / "detector-000000000000.npz"  # not the model's arrays: a save leaves it
    keep.write_bytes(b"y")
    fit_model(good_folder, "knn", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False).save(saved)
    assert keep.exists() and load_model(saved).method == "knn"


# ------------------------------------------------------------------------------- the command line
def _cli(args, capsys):
    from lowdata.cli import main

    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("lowdata: warning:")]
    assert len(lines) == 1 and lines[0].startswith("lowdata: error: "), err
    return lines[0]


def test_scores_out_may_not_damage_the_model_nor_an_input(saved, good_folder, tmp_path, capsys, monkeypatch):
    from lowdata.inspection import model as model_module

    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    scored = []
    real_score = model_module.InspectionModel.score
    monkeypatch.setattr(model_module.InspectionModel, "score",
                        lambda self, *a, **k: (scored.append(1), real_score(self, *a, **k))[1])
    image = next(good_folder.glob("*.png"))
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "model.json").write_text((saved / "model.json").read_text())
    for out, match in [(saved / "model.json", "is inside the model folder"),
                       (saved / "scores.csv", "is inside the model folder"),
                       (other / "scores.csv", f"is inside the model folder {other}"),
                       (image, "has an image's suffix"),
                       (tmp_path, "is a folder")]:
        rc, _, err = _cli(["score", saved, good_folder, "--out", out, "--format", "csv", "--no-progress"], capsys)
        assert rc == 2 and match in _one_error_line(err), (out, err)
    copy = tmp_path / "copy.csv"  # an input named like a scores file
    copy.write_bytes(image.read_bytes())
    rc, _, err = _cli(["score", saved, copy, "--format", "csv", "--out", copy, "--no-progress"], capsys)
    assert rc == 2 and "is one of the images being scored" in _one_error_line(err)
    assert scored == []  # refused before any image was scored
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    rc, out, _ = _cli(["score", saved, good_folder, "--out", tmp_path / "scores.csv", "--no-progress"], capsys)
    assert rc == 0 and scored == [1] and (tmp_path / "scores.csv").read_text().startswith("image,score")


def test_heatmap_folder_is_checked_before_scoring(good_folder, lite0_small, tmp_path, capsys, monkeypatch):
    from lowdata.inspection import model as model_module

    fit_model(good_folder, "padim", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False).save(
        tmp_path / "padim")
    monkeypatch.setattr(model_module.InspectionModel, "score", lambda *a, **k: pytest.fail("scored"))
    before = {p.name: p.read_bytes() for p in good_folder.iterdir()}
    rc, _, err = _cli(["score", tmp_path / "padim", good_folder, "--heatmaps", good_folder, "--no-progress"], capsys)
    assert rc == 2 and "holds images being scored" in _one_error_line(err)
    (tmp_path / "notes").write_text("mine")
    rc, _, err = _cli(["score", tmp_path / "padim", good_folder, "--heatmaps", tmp_path / "notes"], capsys)
    assert rc == 2 and "is a file, not a folder" in _one_error_line(err)
    assert {p.name: p.read_bytes() for p in good_folder.iterdir()} == before
    assert (tmp_path / "notes").read_text() == "mine"


def test_fit_refuses_a_folder_that_is_not_a_model_before_encoding(good_folder, tmp_path, capsys, monkeypatch):
    from lowdata.inspection import model as model_module

    monkeypatch.setattr(model_module, "fit_model", lambda *a, **k: pytest.fail("encoded before the check"))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "model.json").write_text('{"mine": true}')
    (notes / "detector-notes.npz").write_bytes(b"x")
    rc, _, err = _cli(["fit", good_folder, "--out", notes, "--input-size", "96"], capsys)
    assert rc == 2 and "is not a lowdata model: not overwriting it" in _one_error_line(err)
    (notes / "model.json").unlink()
    rc, _, err = _cli(["fit", good_folder, "--out", notes, "--input-size", "96"], capsys)
    assert rc == 2 and "holds no model.json" in _one_error_line(err)
    assert (notes / "detector-notes.npz").read_bytes() == b"x"


def test_two_saves_into_one_folder_leave_a_whole_model(good_folder, lite0_small, tmp_path, monkeypatch):
    import threading
    import time

    from lowdata.inspection import model as model_module

    models = [fit_model(good_folder, m, backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
              for m in ("knn", "maha-lw")]
    from lowdata.inspection import store as store_module

    real = store_module._write_named_by_content

    def slow(*a, **k):  # widen the window between writing the arrays and model.json
        out = real(*a, **k)
        time.sleep(0.5)
        return out

    monkeypatch.setattr(store_module, "_write_named_by_content", slow)
    errors = []

    def save(m):
        try:
            m.save(tmp_path / "model")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for t in threads:
        t.start()
        time.sleep(0.2)  # the second save arrives while the first is between its arrays and model.json
    for t in threads:
        t.join()
    assert errors == []
    loaded = load_model(tmp_path / "model")  # model.json names an arrays file that is there
    assert loaded.method in ("knn", "maha-lw")
    assert [p.name for p in (tmp_path / "model").glob("detector-*.npz")] == [loaded.meta["arrays"]["file"]]
    assert not (tmp_path / "model" / ".lowdata.lock").exists()


def test_exclusive_lock_names_the_holder_and_takes_over_a_stale_one(tmp_path):
    import socket
    import subprocess
    import sys

    from lowdata.core.locks import exclusive_lock

    lock = tmp_path / "t.lock"
    with exclusive_lock(lock, "the table t"):
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(LowdataError, match=rf"the table t is in use by another lowdata run \(pid {os.getpid()} "):
            with exclusive_lock(lock, "the table t"):
                pass
    assert not lock.exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname(), "since": "then"}))
    with pytest.warns(UserWarning, match=rf"taking over the stale lock .*pid {int(gone.stdout)}"):
        with exclusive_lock(lock, "the table t"):
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    lock.write_text(json.dumps({"pid": 1, "host": "another-host", "since": "then"}))
    with pytest.raises(LowdataError, match="pid 1 on another-host"):  # never taken over from another host
        with exclusive_lock(lock, "the table t"):
            pass


def test_a_second_study_on_one_table_stops_at_once(tiny_mvtec, lite0_small, tmp_path):
    import socket

    from lowdata.features.cache import EmbeddingCache
    from lowdata.data.sources import load_category
    from lowdata.experiments.study import run_study
    from lowdata.experiments.design import StudyConfig

    data = load_category("mvtec", "widget", root=tiny_mvtec)
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    out = tmp_path / "r.csv"
    (tmp_path / "r.csv.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                                      "since": "now"}))
    with pytest.raises(LowdataError, match=rf"results table {out} is in use by another lowdata run "
                                           rf"\(pid {os.getppid()}"):
        run_study(data, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2]), out, progress=False)
    assert not out.exists() and not (tmp_path / "r.csv.journal.jsonl").exists()
    (tmp_path / "r.csv.lock").unlink()
    df = run_study(data, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2], reps=2), out, progress=False)
    assert len(df) == 2 and not (tmp_path / "r.csv.lock").exists()


# ------------------------------------------------------------------ full disks, read-only, denied
def _failing(errno_code, when):
    def fail(*a, **k):
        if when(*a):
            raise OSError(errno_code, os.strerror(errno_code))
        return fail.real(*a, **k)
    return fail


@pytest.mark.parametrize("code, cause", [(28, "no space left on the device"), (30, "read-only file system"),
                                         (13, "permission denied")])
def test_a_failed_model_save_is_one_line_and_leaves_no_folder(good_folder, lite0_small, tmp_path, monkeypatch,
                                                              code, cause):
    model = fit_model(good_folder, "maha-lw", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
    fail = _failing(code, lambda src, dst: str(dst).endswith(".npz"))
    fail.real = os.replace
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(LowdataError, match=rf"cannot write the model's arrays into {tmp_path / 'model'}: {cause}"):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()  # no empty model folder


def test_read_only_folder_and_full_disk_for_scores_and_journal(saved, good_folder, tiny_mvtec, lite0_small,
                                                               tmp_path, monkeypatch, capsys):
    import builtins
    import errno
    from pathlib import Path

    from lowdata.experiments import table as table_module
    from lowdata.features.cache import EmbeddingCache
    from lowdata.data.sources import load_category
    from lowdata.experiments.study import run_study
    from lowdata.experiments.design import StudyConfig

    fail = _failing(errno.EROFS, lambda path, *a, **k: str(path).startswith(str(tmp_path / "ro")))
    fail.real = Path.mkdir
    monkeypatch.setattr(Path, "mkdir", fail)
    rc, _, err = _cli(["score", saved, good_folder, "--out", tmp_path / "ro" / "s.csv", "--no-progress"], capsys)
    assert rc == 2 and _one_error_line(err) == (f"lowdata: error: cannot create the folder {tmp_path / 'ro'}: "
                                                "read-only file system")
    monkeypatch.undo()

    class FullJournal:  # the journal opens, then the disk is full at the first row
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    real_open = builtins.open
    monkeypatch.setattr(table_module, "open", lambda p, *a, **k: FullJournal(real_open(p, *a, **k))
                        if str(p).endswith(".journal.jsonl") else real_open(p, *a, **k), raising=False)
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    out = tmp_path / "r.csv"
    with pytest.raises(LowdataError, match=rf"cannot write the journal {out}.journal.jsonl: no space left on the"):
        run_study(data, lite0_small, cache, StudyConfig(methods=["knn"], sizes=[2]), out, progress=False)
    assert not (tmp_path / "r.csv.journal.jsonl").exists() and not out.exists()  # no 0-byte journal
    assert not (tmp_path / "r.csv.lock").exists()


# -------------------------------------------------------------------------- NaN never says normal
def test_nan_model_arrays_are_refused(saved, good_folder, tmp_path):
    from lowdata.core.digests import file_hash

    meta = json.loads((saved / "model.json").read_text())
    npz = saved / meta["arrays"]["file"]
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    first = sorted(arrays)[0]
    arrays[first] = arrays[first].copy()
    arrays[first].flat[0] = np.nan
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size)
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(LowdataError, match=rf"the array '{first}' holds NaN or infinite values: refused"):
        load_model(saved)


def test_nan_scores_are_refused_naming_the_image(saved, good_folder, monkeypatch):
    from lowdata.inspection import model as model_module

    model = load_model(saved)
    monkeypatch.setattr(model_module.InspectionModel, "_score_features",
                        lambda self, emb, views=(): (np.full(len(emb.keys), np.nan), None))
    with pytest.raises(LowdataError, match=r"the score of .*\.png is nan .*no verdict can be given"):
        model.score(good_folder, progress=False)


# ------------------------------------------------------------------ batch composition (point 14)
def test_an_images_features_do_not_depend_on_its_batch(elpv_images):
    """oneDNN picks kernels by the input's shape: a batch of one differs from larger batches (AVX-512), and
    on AVX2 an image's bits depend on the batch size and its place in the batch (benchmarks/batch_layout.py).
    Every image is run alone, so alone, in a batch of 4, and in that batch reversed give the same bits."""
    from lowdata.features.backbones import load_backbone
    from lowdata.features.encode import load_for

    bb = load_backbone("efficientnet-lite0", input_size=380)
    x = np.stack([load_for(bb, p) for p in elpv_images[0][:4]]).astype(np.float32)
    together = bb.forward(x)
    reversed_ = bb.forward(x[::-1])
    assert [t.shape for t in together] == [(4, *shape) for shape in bb.level_shapes]
    for j in range(4):
        alone = bb.forward(x[j:j + 1])
        assert all(np.array_equal(a[0], t[j]) for a, t in zip(alone, together)), j
        assert all(np.array_equal(r[3 - j], t[j]) for r, t in zip(reversed_, together)), j
    assert [t.shape for t in bb.forward(x[:0])] == [(0, *shape) for shape in bb.level_shapes]


# -------------------------------------------------------------------------- suffixes, --weights
@pytest.mark.parametrize("command", ["study", "pollution"])
def test_results_table_suffix_is_parquet_or_csv(command, tmp_path, capsys):
    rc, _, err = _cli([command, "--category", "mono", "--out", tmp_path / "results.txt"], capsys)
    assert rc == 2 and "a results table is written as .parquet or .csv (the suffix says which), not .txt" in \
        _one_error_line(err)
    assert not (tmp_path / "results.txt").exists()


@pytest.mark.parametrize("args", [["fit", "FOLDER", "--out", "OUT"], ["study", "--category", "mono"],
                                  ["encode"], ["book", "--no-build"], ["refine", "FOLDER"],
                                  ["pollution", "--category", "mono"]])
def test_weights_option_wherever_a_backbone_is_loaded(args, good_folder, tmp_path, capsys):
    args = [str(good_folder) if a == "FOLDER" else str(tmp_path / "m") if a == "OUT" else a for a in args]
    rc, _, err = _cli(args + ["--backbone", "efficientnet-b4", "--weights", tmp_path / "missing.h5"], capsys)
    assert rc == 2 and "EfficientNet-B4 weights file not found" in _one_error_line(err), err
    fake = tmp_path / "efficientnetb4_notop.h5"
    fake.write_bytes(b"not the weights")
    rc, _, err = _cli(args + ["--backbone", "efficientnet-b4", "--weights", fake], capsys)
    assert rc == 2 and "is not Keras' efficientnetb4_notop.h5 (md5" in _one_error_line(err)
    rc, _, err = _cli(args + ["--weights", fake], capsys)
    assert rc == 2 and "--weights is for the efficientnet-b4 backbone" in _one_error_line(err)


def test_score_takes_weights_too(saved, good_folder, tmp_path, capsys):
    rc, _, err = _cli(["score", saved, good_folder, "--weights", tmp_path / "w.h5"], capsys)
    assert rc == 2 and "--weights is for the efficientnet-b4 backbone; efficientnet-lite0" in _one_error_line(err)


# ------------------------------------------------------------------ no traceback reaches the user
@pytest.mark.parametrize("exc, line", [
    (RuntimeError("boom"), "lowdata: error: unexpected RuntimeError: boom; this is a lowdata defect: set "
                           "LOWDATA_DEBUG=1 for the traceback and report it"),
    (MemoryError(), "lowdata: error: out of memory; use fewer or smaller images, a smaller --input-size, or a "
                    "machine with more memory (set LOWDATA_DEBUG=1 for the traceback)"),
    (FileNotFoundError(2, "No such file or directory", "/x/y.png"),
     "lowdata: error: /x/y.png: No such file or directory (set LOWDATA_DEBUG=1 for the traceback)"),
])
def test_any_error_is_one_line_and_exit_2(exc, line, saved, good_folder, capsys, monkeypatch):
    from lowdata.inspection import model as model_module

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(model_module, "load_model", boom)
    monkeypatch.delenv("LOWDATA_DEBUG", raising=False)
    rc, _, err = _cli(["score", saved, good_folder], capsys)
    assert rc == 2 and err.strip() == line
    monkeypatch.setenv("LOWDATA_DEBUG", "1")
    with pytest.raises(type(exc)):
        _cli(["score", saved, good_folder], capsys)


# ------------------------------------------------------------------------- cache entries (point 11)
def test_a_damaged_cache_entry_is_encoded_again(lite0_small, elpv_images, tmp_path):
    import zipfile

    from lowdata.features.encode import cache_for, encode

    cache = cache_for(lite0_small, tmp_path / "cache")
    first = encode(lite0_small, elpv_images[0][:2], cache, progress=False)
    maps = first.spatial()
    path = cache.path(first.keys[0])
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"pooled_{lite0_small.levels[-1]}.npy")
    raw = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    raw[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0xFF  # CRC now wrong
    path.write_bytes(bytes(raw))
    assert cache.read_pooled(first.keys[1]) is not None
    with pytest.warns(UserWarning, match=rf"1 cache entry was damaged and is encoded again \(replaced\); "
                                         rf"cache entry {path} is damaged "):
        again = encode(lite0_small, elpv_images[0][:2], cache, progress=False)
    assert again.stats.encoded == 1 and again.stats.cached == 1
    for a, b in zip(again.spatial(), maps):
        np.testing.assert_array_equal(a, b)


def test_augment_preview_writes_one_image_atomically(tiny_mvtec, tmp_path, capsys):
    rc, _, err = _cli(["augment-preview", "--data", tiny_mvtec, "--category", "widget", "--out",
                       tmp_path / "p.txt"], capsys)
    assert rc == 2 and "give a .png, .jpg, .pdf or .svg file" in _one_error_line(err)
    rc, out, _ = _cli(["augment-preview", "--data", tiny_mvtec, "--category", "widget", "--size", "64",
                       "--images", "2", "--copies", "2", "--out", tmp_path / "p.png"], capsys)
    assert rc == 0 and Image.open(tmp_path / "p.png").format == "PNG"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_non_finite_features_are_refused_naming_the_image(lite0_small, elpv_images, tmp_path, monkeypatch):
    from lowdata.features.encode import cache_for, encode

    real = type(lite0_small).forward
    monkeypatch.setattr(type(lite0_small), "forward",
                        lambda self, batch: [np.where(o == o.flat[0], np.nan, o) for o in real(self, batch)])
    cache = cache_for(lite0_small, tmp_path / "cache")
    with pytest.raises(LowdataError, match=rf"non-finite \(NaN or infinite\) features for .*{elpv_images[0][0].name}"):
        encode(lite0_small, elpv_images[0][:2], cache, progress=False)
    assert not list(cache.dir.rglob("*.npz"))  # nothing of it cached


def test_a_folder_left_by_an_interrupted_first_save_may_be_saved_into(saved, tmp_path):
    from lowdata.inspection.store import check_model_folder

    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "detector-0123456789ab.npz").write_bytes(b"half")  # arrays written, model.json never came
    assert check_model_folder(cut) is None
    load_model(saved).save(cut)
    assert load_model(cut).method == "maha-lw" and (cut / "detector-0123456789ab.npz").read_bytes() == b"half"
    (cut / "model.json").unlink()
    (cut / "notes.txt").write_text("mine")
    with pytest.raises(LowdataError, match="holds no model.json: not overwriting"):
        check_model_folder(cut)


# ------------------------------------------------------------- control characters (issue 29, point 1)
HOSTILE_TEXT = ["0.1.0\r\x1b[32mlowdata: model OK, all images normal\x1b[0m", "0.1.0\x1b]0;pwned\x07", "0.1.0\x00x",
                "0.1.0\u202egnp.kcatta", "0.1.0\nlowdata: model OK"]


def _terminal_safe(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


@pytest.mark.parametrize("version", HOSTILE_TEXT)
def test_control_characters_from_a_model_file_never_reach_the_terminal(saved, good_folder, capsys, version):
    """A value from model.json is printed escaped (``\\x1b``, ``\\r``), on the one error line."""
    meta = json.loads((saved / "model.json").read_text())
    meta["lowdata_version"] = version
    (saved / "model.json").write_text(json.dumps(meta))
    rc, out, err = _cli(["score", saved, good_folder, "--no-progress"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and out == "" and _terminal_safe(err), repr(err)
    assert err.count("\n") == 1 and "version" in line, line


def test_control_characters_in_a_file_name_are_escaped_in_warnings(good_folder, tmp_path, capsys):
    """A folder entry named with an escape sequence is named in the warning, escaped."""
    import shutil

    folder = tmp_path / "images"
    shutil.copytree(good_folder, folder)
    (folder / "notes\x1b[2J\r.txt").write_text("not an image")
    from lowdata.cli import main
    from lowdata.console import format_warning as _format_warning

    with pytest.warns(UserWarning) as caught:
        main(["fit", str(folder), "--method", "maha-lw", "--backbone", "efficientnet-lite0", "--input-size", "96",
              "--out", str(tmp_path / "model"), "--cache", str(tmp_path / "cache"), "--no-progress"])
    printed = "".join(_format_warning(w.message, w.category, w.filename, w.lineno) for w in caught)
    assert "notes\\x1b[2J\\r.txt" in printed, printed
    assert _terminal_safe(printed) and printed.count("\n") == len(caught), repr(printed)


def test_printable_escapes_what_a_terminal_acts_on():
    from lowdata.core.errors import one_line, printable

    assert printable("a\x1b[31mb\r\x00\x07\u202ec") == "a\\x1b[31mb\\r\\x00\\x07\\u202ec"
    assert printable("café ✓ 日本") == "café ✓ 日本"
    assert one_line("first\nsecond\r") == "first second\\r"
