"""The detector protocol, checked on every registered detector: what a new detector must do to run through the
study, the model file and the command line (fit and score shapes, the state round trip to the bit, the
parameter schema, ``min_train``, maps where declared)."""

import json

import numpy as np
import pytest

from lowdata.core import schema as S
from lowdata.core.errors import LowdataError
from lowdata.detectors.base import Detector
from lowdata.detectors.registry import detector_from_state, make_detector, method_names, method_params, method_spec

METHODS = method_names()


def _features(spec: Detector, n: int, seed: int):
    """``n`` images' features of two levels, as the detector consumes them (maps: a 4 x 4 and a 2 x 2 grid)."""
    rng = np.random.default_rng(seed)
    if spec.consumes == "maps":
        return [rng.normal(size=(n, 4, 4, 3)).astype(np.float32), rng.normal(size=(n, 2, 2, 5)).astype(np.float32)]
    return [rng.normal(size=(n, 3)), rng.normal(size=(n, 5))]


@pytest.mark.parametrize("method", METHODS)
def test_every_detector_declares_its_parameters_once(method):
    det = make_detector(method)
    declared = det.parameters
    assert declared, f"{method} declares no parameters"
    assert list(det.get_params()) == [p.name for p in declared]
    for p in declared:
        assert p.check(getattr(det, p.name), method) == getattr(det, p.name)  # its own value is in range
        assert p.check(p.default, method) == p.default
        S.check(getattr(det, p.name), p.spec(), method)  # a stored value passes the model file's check
    with pytest.raises(LowdataError, match=rf"{method}: unknown parameter 'bogus'; its parameters: "):
        det.set_params(bogus=1)
    for p in declared:
        if p.fixed:  # the method's name says it (maha-emp, maha-lw): not a parameter to give
            with pytest.raises(LowdataError, match=rf"--param {p.name}: {method}'s {p.name} is part of the method"):
                method_params([method], {p.name: p.default})
            continue
        if p.kind is str:
            bad = "bogus"
        elif p.low is not None:
            bad = p.low - 1
        else:
            continue
        with pytest.raises(LowdataError, match=rf"{method}: {p.name} must be .*got"):
            make_detector(method, **{p.name: bad}).fit(_features(det, 8, 0))
        with pytest.raises(LowdataError, match=rf"{method}: {p.name} must be"):
            method_params([method], {p.name: str(bad)})


@pytest.mark.parametrize("method", METHODS)
def test_every_detector_fits_scores_and_comes_back_from_its_state_to_the_bit(method):
    spec = method_spec(method)
    n = max(spec.min_train, 6)
    train, test = _features(spec, n, 0), _features(spec, 4, 1)
    det = make_detector(method).fit(train)
    assert det.is_fitted and det.n_train_ == n
    scores = det.anomaly_score(test)
    assert scores.shape == (4,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    params, arrays = det.get_state()
    params = json.loads(json.dumps(params))  # as a model file holds it
    S.check(params, det.state_schema(), "state")
    back = detector_from_state(method, params, arrays)
    np.testing.assert_array_equal(back.anomaly_score(test), scores)
    if spec.gives_maps:
        maps = det.anomaly_maps(test)
        assert maps.shape == (4, *det.grid_) and np.isfinite(maps).all()
        np.testing.assert_array_equal(back.anomaly_maps(test), maps)
        assert det.heatmaps(maps=maps, size=16).shape == (4, 16, 16)
        assert spec.smoothing_at is None or det.smoothing(spec.smoothing_at, spec.smoothing_at) == det.sigma
    else:
        with pytest.raises(LowdataError, match="gives no anomaly maps"):
            det.anomaly_maps(test)
    if spec.min_train > 1:
        with pytest.raises(LowdataError, match=f"at least {spec.min_train}"):
            make_detector(method).fit(_features(spec, spec.min_train - 1, 2))
    if spec.incremental:  # a series of growing sets: the running sums give the fit made from scratch
        small, more = _features(spec, n, 0), _features(spec, 3, 3)
        grown = [np.concatenate([a, b]) for a, b in zip(small, more)]
        inc = make_detector(method)
        sums = inc.fit_nested(small, None)
        inc.fit_nested(grown, more, sums)
        np.testing.assert_allclose(inc.anomaly_score(test), make_detector(method).fit(grown).anomaly_score(test),
                                   rtol=1e-6)
    else:
        with pytest.raises(LowdataError, match="does not fit incrementally"):
            make_detector(method).fit_nested(train, None)
