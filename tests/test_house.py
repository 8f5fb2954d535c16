"""The house is open: a detector, a metric and a notebook parameter enter as one file or one entry, and the
layers import one way. The toy detector lives in tests/toy_detector.py; no module of lowdata knows it."""

import ast
import importlib
import json
import re
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from lowdata.cli import build_parser, main
from lowdata.core.errors import LowdataError
from lowdata.detectors.registry import DETECTORS, method_names, paper_methods
from lowdata.features.cache import EmbeddingCache
from lowdata.features.encode import encode
from lowdata.data.sources import load_category
from lowdata.metrics import METRICS, register_metric

SRC = REPO / "src" / "lowdata"
sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture
def toy():
    """Importing the toy's one file registers it; it is unregistered afterwards."""
    import toy_detector

    importlib.reload(toy_detector)
    yield toy_detector.MeanDistance
    DETECTORS.pop("mean-distance", None)


def _mean_distance(train, test):
    a, b = np.concatenate(train.pooled, axis=1), np.concatenate(test.pooled, axis=1)
    return np.sqrt(((b - a.astype(np.float64).mean(axis=0)) ** 2).sum(axis=1))


def test_a_detector_in_one_file_runs_through_study_fit_score_and_a_notebook_check(toy, tiny_mvtec, lite0_small,
                                                                                     tmp_path, capsys):
    assert "mean-distance" in method_names() and "mean-distance" not in paper_methods()
    cache = tmp_path / "cache"
    out = tmp_path / "study.csv"
    common = ["--input-size", "96", "--cache", str(cache), "--no-progress"]
    assert main(["study", "--data", str(tiny_mvtec), "--category", "widget", "--methods", "mean-distance,knn",
                 "--sizes", "3,max", "--reps", "2", "--aug", "0,1", "--out", str(out), "--scheduler", "none",
                 *common]) == 0
    rows = pd.read_csv(out)
    toy_rows = rows[rows["method"] == "mean-distance"]
    assert len(toy_rows) == 2 * 2 + 2 and toy_rows["auroc"].notna().all()  # (2 reps at N=3 + 1 at max) x 2 factors
    data = load_category("mvtec", "widget", root=tiny_mvtec)
    c = EmbeddingCache(cache, lite0_small.key, lite0_small.levels)
    train = encode(lite0_small, [s.path for s in data.train], c, progress=False)
    test = encode(lite0_small, [s.path for s in data.test], c, progress=False)
    from lowdata.metrics import image_auroc

    full = toy_rows[(toy_rows["n_train"] == 6) & (toy_rows["aug_factor"] == 0)].iloc[0]
    assert full["auroc"] == pytest.approx(image_auroc(data.test_labels, _mean_distance(train, test)), abs=1e-12)

    model = tmp_path / "model"
    good = tiny_mvtec / "widget" / "train" / "good"
    assert main(["fit", str(good), "--method", "mean-distance", "--out", str(model), "--threshold-rule", "conformal",
                 *common]) == 0
    meta = json.loads((model / "model.json").read_text())
    assert meta["detector"]["method"] == "mean-distance" and meta["detector"]["score"].startswith("euclidean")
    scores = tmp_path / "scores.csv"
    folders = [str(tiny_mvtec / "widget" / "test" / k) for k in ("good", "scratch")]
    assert main(["score", str(model), *folders, "--out", str(scores), "--cache", str(cache), "--no-progress"]) == 0
    got = pd.read_csv(scores)
    test_paths = sorted(str(p) for p in (tiny_mvtec / "widget" / "test").rglob("*.png"))
    assert sorted(got["image"]) == test_paths
    want = dict(zip([str(s.path) for s in data.test], _mean_distance(train, test)))
    np.testing.assert_allclose(got["score"], [want[p] for p in got["image"]], rtol=1e-6)
    assert "heatmaps" not in capsys.readouterr().out  # the toy gives no maps: no overlays are written

    from lowdata.book.category import category_params

    p = category_params(data_root=str(tiny_mvtec), category="widget", backbone="efficientnet-lite0", input_size=96,
                        methods="mean-distance", sizes="3,max", reps=1, aug="0", sweep="1", augment_only="",
                        out_dir=str(tmp_path / "res"), cache_dir=None, seed=0)
    assert p.methods == "mean-distance"
    with pytest.raises(LowdataError, match="unknown method 'mean-distanse'"):
        category_params(**{**p.__dict__, "methods": "mean-distanse"})


def test_a_metric_registered_later_is_computed_for_the_rows_a_resumed_study_has(tiny_mvtec, lite0_small, tmp_path,
                                                                               monkeypatch):
    from lowdata.experiments import fits as fits_module, study

    data = load_category("mvtec", "widget", root=tiny_mvtec)
    cache = EmbeddingCache(tmp_path / "cache", lite0_small.key, lite0_small.levels)
    config = dict(methods=["knn", "padim"], sizes=[3, 6], reps=2, factors=[0], seed=1, pixel_size=32)
    out = tmp_path / "r.parquet"
    first = study.run_study(data, lite0_small, cache, study.StudyConfig(**config), out, progress=False)
    assert "score_spread" not in first
    register_metric("score_spread", lambda labels, scores: float(np.std(scores)), label="spread of the scores")
    try:
        fits = []
        real = fits_module.make_detector
        monkeypatch.setattr(fits_module, "make_detector", lambda m: (fits.append(m), real(m))[1])
        again = study.run_study(data, lite0_small, cache, study.StudyConfig(**config), out, progress=False)
        assert len(fits) == len(first)  # every old row lacked the new metric: each fit was done again
        assert again["score_spread"].notna().all() and (again["score_spread"] > 0).all()
        pd.testing.assert_series_equal(again["auroc"], first["auroc"])  # the same seeds, the same fits
        fits.clear()
        study.run_study(data, lite0_small, cache, study.StudyConfig(**config), out, progress=False)
        assert fits == []  # now complete: nothing to do
        assert list(pd.read_parquet(out).columns) == study.result_columns()
    finally:
        METRICS.pop("score_spread")


def _parameter_cell(path):
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {}
    for node in ast.parse("".join(cell["source"])).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_every_notebook_parameter_cell_is_its_schema():
    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node

    from lowdata.book.params import SCHEMAS

    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(SCHEMAS) == notebooks
    for name, schema in SCHEMAS.items():
        cell = _parameter_cell(REPO / "notebooks" / f"{name}.ipynb")
        assert list(cell) == schema.names, name  # the same names, in the same order
        # and papermill reads them all (a line with a second '=', in its comment too, is skipped with a warning,
        # and `papermill -p` then calls that parameter unknown)
        assert [p.name for p in _infer_parameters(load_notebook_node(str(REPO / "notebooks" / f"{name}.ipynb")))] \
            == schema.names, name
        assert cell == schema.defaults(), name
        schema.check(cell)  # and of the declared types
        for preset in schema.presets:
            schema.check(schema.defaults(preset))


def test_the_command_line_takes_its_defaults_from_the_schemas_and_registries():
    from lowdata.book.params import CATEGORY, PRESETS

    args = build_parser().parse_args(["book"])
    assert (args.methods, args.seed, args.out, args.backbone) == \
        (CATEGORY.default("methods"), CATEGORY.default("seed"), CATEGORY.default("out_dir"), CATEGORY.default("backbone"))
    assert args.preset == PRESETS[0] == "default"
    assert build_parser().parse_args(["study", "--category", "mono"]).methods == ",".join(paper_methods())
    assert CATEGORY.default("methods") == "knn,maha-emp,maha-lw,padim"


# the layers, from the ground up: a module may import its own layer and the layers listed for it
LAYERS = {"core": set(), "data": {"core"}, "features": {"core", "data"}, "detectors": {"core"}, "metrics": {"core"},
          "scheduling": {"core", "features"}, "autoaug": {"core", "data", "features", "detectors", "metrics"},
          "inspection": {"core", "data", "features", "detectors", "autoaug"},
          "experiments": {"core", "data", "features", "detectors", "metrics", "scheduling", "autoaug"},
          "book": {"core", "data", "features", "detectors", "metrics", "scheduling", "autoaug", "inspection",
                   "experiments"}}


def _layer(path):
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path):
    """The lowdata layers a module imports (relative imports resolved), and where."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = base + tuple((node.module or "").split(".")) if node.module else base
            if len(target) == 1:  # "from .. import __version__" or "from . import x"
                yield from ((n.name, node.lineno) for n in node.names)
            else:
                yield target[1], node.lineno
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [n.name for n in node.names]
            for n in names:
                if n and n.startswith("lowdata."):
                    yield n.split(".")[1], node.lineno


def test_imports_run_one_way_between_the_layers():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer not in LAYERS:  # the package's face, the command line and the notebooks' import paths
            continue
        for target, line in _imports(path):
            if target in LAYERS and target != layer and target not in LAYERS[layer]:
                bad.append(f"{path.relative_to(REPO)}:{line} ({layer}) imports {target}")
    assert not bad, "\n".join(bad)


def test_the_product_and_the_experiments_stand_side_by_side():
    """The practitioner's workflow (inspection) and the study (experiments) import neither each other nor the book
    or the command line: read from the code, whatever the layer table above says."""
    crossing = [f"{p.relative_to(REPO)}:{line} imports {target}"
                for layer, others in (("inspection", {"experiments", "book", "cli"}),
                                      ("experiments", {"inspection", "book", "cli"}))
                for p in sorted((SRC / layer).rglob("*.py")) for target, line in _imports(p) if target in others]
    assert not crossing, "\n".join(crossing)
    assert any(target == "detectors" for p in (SRC / "inspection").rglob("*.py") for target, _ in _imports(p))


def test_no_code_outside_the_detectors_compares_a_method_name():
    names = "|".join(re.escape(m) for m in method_names())
    pattern = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)|startswith\(["']maha""")
    found = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in sorted(SRC.rglob("*.py"))
             if "detectors" not in p.relative_to(SRC).parts
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_test_files_have_distinct_names():
    """Test files share one module namespace (no packages under tests/): two of the same name stop pytest from
    collecting anything, which only a whole run shows."""
    from collections import Counter

    names = Counter(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []


def test_the_conda_environment_is_the_venvs():
    """environment.yml installs exactly what `make` installs from pyproject.toml (its requirements, the book and dev
    extras): a requirement added to one and not the other breaks only the conda users."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["book"] + project["optional-dependencies"]["dev"]
    listed = [line.strip()[2:] for line in (REPO / "environment.yml").read_text().split("  - pip:\n", 1)[1].splitlines()]
    assert sorted(listed) == sorted(wanted + ["-e ."])
