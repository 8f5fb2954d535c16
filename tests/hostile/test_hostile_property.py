"""A property of every model file (issue 29): whatever is done to a valid model folder (a field deleted, retyped,
made huge, nested deep, filled with control characters; an array retyped, reshaped, made NaN, removed, with
the digest forged to match or not), ``lowdata score`` either refuses it in one short, terminal-safe
``lowdata: error:`` line with exit status 2, or scores with a model that reads back as written. Never a
traceback, never "unexpected"."""
import contextlib
import functools
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from lowdata.core.digests import file_hash  # noqa: E402
from lowdata.inspection.model import fit_model, load_model  # noqa: E402


#: the examples run by `make test`: enough to reach every section of the file, bounded in time
EXAMPLES = int(os.environ.get("LOWDATA_PROPERTY_EXAMPLES", "60"))
MAX_LINE = 700  # an error line: the message, a path or two of the test's folders, a value quoted to 80 characters

RAW = "\u0000RAW:"  # a placeholder whose JSON text is replaced by a raw token (NaN, a 5000-digit number, deep nesting)

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["0.1.0\r\x1b[32mlowdata: model OK\x1b[0m", "\x1b]0;pwned\x07", "a\x00b", "\u202egnp.x",
                     "x" * 200_000, "../../../../etc/passwd", "detector-000000000000.npz", "", "padim", "lognormal"]),
    st.sampled_from([RAW + "9" * 5000, RAW + "-" + "9" * 5000, RAW + "[" * 3000 + "]" * 3000,
                     RAW + '{"a":' * 3000 + "1" + "}" * 3000, RAW + "NaN", RAW + "Infinity", RAW + "1e400",
                     RAW + "5e-324"]),
    st.lists(st.integers(-3, 3000), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@pytest.fixture(scope="module")
def valid_model(elpv_images, tmp_path_factory):  # noqa: F811
    from lowdata.features.backbones import load_backbone

    root = tmp_path_factory.mktemp("property")
    good = root / "good"
    good.mkdir()
    for p in elpv_images[0][:6]:
        shutil.copy(p, good / p.name)
    bb = load_backbone("efficientnet-lite0", input_size=96)
    fit_model(good, "maha-lw", backbone=bb, cache_dir=root / "cache", progress=False).save(root / "model")
    return root / "model", elpv_images[1][0]


def _paths(value, prefix=()):
    """Every place in the JSON: dict keys and list items, as key paths."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, prefix + (i,))


def _mutate_json(meta, data):
    places = [p for p in _paths(meta) if p]
    place = data.draw(st.sampled_from(places), label="place")
    parent = meta
    for k in place[:-1]:
        parent = parent[k]
    if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
        del parent[place[-1]]
        return
    parent[place[-1]] = data.draw(VALUES, label="value")


def _mutate_arrays(folder, meta, data):
    npz = folder / meta["arrays"]["file"]
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    name = data.draw(st.sampled_from(sorted(arrays)), label="array")
    how = data.draw(st.sampled_from(["nan", "inf", "shape", "dtype", "delete", "empty", "extra", "huge"]), label="how")
    a = arrays[name]
    if how == "nan" and a.size:
        a = a.copy()
        a.flat[0] = np.nan
    elif how == "inf" and a.size:
        a = a.copy()
        a.flat[-1] = -np.inf
    elif how == "shape":
        a = np.concatenate([a.ravel(), a.ravel()[:1]]) if a.size else np.zeros(3, a.dtype)
    elif how == "dtype":
        a = a.astype(data.draw(st.sampled_from([np.int64, np.float16, np.complex64, np.bool_, "U3"])))
    elif how == "delete":
        del arrays[name]
        a = None
    elif how == "empty":
        a = np.zeros((0,) + a.shape[1:], a.dtype)
    elif how == "extra":
        arrays["level9.location"] = np.zeros((1, 3), np.float32)
    elif how == "huge":
        a = a * np.float32(1e38)
    if a is not None:
        arrays[name] = a
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    if data.draw(st.booleans(), label="forge the digest"):
        meta["arrays"].update(sha256=file_hash(npz), bytes=npz.stat().st_size, names=sorted(arrays))


def _terminal_safe(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("LOWDATA_PROPERTY_SEED") is None,  # make test: the same examples every run
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_any_mutation_of_a_model_is_one_short_error_line_or_an_identical_model(valid_model, monkeypatch, data):
    from lowdata.cli import main
    from lowdata.inspection import model as model_module

    monkeypatch.setattr(model_module, "load_backbone", _one_backbone)  # built once: seconds, not per example

    model, image = valid_model
    with tempfile.TemporaryDirectory(prefix="lowdata-mutant-") as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(model, folder)
        meta = json.loads((folder / "model.json").read_text())
        arrays = data.draw(st.integers(0, 1), label="array mutations")
        if arrays:  # first, while the description still names the arrays file (a forger then fixes its digest)
            _mutate_arrays(folder, meta, data)
        for _ in range(data.draw(st.integers(0 if arrays else 1, 3), label="field mutations")):
            _mutate_json(meta, data)
        text = json.dumps(meta, allow_nan=True)
        for raw in {v for v in _raw_values(meta)}:
            text = text.replace(json.dumps(raw), raw[len(RAW):])
        (folder / "model.json").write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["score", str(folder), str(image), "--no-progress", "--format", "csv"])
        out, err = out.getvalue(), err.getvalue()
        assert "Traceback" not in err and "unexpected" not in err, err[-2000:]
        assert _terminal_safe(err), repr(err[:500])
        lines = [line for line in err.splitlines() if not line.startswith("lowdata: warning:")
                 and not (rc == 0 and line.endswith("maha-lw)") and " images anomalous (score above " in line)]
        if rc == 2:
            assert len(lines) == 1 and lines[0].startswith("lowdata: error: ") and len(lines[0]) <= MAX_LINE, \
                (len(lines[0]), lines[0][:MAX_LINE + 100])
            return
        assert rc == 0 and not lines and out.startswith("image,score,threshold,ratio,verdict"), (rc, err, out)
        assert out.rstrip().endswith(("normal", "anomalous"))
        back = load_model(folder, allow_other_version=True)
        assert back.meta == json.loads((folder / "model.json").read_text())  # reads back as written


@functools.lru_cache(maxsize=4)
def _one_backbone(name, input_size, runtime=None):
    from lowdata.features.backbones import load_backbone

    return load_backbone(name, input_size, runtime=runtime)


def _raw_values(value):
    if isinstance(value, str) and value.startswith(RAW):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _raw_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _raw_values(v)
