import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# commands run serially in the tests unless a test asks for a Dask scheduler (tests/test_scheduling.py)
os.environ.setdefault("LOWDATA_SCHEDULER", "none")

REPO = Path(__file__).resolve().parents[1]

#: the two longest tests (minutes each), collected first: `make test` runs two processes (pytest-xdist), which take
#: the first tests one each, so these two run side by side from the start instead of one after the other at the end
LONGEST = ("test_book_runner_builds_every_page", "test_notebooks_reproduce_their_committed_outputs")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.originalname, len(LONGEST)))  # stable: the rest keep their order


MVTEC_ROOT = Path(os.environ.get("LOWDATA_MVTEC_ROOT", REPO.parent / "shared" / "data" / "mvtec_ad"))
requires_mvtec = pytest.mark.skipif(
    not (MVTEC_ROOT / "bottle" / "train" / "good").is_dir(),
    reason=f"the real MVTec AD bottle category is not at {MVTEC_ROOT} (set LOWDATA_MVTEC_ROOT)",
)


@pytest.fixture(scope="session")
def lite0_small():
    """EfficientNet-Lite0 with its real ImageNet weights at a small input size (fast)."""
    from lowdata.features.backbones import load_backbone

    return load_backbone("efficientnet-lite0", input_size=96)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def tiny_mvtec(tmp_path) -> Path:
    """A small MVTec-layout folder (category 'widget') of generated images: 6 train, 2+2 test."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mvtec"
    cat = root / "widget"
    for i in range(6):
        write_png(cat / "train" / "good" / f"{i:03d}.png", rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    for i in range(2):
        write_png(cat / "test" / "good" / f"{i:03d}.png", rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
        write_png(cat / "test" / "scratch" / f"{i:03d}.png", rng.integers(0, 255, (40, 48), dtype=np.uint8))
        mask = np.zeros((40, 48), np.uint8)
        mask[5:10, 5:20] = 255
        write_png(cat / "ground_truth" / "scratch" / f"{i:03d}_mask.png", mask)
    return root


@pytest.fixture(scope="module")
def elpv_images():
    """12 good ELPV mono cells, and 4 good + 4 defective test cells (real images, embedded)."""
    from lowdata.data.elpv import load_elpv

    data = load_elpv("mono")
    goods = [s.path for s in data.train[:12]]
    tests = [s.path for s in data.test if s.label == 0][:4] + [s.path for s in data.test if s.label == 1][:4]
    return goods, tests


def copied(folder: Path, paths) -> Path:
    """A new folder holding copies of ``paths``."""
    folder.mkdir()
    for p in paths:
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture
def good_folder(tmp_path, elpv_images):
    """A folder of 10 good ELPV cells."""
    return copied(tmp_path / "good", elpv_images[0][:10])


@pytest.fixture
def saved(good_folder, lite0_small, tmp_path):
    """A Mahalanobis (Ledoit-Wolf) model fitted on ``good_folder`` and saved: its folder."""
    from lowdata.inspection.model import fit_model

    model = fit_model(good_folder, "maha-lw", backbone=lite0_small, cache_dir=tmp_path / "cache", progress=False)
    model.save(tmp_path / "model")
    return tmp_path / "model"


def built_site(root):
    """A small built book under ``root/_build/html`` (a page, its MathJax, a table as CSV, Sphinx's doctrees)."""
    html = root / "_build" / "html"
    (html / "_static" / "mathjax").mkdir(parents=True)
    (html / "_static" / "mathjax" / "tex-chtml.js").write_text("// MathJax\n")
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "book" / "results").mkdir(parents=True)
    (html / "book" / "results" / "sample-size.html").write_text(
        '<script src="../../_static/mathjax/tex-chtml.js"></script><table></table>'
        '<a href="../../tables/book/results/sample-size/table-1.csv">CSV</a><a href="https://arxiv.org/abs/2106.01277">')
    (html / "tables" / "book" / "results" / "sample-size").mkdir(parents=True)
    (html / "tables" / "book" / "results" / "sample-size" / "table-1.csv").write_text("method,auroc\nknn,0.9\n")
    (html / ".doctrees").mkdir()
    (html / ".doctrees" / "x.pickle").write_bytes(b"\0")
    return html
