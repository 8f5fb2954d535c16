"""``lowdata cache``: what is on disk, prune what no results table needs, clear; never under a live run."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lowdata.cli import main
from lowdata.features import manage
from lowdata.features.cache import EmbeddingCache, cache_root_reason
from lowdata.features.packs import Pack, PackWriter

LEVELS = ("fine", "coarse")
KEY_A = "efficientnet-lite0-380px-aaaaaaaaaaaaaaaa"
KEY_B = "efficientnet-lite2-380px-bbbbbbbbbbbbbbbb"


def _fill(root: Path, key: str, label: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    cache = EmbeddingCache(root, key, LEVELS)
    keys = [f"{seed:02d}{i:062d}" for i in range(n)]
    w = PackWriter(cache.packs, LEVELS, key, label)
    for k in keys:
        w.add(k, [rng.normal(size=(4, 4, 8)).astype(np.float32), rng.normal(size=(2, 2, 8)).astype(np.float32)])
    path = w.close()
    for row, k in enumerate(keys):
        cache.write_entry(k, [np.zeros(8, np.float32)] * 2, path.name, row)
    return keys


@pytest.fixture
def filled(tmp_path):
    root = tmp_path / "cache"
    _fill(root, KEY_A, "elpv/mono", 5, 1)
    _fill(root, KEY_A, "elpv/poly", 3, 2)
    _fill(root, KEY_B, "elpv/mono", 4, 3)
    results = tmp_path / "results"
    results.mkdir()
    pd.DataFrame({"source": ["elpv"], "category": ["mono"], "backbone": [KEY_A], "auroc": [0.9]}).to_parquet(
        results / "study-elpv-mono.parquet")
    return root, results


def test_cache_lists_images_gb_and_last_used_per_backbone_size_and_category(filled, capsys, monkeypatch):
    root, _ = filled
    assert main(["cache", "--cache", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"cache: {root} (--cache)" in out
    lines = [l.split() for l in out.splitlines()]
    assert ["efficientnet-lite0", "380", "elpv/mono", "5"] in [l[:4] for l in lines]
    assert ["efficientnet-lite0", "380", "elpv/poly", "3"] in [l[:4] for l in lines]
    assert ["efficientnet-lite2", "380", "elpv/mono", "4"] in [l[:4] for l in lines]
    table = manage.usage(root)
    row = table[(table["what"] == "elpv/mono") & (table["backbone"] == "efficientnet-lite0")].iloc[0]
    # ONNX Runtime's features: the key's runtime said beside the backbone, the input size read (not blank), the
    # images counted as its own (what a run on that runtime need not encode again)
    _fill(root, KEY_A + "-onnxruntime", "elpv/mono", 2, 4)
    shown = manage.usage(root)
    ort = shown[shown["backbone"] == "efficientnet-lite0, onnxruntime"]
    assert set(ort["input_size"]) == {"380"} and ort[ort["what"] == "elpv/mono"]["images"].item() == 2
    for name, want in (("onnxruntime", 2), ("tensorflow", 5)):
        monkeypatch.setenv("LOWDATA_RUNTIME", name)
        assert manage.labelled_images(root, "efficientnet-lite0", "elpv/mono", 380) == want
    assert row["bytes"] == sum(p.stat().st_size for p in (root / "maps" / KEY_A).glob("*.pack")
                               if Pack.open(p).label == "elpv/mono")


def test_prune_removes_what_no_results_table_needs_and_says_how_much_first(filled, capsys):
    root, results = filled
    before = {p.name for p in root.rglob("*.pack")}
    assert main(["cache", "prune", "--cache", str(root), "--results", str(results), "--dry-run"]) == 0  # either place
    assert "would free 2 feature packs and 7 entries" in capsys.readouterr().out
    assert {p.name for p in root.rglob("*.pack")} == before  # a dry run removes nothing
    old = root / "store" / KEY_A / f"elpv-mono-{'ab' * 8}-s0"  # the aligned store of an older lowdata
    old.mkdir(parents=True)
    (old / "train-0123456789abcdef.npy").write_bytes(b"0" * 1000)
    (old / "notes.txt").write_text("mine")  # not the cache's: never touched, even inside its folders
    (root / "notes.txt").write_text("mine")
    assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "frees 2 feature packs and 7 entries and 1 other files" in out and "done" in out
    left = [Pack.open(p) for p in root.rglob("*.pack")]
    assert [(p.backbone, p.label) for p in left] == [(KEY_A, "elpv/mono")]
    assert len(list(root.rglob("*.npz"))) == 5 and not (old / "train-0123456789abcdef.npy").exists()
    assert (root / "notes.txt").read_text() == "mine" and (old / "notes.txt").read_text() == "mine"


def test_clear_by_backbone_or_category_and_everything(filled, capsys):
    root, _ = filled
    assert main(["cache", "--cache", str(root), "clear", "--category", "poly"]) == 0
    assert {Pack.open(p).label for p in root.rglob("*.pack")} == {"elpv/mono"}
    assert main(["cache", "--cache", str(root), "clear", "--backbone", "efficientnet-lite2"]) == 0
    assert {Pack.open(p).backbone for p in root.rglob("*.pack")} == {KEY_A}
    (root / "notes.txt").write_text("mine")
    (root / "maps" / "mine").mkdir()
    (root / "maps" / "mine" / "photo.jpg").write_text("mine")  # in the cache's folder, but not lowdata's
    assert main(["cache", "--cache", str(root), "clear"]) == 0
    assert not (root / "embeddings").exists() and not list(root.rglob("*.pack"))
    assert (root / "notes.txt").read_text() == "mine" and (root / "maps" / "mine" / "photo.jpg").read_text() == "mine"
    assert main(["cache", "--cache", str(root), "clear"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_a_cache_in_use_by_another_run_is_not_pruned(filled, capsys):
    root, results = filled
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "from lowdata.features.cache import EmbeddingCache\n"
                              f"c = EmbeddingCache({str(root)!r}, {KEY_A!r}, ('fine', 'coarse'))\n"
                              f"c.read_pooled({'01' + '0' * 62!r})\n"
                              "print('ready', flush=True)\n"
                              "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 2
        err = capsys.readouterr().err
        assert f"the cache {root} is in use by another lowdata run (pid {child.pid} on" in err
        assert "nothing removed" in err and len(list(root.rglob("*.pack"))) == 3
    finally:
        child.kill()
        child.wait()
    # the run is gone (killed: its marker stays behind): a stale marker does not block
    assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 0
    assert len(list(root.rglob("*.pack"))) == 1


def test_outside_a_checkout_the_default_cache_is_the_platforms_user_cache(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.delenv("LOWDATA_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    root, why = cache_root_reason()
    assert root == Path(platformdirs.user_cache_dir("lowdata")) and "not in a lowdata checkout" in why
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert cache_root_reason() == (Path("data/cache"), "the current folder is a lowdata checkout")
    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "c"))
    assert cache_root_reason() == (tmp_path / "c", "$LOWDATA_CACHE is set")


def test_book_stops_with_one_line_when_the_disk_is_too_small(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(manage, "free_bytes", lambda folder: 10 ** 9)
    code = main(["book", "--root", str(Path(__file__).resolve().parents[2]), "--cache", str(tmp_path / "c"),
                 "--out", str(tmp_path / "r"), "--no-build", "--categories", "mono", "--scheduler", "none"])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"disk: this run needs about 3.2 GB in {tmp_path / 'c'} (1.0 GB free there)" in out
    assert err.strip() == (f"lowdata: error: not enough disk for this run: it needs about 3.2 GB in {tmp_path / 'c'} "
                           "and 1.0 GB are free: free some (`lowdata cache prune`), or point --cache or LOWDATA_CACHE "
                           "to a larger disk")
    assert not (tmp_path / "r").exists()
    # the paper preset's backbone chapter keeps the maps of its other backbones (PaDiM, PatchCore): counted too
    from lowdata.book.disk import needed_bytes
    from lowdata.data.roots import Target

    code = main(["book", "--root", str(Path(__file__).resolve().parents[2]), "--cache", str(tmp_path / "c"),
                 "--out", str(tmp_path / "r"), "--no-build", "--categories", "mono", "--scheduler", "none",
                 "--preset", "paper", "--backbones", "efficientnet-lite0,efficientnet-lite2"])
    out, err = capsys.readouterr()
    mono = [Target("elpv", "mono", None)]
    margin = 256 << 20  # counted once for the run
    need = needed_bytes(mono, "efficientnet-lite0", None, tmp_path / "c", "0,10", 4) \
        + needed_bytes(mono, "efficientnet-lite2", None, tmp_path / "c", "0,10") - margin
    assert code == 2 and (f"disk: this run needs about {need / 1e9:.1f} GB in {tmp_path / 'c'} (1.0 GB free there; "
                          "the maps of efficientnet-lite2 for the backbone chapter included)") in out, out


def test_prune_removes_packs_no_entry_points_to_and_lists_hostile_labels_escaped(filled, capsys):
    root, results = filled
    w = PackWriter(root / "maps" / KEY_A, LEVELS, KEY_A, "elpv/mono")  # a pack no entry points to
    w.add("ff" + "0" * 62, [np.zeros((4, 4, 8), np.float32), np.zeros((2, 2, 8), np.float32)])
    orphan = w.close()
    w = PackWriter(root / "maps" / KEY_A, LEVELS, KEY_A, "x\x1b]0;pwned\x07y")
    w.add("fe" + "0" * 62, [np.zeros((4, 4, 8), np.float32), np.zeros((2, 2, 8), np.float32)])
    w.close()
    assert main(["cache", "--cache", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "x\\x1b]0;pwned\\x07y" in out
    assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 0
    assert not orphan.exists()
    assert [Pack.open(p).label for p in root.rglob("*.pack")] == ["elpv/mono"]


def test_a_run_started_while_the_cache_is_pruned_waits_for_it(filled):
    import time

    import lowdata.core.locks as locks

    root, _ = filled
    child = subprocess.Popen([sys.executable, "-c", "import time\n"
                              "from lowdata.core.locks import exclusive_lock\n"
                              f"with exclusive_lock({str(root / '.admin.lock')!r}, 'the cache'):\n"
                              "    print('holding', flush=True)\n"
                              "    time.sleep(1.5)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        locks._REGISTERED.pop(str(root.resolve()), None)
        t0 = time.monotonic()
        with pytest.warns(UserWarning, match=f"waiting for `lowdata cache` \\(pid {child.pid} on .*\\) to finish with"):
            assert EmbeddingCache(root, KEY_A, LEVELS).read_pooled("01" + "0" * 62) is not None
        assert time.monotonic() - t0 > 0.5  # it waited for the prune to end
    finally:
        child.wait(timeout=30)


def test_prune_without_results_tables_removes_nothing(filled, tmp_path, capsys):
    root, results = filled
    assert main(["cache", "--cache", str(root), "prune", "--results", str(tmp_path / "none")]) == 2
    assert "no results table under" in capsys.readouterr().err and len(list(root.rglob("*.pack"))) == 3
    (results / "broken.parquet").write_bytes(b"PAR1 not a table")
    assert main(["cache", "--cache", str(root), "prune", "--results", str(results)]) == 2
    assert f"cannot read the results table {results / 'broken.parquet'}" in capsys.readouterr().err
    assert len(list(root.rglob("*.pack"))) == 3
