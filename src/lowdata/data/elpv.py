"""ELPV: electroluminescence images of solar cells (PyPI package ``elpv-dataset``), the offline default.

2624 grayscale 300x300 cells, each with a defect probability in {0, 1/3, 2/3, 1} given by experts,
and a type, ``mono`` or ``poly`` (monocrystalline or polycrystalline): our two categories.

Labels: probability 0 is normal; probability >= ``anomalous_from`` (default 2/3) is anomalous. Cells
in between (1/3 by default) are uncertain: excluded by default, or counted as normal or anomalous
with ``uncertain='normal'`` / ``'anomalous'``.

Split (deterministic, no randomness): the normal cells of a type, in the order of the package's
``labels.csv``, are numbered 0, 1, 2, ...; every ``test_every``-th one (index % test_every ==
test_every - 1, so 1 in 4 by default) goes to the test set, the others to the training set. Every
anomalous cell goes to the test set. Consecutive cells come from the same module, so the
interleaving spreads modules over both splits. With the defaults: mono has 441 train and
147 + 369 test images; poly has 690 train and 230 + 452 test images.
"""

from __future__ import annotations

from pathlib import Path

from .dataset import NORMAL, CategoryData, Sample
from ..core.errors import LowdataError

ELPV_CATEGORIES = ("mono", "poly")
UNCERTAIN_CHOICES = ("exclude", "normal", "anomalous")


def elpv_root() -> Path:
    """The ELPV images' folder, in the installed ``elpv-dataset`` package.

    Returns
    -------
    Path
        The folder that holds ``labels.csv`` and the images.

    Raises
    ------
    lowdata.LowdataError
        If the package is not installed, or has no ``labels.csv``.
    """
    try:
        import elpv_dataset
    except ImportError:
        raise LowdataError("the ELPV images come from the PyPI package 'elpv-dataset': pip install elpv-dataset") from None
    root = Path(elpv_dataset.__file__).parent / "data"
    if not (root / "labels.csv").is_file():
        raise LowdataError(f"the elpv-dataset package has no labels.csv under {root}")
    return root


def read_labels(root: Path) -> list[tuple[str, float, str]]:
    """The rows of ``labels.csv``, in its order.

    Parameters
    ----------
    root : Path
        The ELPV folder (:func:`elpv_root`).

    Returns
    -------
    list of tuple
        ``(relative path, defect probability, type)`` per cell.
    """
    rows = []
    for line in (root / "labels.csv").read_text().splitlines():
        if line.strip():
            path, prob, kind = line.split()
            rows.append((path, float(prob), kind))
    return rows


def load_elpv(category: str, *, anomalous_from: float = 2 / 3, uncertain: str = "exclude",
              test_every: int = 4) -> CategoryData:
    """One ELPV category, labelled and split as the module docstring says.

    Parameters
    ----------
    category : {'mono', 'poly'}
        The cells' type.
    anomalous_from : float, default=2/3
        The defect probability from which a cell is anomalous, in (0, 1].
    uncertain : {'exclude', 'normal', 'anomalous'}, default='exclude'
        What the cells between 0 and ``anomalous_from`` are.
    test_every : int, default=4
        Every ``test_every``-th normal cell goes to the test set (an integer >= 2).

    Returns
    -------
    CategoryData
        The category's training and test images (source ``elpv``); its ``notes`` record the options and the
        number of uncertain cells excluded.

    Raises
    ------
    lowdata.LowdataError
        If ``category`` is unknown, an option is out of range, or the ``elpv-dataset`` package is missing.
    """
    if category not in ELPV_CATEGORIES:
        raise LowdataError(f"unknown ELPV category {category!r}; known: {', '.join(ELPV_CATEGORIES)}")
    if uncertain not in UNCERTAIN_CHOICES:
        raise LowdataError(f"uncertain must be one of {', '.join(UNCERTAIN_CHOICES)}, not {uncertain!r}")
    if not 0 < anomalous_from <= 1:
        raise LowdataError(f"anomalous_from must be in (0, 1], got {anomalous_from}")
    if int(test_every) != test_every or test_every < 2:
        raise LowdataError(f"test_every must be an integer >= 2, got {test_every}")
    root = elpv_root()
    train, test = [], []
    n_normal = n_excluded = 0
    for rel, prob, kind in read_labels(root):
        if kind != category:
            continue
        path = root / rel
        if prob == 0:
            anomalous = False
        elif prob >= anomalous_from - 1e-9:
            anomalous = True
        elif uncertain == "exclude":
            n_excluded += 1
            continue
        else:
            anomalous = uncertain == "anomalous"
        if anomalous:
            test.append(Sample(path, 1, f"defect_p{round(prob * 100):d}"))
            continue
        split = test if n_normal % test_every == test_every - 1 else train
        split.append(Sample(path, 0, NORMAL))
        n_normal += 1
    notes = dict(anomalous_from=anomalous_from, uncertain=uncertain, test_every=test_every,
                 excluded_uncertain=n_excluded)
    return CategoryData("elpv", category, train, test, root=root, notes=notes)

