import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# commands run serially in the tests unless a test asks for a Dask scheduler (tests/test_cluster.py)
os.environ.setdefault("LOWDATA_SCHEDULER", "none")

REPO = Path(__file__).resolve().parents[1]
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
