"""PatchCore against brute force: scikit-learn's nearest neighbours, a plain greedy k-center, hand-made
neighbourhood means and the paper's reweighting written out."""

import math

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from lowdata.core.errors import LowdataError
from lowdata.detectors.kcenter import greedy_kcenter, greedy_kcenter_plain
from lowdata.detectors.patchcore import PatchCore, neighbourhood_mean
from lowdata.detectors.registry import make_detector


def _maps(n, seed, H=5, W=6, D=12, offset=40.0):
    """Maps with a large common offset (what real features have): distances must not lose digits to it."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, H, W, D)) + offset).astype(np.float32)


def _patches_by_hand(maps, r=1):
    """Each cell's mean over the cells within r of it that lie inside the grid, one cell at a time."""
    n, H, W, D = maps.shape
    out = np.empty(maps.shape, np.float64)
    for i in range(H):
        for j in range(W):
            out[:, i, j] = maps[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].astype(np.float64).mean(axis=(1, 2))
    return out.reshape(-1, D)


def test_neighbourhood_mean_is_the_mean_of_the_cells_inside_the_grid():
    maps = _maps(3, 0)
    np.testing.assert_allclose(neighbourhood_mean(maps).reshape(-1, 12), _patches_by_hand(maps), rtol=1e-6)
    np.testing.assert_allclose(neighbourhood_mean(maps, 5).reshape(-1, 12), _patches_by_hand(maps, 2), rtol=1e-6)
    np.testing.assert_array_equal(neighbourhood_mean(maps, 1), maps)


def test_full_bank_equals_brute_force_nearest_neighbours():
    train, test = _maps(4, 1), _maps(3, 2)
    test[1, 2, 3] += 10.0  # one odd cell
    det = PatchCore(coreset=1.0, reweight=1).fit(train)
    np.testing.assert_allclose(det.bank_, _patches_by_hand(train), rtol=1e-6)
    assert len(det.bank_) == 4 * 5 * 6
    # the engine against scikit-learn's, on the same (float32) patch features
    bank = det.bank_.astype(np.float64)
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(bank)
    dist, _ = nn.kneighbors(neighbourhood_mean(test).reshape(-1, 12).astype(np.float64))
    scores, maps = det.scores_and_maps(test)
    np.testing.assert_allclose(maps.ravel(), dist[:, 0], rtol=1e-5)
    np.testing.assert_allclose(scores, dist[:, 0].reshape(3, -1).max(axis=1), rtol=1e-5)  # reweight 1: the largest
    assert scores.argmax() == 1


def test_reweighting_is_the_papers_formula():
    train, test = _maps(5, 3), _maps(2, 4)
    det = PatchCore(coreset=1.0, reweight=4).fit(train)
    bank, P = det.bank_.astype(np.float64), neighbourhood_mean(test).reshape(-1, 12).astype(np.float64)
    dist, nearest = NearestNeighbors(n_neighbors=1).fit(bank).kneighbors(P)
    support = NearestNeighbors(n_neighbors=4).fit(bank)
    expected = []
    for i in range(2):
        rows = slice(i * 30, (i + 1) * 30)
        w = int(np.argmax(dist[rows, 0]))
        s, star = dist[rows][w, 0], nearest[rows][w, 0]
        _, nb = support.kneighbors(bank[star][None])  # m* itself first (distance 0)
        assert nb[0, 0] == star
        d = np.linalg.norm(bank[nb[0]] - P[rows][w], axis=1)
        expected.append(s * (1 - math.exp(d[0]) / np.exp(d).sum()))
    np.testing.assert_allclose(det.anomaly_score(test), expected, rtol=1e-5)


def test_greedy_kcenter_is_the_plain_greedy_and_its_covering_radius():
    rng = np.random.default_rng(0)
    Z = (rng.normal(size=(2000, 8)) * np.linspace(1, 4, 8) + rng.normal(size=(40, 8))[rng.integers(0, 40, 2000)] * 6)
    Z = Z.astype(np.float32)
    for k, start in [(1, 3), (50, 3), (400, 1999)]:
        fast, plain = greedy_kcenter(Z, k, start), greedy_kcenter_plain(Z, k, start)
        np.testing.assert_array_equal(fast, plain)
        radius = NearestNeighbors(n_neighbors=1).fit(Z[fast]).kneighbors(Z)[0].max()
        plain_radius = NearestNeighbors(n_neighbors=1).fit(Z[plain]).kneighbors(Z)[0].max()
        assert radius == pytest.approx(plain_radius, rel=1e-6)
    # greedy k-center is a 2-approximation: no k centres cover with less than half its radius; and more
    # centres never cover worse
    r = [NearestNeighbors(n_neighbors=1).fit(Z[greedy_kcenter(Z, k, 0)]).kneighbors(Z)[0].max() for k in (10, 100, 400)]
    assert r[0] > r[1] > r[2]


def test_coreset_fit_is_seeded_sized_and_a_subset_of_the_patches():
    train, test = _maps(6, 5), _maps(2, 6)
    a = PatchCore(coreset=0.1, seed=3).fit(train)
    assert len(a.bank_) == 18  # 10 % of 6 x 30 patches
    full = PatchCore(coreset=1.0).fit(train).bank_
    rows = {tuple(r) for r in full}
    assert all(tuple(r) in rows for r in a.bank_)  # chosen among the training patches
    import lowdata.detectors.patchcore as pc

    hold, pc.HOLD_BYTES = pc.HOLD_BYTES, 0  # the patches made again for the gather, not kept: the same bank
    try:
        b = PatchCore(coreset=0.1, seed=3).fit(train)
    finally:
        pc.HOLD_BYTES = hold
    np.testing.assert_array_equal(a.bank_, b.bank_)
    np.testing.assert_array_equal(a.anomaly_score(test), b.anomaly_score(test))
    c = PatchCore(coreset=0.1, seed=4).fit(train)
    assert not np.array_equal(np.sort(a.bank_, axis=0), np.sort(c.bank_, axis=0))
    # a smaller bank is farther from the test patches, never nearer
    assert (a.anomaly_maps(test) >= PatchCore(coreset=1.0).fit(train).anomaly_maps(test) - 1e-9).all()


def test_features_keeps_the_first_ones_and_one_image_is_enough():
    train, test = _maps(1, 7), _maps(2, 8)
    det = PatchCore(coreset=1.0, features=5, reweight=1).fit(train)
    assert det.bank_.shape == (30, 5)
    ref = PatchCore(coreset=1.0, reweight=1).fit(train[..., :5])
    np.testing.assert_allclose(det.anomaly_score(test), ref.anomaly_score(test[..., :5]), rtol=1e-6)
    with pytest.raises(LowdataError, match="fitted on maps of 12 features, got 5"):
        det.anomaly_score(test[..., :5])
    with pytest.raises(LowdataError, match="features=20, but the maps have 12"):
        PatchCore(features=20).fit(train)


def test_state_round_trip_scores_to_the_bit_and_bad_states_are_refused():
    train, test = _maps(3, 9), _maps(2, 10)
    det = make_detector("patchcore").set_params(coreset=0.2).fit(train)
    params, arrays = det.get_state()
    from lowdata.core import schema as S

    S.check(params, det.state_schema(), "test")
    back = PatchCore().set_state(params, arrays)
    np.testing.assert_array_equal(back.anomaly_score(test), det.anomaly_score(test))
    np.testing.assert_array_equal(back.anomaly_maps(test), det.anomaly_maps(test))
    with pytest.raises(LowdataError, match="float32"):
        PatchCore().set_state(params, {"bank": arrays["bank"].astype(np.float64)})
    with pytest.raises(LowdataError, match="a bank of 3 features"):
        PatchCore().set_state(params, {"bank": arrays["bank"][:, :3]})


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, "0.1", True, float("nan")])
def test_coreset_outside_zero_one_is_one_clear_error(bad):
    with pytest.raises(LowdataError, match=r"patchcore: coreset must be a number in \(0, 1\], got"):
        PatchCore(coreset=bad).fit(_maps(2, 0))
