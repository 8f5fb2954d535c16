"""What readers see: no folder of the building machine on a page, one-line warnings, a quiet console, log N
axes with captions."""

import subprocess
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from lowdata.book.pages import finish_page, machine_paths, path_labels, relabel
from lowdata.book.plots import caption, curve_panels, n_ticks
from lowdata.core.quiet import is_noise, one_line_warning


def test_folders_are_shown_relative_to_the_repository_or_as_placeholders(tmp_path):
    root = tmp_path / "repo"
    labels = path_labels({"out_dir": str(root / "data" / "results"), "data_root": str(tmp_path / "mvtec"),
                          "cache_dir": str(tmp_path / "cache"), "n": 3, "category": "bottle"}, root)
    text = (f"lowdata fit {tmp_path}/mvtec/bottle/train/good --out {root}/data/results/m --cache {tmp_path}/cache. "
            f"{root}/book/x.ipynb in {root} not {tmp_path}/mvtec2")
    assert relabel(text, labels) == ("lowdata fit $MVTEC_ROOT/bottle/train/good --out data/results/m --cache <cache_dir>. "
                                     f"book/x.ipynb in . not {tmp_path}/mvtec2")  # a longer name is not the folder
    # a folder inside another path or an address is not that folder (MVTEC_ROOT=/data)
    short = path_labels({"data_root": "/data"}, root)
    assert relabel(f"{root}/src/lowdata/data/sources.py, https://example.com/data/x, /mnt/data/y, /data/bottle",
                   short) == "src/lowdata/data/sources.py, https://example.com/data/x, /mnt/data/y, $MVTEC_ROOT/bottle"
    # several data roots: a page's own root by its source, the run's other roots (its command names them) too
    several = path_labels({"data_root": "/d/VisA"}, root, {"/d/VisA": "visa", "/d/btad": "btad", "/d/mixed": None})
    assert relabel("lowdata book --data visa=/d/VisA --data /d/btad --data /d/mixed", several) == \
        "lowdata book --data visa=$LOWDATA_VISA_ROOT --data $LOWDATA_BTAD_ROOT --data $MVTEC_ROOT"
    # a page's root in a forced layout (SOURCE=FOLDER) is shown as that source's
    forced = path_labels({"data_root": "mpdd=/d/mixed"}, root)
    assert relabel('data_root = "mpdd=/d/mixed"', forced) == 'data_root = "mpdd=$LOWDATA_MPDD_ROOT"'
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    assert relabel(f"{link}/data/results and {root}/data/results", path_labels({}, link)) == \
        "data/results and data/results"  # the folder as given and as resolved


def test_a_finished_page_hides_its_parameters_and_shows_no_machine_folder(tmp_path):
    root = tmp_path / "repo"
    page = root / "book" / "categories" / "mvtec-widget.ipynb"
    page.parent.mkdir(parents=True)
    data = str(tmp_path / "mvtec")
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": str(REPO / "notebooks" / "category.ipynb"), "output_path": str(page),
                                "parameters": {"data_root": data}}
    injected = nbformat.v4.new_code_cell(f'data_root = "{data}"\n', metadata={"tags": ["injected-parameters"]})
    shown = nbformat.v4.new_code_cell("run()", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"{data}/widget/train/good: 6 images\n"),
        nbformat.v4.new_output("display_data", data={"text/html": f"<td>{data}/widget</td>", "text/plain": data}),
        nbformat.v4.new_output("error", ename="LowdataError", evalue=f"no folder {data}/widget/test",
                               traceback=[f"File {REPO}/src/lowdata/x.py"])])
    nb.cells = [nbformat.v4.new_markdown_cell("# Category\ntext"), injected, shown]
    nbformat.write(nb, page)
    finish_page(page, path_labels({"data_root": data}, root), "MVTec AD: widget", f"LowdataError: no {data}/w")
    out = nbformat.read(page, as_version=4)
    assert out.cells[0].source.startswith("# MVTec AD: widget")
    assert "This study failed" in out.cells[1].source and "$MVTEC_ROOT/w" in out.cells[1].source
    assert "remove-cell" in out.cells[2].metadata.tags and out.cells[2].source == 'data_root = "$MVTEC_ROOT"\n'
    text = page.read_text()
    assert data not in text and str(REPO) not in text and str(root) not in text
    assert "$MVTEC_ROOT/widget/train/good: 6 images" in text and "src/lowdata/x.py" in text
    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "book" / "ok.html").write_text("<p>data/results</p>")
    (html / "book" / "bad.html").write_text(f"<p>cache at {tmp_path}/cache/x</p>")
    (html / "book" / "source.html").write_text(f"<p>see src/lowdata{tmp_path}x and https://host{tmp_path}/a</p>")
    found = machine_paths(html, [str(tmp_path), "/"])
    assert [f for f, _ in found] == ["book/bad.html"] and str(tmp_path) in found[0][1]


def test_warnings_are_one_line_without_a_source_path():
    line = one_line_warning(UserWarning("40 defect image(s) of transistor\n have no mask"), UserWarning,
                            "/x/src/lowdata/dataset.py", 76, "warnings.warn(...)")
    assert line == "UserWarning: 40 defect image(s) of transistor have no mask\n"
    # a page imports lowdata.book: its warnings look so, and lowdata's same warning is shown once
    code = ("import warnings, lowdata.book\nfrom lowdata.book import paper\n"
            "for _ in range(3):\n    warnings.warn('stretched', UserWarning)\n"
            "warnings.warn_explicit('twice?', UserWarning, 'x.py', 1, module='lowdata.book.x')\n"
            "warnings.warn_explicit('twice?', UserWarning, 'x.py', 2, module='lowdata.book.x')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr == "UserWarning: stretched\nUserWarning: twice?\n", done.stderr


def test_tensorflow_start_up_notes_are_kept_from_the_console_and_errors_are_not():
    code = ("import os\nfrom lowdata.core.quiet import quiet_native_stderr\nwith quiet_native_stderr():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
            "    os.write(2, b'I0000 00:00:17.5  12 port.cc:153] oneDNN custom operations are on. You may see\\n')\n"
            "    os.write(2, b'E0000 real failure: libfoo.so not found\\n')\n"
            "from lowdata.core.quiet import tensorflow\ntf = tensorflow()\ntf.constant(1.0) + 1\n")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("LOWDATA_DEBUG", "LOWDATA_VERBOSE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    # TensorFlow's import said nothing, nor its first operation (where a CUDA library is installed without a GPU,
    # devices are first looked for then: "failed call to cuInit")
    assert done.stderr == "E0000 real failure: libfoo.so not found\n"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**env, "LOWDATA_DEBUG": "1"})
    assert "oneDNN custom operations are on" in loud.stderr and "absl::InitializeLog" in loud.stderr
    # what a native library writes just before it aborts the process still reaches the terminal
    crash = ("import os\nfrom lowdata.core.quiet import quiet_native_stderr\nwith quiet_native_stderr():\n"
             "    os.write(2, b'F0000 check failed: the CPU lacks AVX\\n')\n    os.abort()\n")
    died = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, env=env)
    assert died.returncode != 0 and "F0000 check failed: the CPU lacks AVX" in died.stderr
    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert not is_noise("Traceback (most recent call last):")


def test_log_n_axis_ticks_and_the_caption_says_what_is_averaged():
    assert n_ticks([1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50, 100, 200, 391]) == [1, 2, 3, 5, 8, 15, 30, 50, 100, 200, 391]
    assert n_ticks([5, 10, 209]) == [5, 10, 209] and n_ticks([1, 2, 3, 4, 5, 6]) == [1, 2, 3, 6]
    rows = [dict(source="mvtec", category=c, method="maha-lw", n_train=n, n_pool=pool, replicate=r, aug_factor=0,
                 augment_only=False, auroc=0.8 + 0.01 * r) for c, pool in (("bottle", 209), ("carpet", 280))
            for n in (1, 5, 10, pool) for r in range(5 if n < pool else 1)]
    df = pd.DataFrame(rows)
    text = caption(df)
    assert "over 5 replicates" in text and "1 at a category's full training set" in text and "the 2 categories" in text
    fig = curve_panels(df, by="group")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "10", "209"]
    shown = " ".join(fig.get_supxlabel().split())
    assert "over 5 replicates" in shown and "interval over replicates" in shown  # one category per group
    assert np.isclose(ax.get_xlim()[0], 1 / 1.15)


@pytest.mark.parametrize("name", ["category", "sample-size", "workflow", "reproduction"])
def test_templates_carry_nbval_markers_as_tags_not_comments(name):
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert not any("NBVAL" in c.source for c in nb.cells)
    assert any("nbval-ignore-output" in c.metadata.get("tags", []) for c in nb.cells)
