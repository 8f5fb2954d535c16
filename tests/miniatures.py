"""Miniatures of the data sets' genuine layouts (their folder and file names and quirks, tiny random images), shared
by the data-source tests and the book's."""
import numpy as np

from conftest import write_png

RNG = np.random.default_rng(0)


def img(path, shape=(8, 8)):
    """A tiny random RGB image; the format follows the suffix (.png, .bmp, .JPG)."""
    return write_png(path, RNG.integers(0, 255, (*shape, 3), dtype=np.uint8))


def mask(path, rows, cols, shape=(8, 8)):
    m = np.zeros(shape, np.uint8)
    m[rows, cols] = 255
    return write_png(path, m)


def build_btad(root, cat="01", suffix=".bmp"):
    c = root / cat
    for i in range(3):
        img(c / "train" / "ok" / f"{i:04d}{suffix}")
    img(c / "test" / "ok" / f"0000{suffix}")
    for i in range(2):
        img(c / "test" / "ko" / f"{i:04d}{suffix}")
    mask(c / "ground_truth" / "ko" / "0000.png", slice(0, 2), slice(0, 8))
    mask(c / "ground_truth" / "ko" / "0001.png", slice(0, 1), slice(0, 8))
    return c


def build_loco(root, cat="breakfast_box"):
    c = root / cat
    for i in range(3):
        img(c / "train" / "good" / f"{i:03d}.png")
    img(c / "validation" / "good" / "000.png")
    img(c / "test" / "good" / "000.png")
    img(c / "test" / "logical_anomalies" / "000.png")
    img(c / "test" / "structural_anomalies" / "000.png")
    # two defects of one image, drawn in two masks: rows 0-1 and columns 0-1 overlap on 4 pixels
    mask(c / "ground_truth" / "logical_anomalies" / "000" / "000.png", slice(0, 2), slice(0, 8))
    mask(c / "ground_truth" / "logical_anomalies" / "000" / "001.png", slice(0, 8), slice(0, 2))
    mask(c / "ground_truth" / "structural_anomalies" / "000" / "000.png", slice(5, 6), slice(5, 7))
    return c


def build_visa_original(root):
    lines = ["object,split,label,image,mask"]
    for i in range(3):
        img(root / "candle" / "Data" / "Images" / "Normal" / f"{i:04d}.JPG")
        lines.append(f"candle,train,normal,candle/Data/Images/Normal/{i:04d}.JPG,")
    img(root / "candle" / "Data" / "Images" / "Normal" / "0003.JPG")
    lines.append("candle,test,normal,candle/Data/Images/Normal/0003.JPG,")
    for i in range(2):
        img(root / "candle" / "Data" / "Images" / "Anomaly" / f"{i:03d}.JPG")
        mask(root / "candle" / "Data" / "Masks" / "Anomaly" / f"{i:03d}.png", slice(1, 3), slice(1, 3))
        lines.append(f"candle,test,anomaly,candle/Data/Images/Anomaly/{i:03d}.JPG,candle/Data/Masks/Anomaly/{i:03d}.png")
    (root / "split_csv").mkdir(parents=True)
    (root / "split_csv" / "1cls.csv").write_text("\n".join(lines) + "\n")
    return root
