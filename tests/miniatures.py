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


def every_layout(bottle, out, size=64, n_train=8, n_good=4, n_bad=3):
    """The same real images (``bottle``: an MVTec AD category folder) written in every folder layout lowdata reads,
    with each data set's folder and file names (BTAD's .bmp, MVTec 3D-AD's rgb/gt/xyz, LOCO's mask folders, MVTec
    AD 2's test_public, VisA's split file; VisA's images are JPEG, so not the same pixels). Returns
    ``{source: (root, category)}``."""
    import csv

    from PIL import Image

    train = sorted((bottle / "train" / "good").glob("*.png"))[:n_train]
    good = sorted((bottle / "test" / "good").glob("*.png"))[:n_good]
    bad = [(k, p) for k in ("broken_large", "contamination") for p in sorted((bottle / "test" / k).glob("*.png"))[:n_bad]]

    def put(a, b, mask=False, fmt=None):
        b.parent.mkdir(parents=True, exist_ok=True)
        im = Image.open(a).convert("L" if mask else "RGB")
        im.resize((size, size), Image.NEAREST if mask else Image.BILINEAR).save(b, format=fmt)

    def mask_of(kind, p):
        return bottle / "ground_truth" / kind / f"{p.stem}_mask.png"

    def write(c, train_dir, good_dir, bad_dir, mask_path, ext=".png", digits=3):
        for i, p in enumerate(train):
            put(p, c / train_dir / f"{i:0{digits}d}{ext}")
        for i, p in enumerate(good):
            put(p, c / good_dir / f"{i:0{digits}d}{ext}")
        for j, (k, p) in enumerate(bad):
            put(p, c / bad_dir(k) / f"{j:0{digits}d}{ext}")
            put(mask_of(k, p), c / mask_path(k, f"{j:0{digits}d}"), True)

    kinds = {"broken_large": "logical_anomalies", "contamination": "structural_anomalies"}
    write(out / "mvtec" / "bottle", "train/good", "test/good", lambda k: f"test/{k}", lambda k, s: f"ground_truth/{k}/{s}_mask.png")
    write(out / "mpdd" / "tubes", "train/good", "test/good", lambda k: f"test/{k}", lambda k, s: f"ground_truth/{k}/{s}_mask.png")
    write(out / "btad" / "01", "train/ok", "test/ok", lambda k: "test/ko", lambda k, s: f"ground_truth/ko/{s}.png", ".bmp", 4)
    write(out / "mvtec2" / "vial", "train/good", "test_public/good", lambda k: "test_public/bad",
          lambda k, s: f"test_public/ground_truth/bad/{s}_mask.png")
    write(out / "mvtec3d" / "bagel", "train/good/rgb", "test/good/rgb", lambda k: f"test/{k}/rgb", lambda k, s: f"test/{k}/gt/{s}.png")
    (out / "mvtec3d" / "bagel" / "train" / "good" / "xyz").mkdir()
    (out / "mvtec3d" / "bagel" / "train" / "good" / "xyz" / "000.tiff").write_bytes(b"II*\x00")  # not read
    write(out / "loco" / "juice_bottle", "train/good", "test/good", lambda k: f"test/{kinds[k]}",
          lambda k, s: f"ground_truth/{kinds[k]}/{s}/000.png")
    v = out / "visa"
    rows = [["object", "split", "label", "image", "mask"]]
    for i, p in enumerate(train + good):
        rel = f"candle/Data/Images/Normal/{i:04d}.JPG"
        put(p, v / rel, fmt="JPEG")
        rows.append(["candle", "train" if i < len(train) else "test", "normal", rel, ""])
    for j, (k, p) in enumerate(bad):
        rel, mrel = f"candle/Data/Images/Anomaly/{j:03d}.JPG", f"candle/Data/Masks/Anomaly/{j:03d}.png"
        put(p, v / rel, fmt="JPEG")
        put(mask_of(k, p), v / mrel, True)
        rows.append(["candle", "test", "anomaly", rel, mrel])
    (v / "split_csv").mkdir()
    with open(v / "split_csv" / "1cls.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return {"mvtec": (out / "mvtec", "bottle"), "mpdd": (out / "mpdd", "tubes"), "btad": (out / "btad", "01"),
            "mvtec2": (out / "mvtec2", "vial"), "mvtec3d": (out / "mvtec3d", "bagel"),
            "loco": (out / "loco", "juice_bottle"), "visa": (v, "candle")}
