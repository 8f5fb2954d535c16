"""Detectors and Gaussian banks against scikit-learn references on random data; shapes and failure modes."""

import numpy as np
import pytest
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, ledoit_wolf_shrinkage
from sklearn.neighbors import NearestNeighbors

from lowdata.detectors.inputs import MapRows, MapStream, align_levels
from lowdata.detectors.knn import KNN
from lowdata.detectors.mahalanobis import Mahalanobis
from lowdata.detectors.padim import PaDiM
from lowdata.detectors.registry import make_detector
from lowdata.core.errors import LowdataError
from lowdata.detectors.gaussian import GaussianBank


def correlated(rng, n, L, d, shift=3.0):
    A = rng.normal(size=(d, d))
    return rng.normal(size=(n, L, d)) @ A + shift


def sk_reference(X, Z, estimator):
    """Per location, scikit-learn's squared Mahalanobis distances (float64 input)."""
    cls = LedoitWolf if estimator == "ledoit-wolf" else EmpiricalCovariance
    return np.stack([cls().fit(X[:, j]).mahalanobis(Z[:, j]) for j in range(X.shape[1])], axis=1)


@pytest.mark.parametrize("estimator", ["ledoit-wolf", "empirical"])
@pytest.mark.parametrize("n,d", [(2, 9), (3, 9), (6, 25), (25, 25), (40, 10), (300, 12)])
def test_bank_matches_sklearn(estimator, n, d):
    rng = np.random.default_rng(n * 100 + d)
    X, Z = correlated(rng, n, 3, d), correlated(rng, 7, 3, d)
    bank = GaussianBank(estimator, chunk=8).fit(X)
    ref = sk_reference(X, Z, estimator)
    # the Cholesky (n > d / 2) Ledoit-Wolf route of a bank takes float32 products (about 1e-6); the rest is float64
    rtol = 1e-5 if bank.route == "cholesky" else 1e-6
    np.testing.assert_allclose(bank.mahalanobis(Z), ref, rtol=rtol, atol=1e-9 * ref.max())
    if estimator == "ledoit-wolf":
        assert bank.route == ("woodbury" if 2 * n <= d else "cholesky")  # the cheaper route
        shrink = [ledoit_wolf_shrinkage(X[:, j]) for j in range(3)]
        np.testing.assert_allclose(bank.shrinkage_, shrink, rtol=rtol, atol=1e-12)


def test_bank_chunks_equal_one_array():
    rng = np.random.default_rng(1)
    X, Z = correlated(rng, 50, 4, 6), correlated(rng, 5, 4, 6)
    whole = GaussianBank().fit(X).mahalanobis(Z)
    chunked = GaussianBank().fit((X[i:i + 7] for i in range(0, 50, 7)), n=50).mahalanobis(Z)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5)  # the d x d sums take float32 products
    with pytest.raises(LowdataError, match="expected 60 training samples, got 50"):
        GaussianBank().fit((X[i:i + 7] for i in range(0, 50, 7)), n=60)


def test_constant_features_follow_sklearn():
    rng = np.random.default_rng(2)
    for n in (4, 12):  # both routes
        X = rng.normal(size=(n, 2, 5))
        X[:, 0, :] = 1.5  # a location where every feature is constant: zero covariance, pinvh gives 0
        X[:, 1, 2] = 4.0  # one constant feature
        Z = rng.normal(size=(3, 2, 5))
        got = GaussianBank().fit(X).mahalanobis(Z)
        np.testing.assert_allclose(got, sk_reference(X, Z, "ledoit-wolf"), rtol=1e-6, atol=1e-12)
        assert np.all(got[:, 0] == 0)


@pytest.mark.parametrize("n", [3, 30])  # Woodbury and full routes
def test_bank_keeps_small_variations_on_a_large_offset(n):
    rng = np.random.default_rng(n)
    X = 1e4 + 1e-2 * correlated(rng, n, 3, 30, shift=0.0)
    Z = 1e4 + 1e-2 * correlated(rng, 4, 3, 30, shift=0.0)
    np.testing.assert_allclose(GaussianBank().fit(X).mahalanobis(Z), sk_reference(X, Z, "ledoit-wolf"), rtol=1e-5)


def test_bank_ill_conditioned_full_route():
    """Eigenvalues falling as i^-3 (condition number near 1e5) with n > d: the centred samples in float32
    and the float32 products of the d x d Gram over all n samples cost 4.5e-5 here (measured; the goal
    for PaDiM is 1e-4 on test scores; on real bottle maps, N = 40 x 10, up to 6.7e-5 against scikit-learn)."""
    rng = np.random.default_rng(3)
    d, n = 60, 400
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = Q * np.arange(1, d + 1) ** -1.5
    X = (rng.normal(size=(n, 2, d)) @ A.T).astype(np.float32).astype(np.float64)
    Z = rng.normal(size=(5, 2, d)) @ A.T
    bank = GaussianBank().fit(X)
    assert bank.route == "cholesky"
    np.testing.assert_allclose(bank.mahalanobis(Z), sk_reference(X, Z, "ledoit-wolf"), rtol=1e-4)


def test_single_feature_level():
    rng = np.random.default_rng(4)
    train, test = [rng.normal(size=(8, 1)), rng.normal(size=(8, 3))], [rng.normal(size=(3, 1)), rng.normal(size=(3, 3))]
    ref = sum(np.sqrt(LedoitWolf().fit(a).mahalanobis(b)) for a, b in zip(train, test))
    np.testing.assert_allclose(Mahalanobis().fit(train).anomaly_score(test), ref, rtol=1e-7)


def test_bank_errors():
    with pytest.raises(LowdataError, match="'shrunk'"):
        GaussianBank("shrunk")
    with pytest.raises(LowdataError, match="at least 2"):
        GaussianBank().fit(np.ones((1, 3, 4)))
    bank = GaussianBank().fit(np.random.default_rng(0).normal(size=(5, 3, 4)))
    with pytest.raises(LowdataError, match=r"\(n, 3, 4\)"):
        bank.mahalanobis(np.ones((2, 3, 5)))
    with pytest.raises(LowdataError, match="no training samples"):
        GaussianBank().fit(iter([]), n=5)
    with pytest.raises(LowdataError, match=r"expected chunks shaped \(b, 3, 4\), got \(2, 3, 5\)"):
        GaussianBank().fit(iter([np.ones((3, 3, 4)), np.ones((2, 3, 5))]), n=5)


@pytest.mark.parametrize("k", [1, 3])
def test_knn_matches_sklearn(k):
    rng = np.random.default_rng(k)
    train = [rng.normal(size=(30, 8)), rng.normal(size=(30, 5))]
    test = [rng.normal(size=(9, 8)), rng.normal(size=(9, 5))]
    got = KNN(k).fit(train).anomaly_score(test)
    dist, _ = NearestNeighbors(n_neighbors=k).fit(np.hstack(train)).kneighbors(np.hstack(test))
    np.testing.assert_allclose(got, (dist ** 2).mean(axis=1), rtol=1e-9)
    assert np.allclose(KNN(1).fit(train).anomaly_score(train), 0, atol=1e-9)  # training points are at distance 0
    # a large common offset does not cancel the distances' digits
    big = [1e5 + 1e-3 * a for a in train]
    exact = ((np.hstack(test)[:, None] - np.hstack(train)[None]) ** 2).sum(-1) * 1e-6
    got = KNN(k).fit(big).anomaly_score([1e5 + 1e-3 * a for a in test])
    np.testing.assert_allclose(got, np.sort(exact, axis=1)[:, :k].mean(axis=1), rtol=1e-4)


@pytest.mark.parametrize("method,estimator", [("maha-emp", "empirical"), ("maha-lw", "ledoit-wolf")])
def test_mahalanobis_is_sum_of_level_distances(method, estimator):
    rng = np.random.default_rng(5)
    train = [correlated(rng, 15, 1, 4)[:, 0], correlated(rng, 15, 1, 20)[:, 0]]  # one level with N < d
    test = [correlated(rng, 6, 1, 4)[:, 0], correlated(rng, 6, 1, 20)[:, 0]]
    det = make_detector(method).fit(train)
    cls = LedoitWolf if estimator == "ledoit-wolf" else EmpiricalCovariance
    ref = sum(np.sqrt(cls().fit(a).mahalanobis(b)) for a, b in zip(train, test))
    np.testing.assert_allclose(det.anomaly_score(test), ref, rtol=1e-7)
    # maps are pooled by the detector itself
    maps = [np.repeat(np.repeat(a[:, None, None, :], 2, 1), 3, 2) for a in test]
    np.testing.assert_allclose(det.anomaly_score(maps), ref, rtol=1e-7)


def test_align_levels_repeats_coarse_grids():
    fine = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    coarse = np.arange(2 * 2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2, 2)
    out = align_levels([fine, coarse])
    assert out.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(out[..., 1:], np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2))


def test_padim_woodbury_route_and_streams():

    rng = np.random.default_rng(8)
    train = [rng.normal(size=(6, 4, 4, 7)).astype(np.float32), rng.normal(size=(6, 2, 2, 5)).astype(np.float32)]
    test = [rng.normal(size=(3, 4, 4, 7)), rng.normal(size=(3, 2, 2, 5))]
    det = PaDiM(chunk=4).fit(train)
    assert det.bank_.route == "woodbury"  # 6 images <= 12 features
    A, B = align_levels(train).astype(np.float64), align_levels(test).astype(np.float64)
    ref = np.sqrt(sk_reference(A.reshape(6, 16, 12), B.reshape(3, 16, 12), "ledoit-wolf")).max(axis=1)
    np.testing.assert_allclose(det.anomaly_score(test), ref, rtol=1e-6)
    streamed = PaDiM().fit(MapStream(6, lambda: ([a[i:i + 4] for a in train] for i in (0, 4))))
    np.testing.assert_allclose(streamed.anomaly_score(test), ref, rtol=1e-6)
    with pytest.raises(LowdataError, match="first chunk of maps is empty"):
        PaDiM().fit(MapStream(3, lambda: []))


def test_padim_matches_per_location_sklearn_and_localizes():
    rng = np.random.default_rng(7)
    train = [rng.normal(size=(14, 6, 6, 5)), rng.normal(size=(14, 3, 3, 4))]
    test = [rng.normal(size=(4, 6, 6, 5)), rng.normal(size=(4, 3, 3, 4))]
    test[0][2, 4, 1, :] += 8.0  # an anomaly at cell (4, 1) of image 2
    det = PaDiM(chunk=5).fit(train)
    A, B = align_levels(train).astype(np.float64), align_levels(test).astype(np.float64)
    ref = np.sqrt(sk_reference(A.reshape(14, 36, 9), B.reshape(4, 36, 9), "ledoit-wolf")).reshape(4, 6, 6)
    maps = det.anomaly_maps(test)
    np.testing.assert_allclose(maps, ref, rtol=1e-6)
    np.testing.assert_allclose(det.anomaly_score(test), ref.reshape(4, -1).max(axis=1), rtol=1e-6)
    assert np.unravel_index(maps[2].argmax(), (6, 6)) == (4, 1)
    heat = det.heatmaps(test, 60)
    assert heat.shape == (4, 60, 60)
    r, c = np.unravel_index(heat[2].argmax(), (60, 60))
    assert 40 <= r < 50 and 10 <= c < 20  # cell (4, 1) of a 6 x 6 grid on 60 px


def test_detector_errors():
    rng = np.random.default_rng(0)
    one = [rng.normal(size=(1, 4))]
    with pytest.raises(LowdataError, match="unknown method 'svm'"):
        make_detector("svm")
    for method in ("maha-emp", "maha-lw"):
        with pytest.raises(LowdataError, match="at least 2 training images, got 1"):
            make_detector(method).fit(one)
    with pytest.raises(LowdataError, match="at least 2 training images, got 1"):
        PaDiM().fit([rng.normal(size=(1, 2, 2, 3))])
    with pytest.raises(LowdataError, match="needs at least 3"):
        KNN(3).fit([rng.normal(size=(2, 4))])
    assert KNN(1).fit(one).anomaly_score([rng.normal(size=(2, 4))]).shape == (2,)  # N = 1 is fine for KNN
    with pytest.raises(LowdataError, match="call fit"):
        Mahalanobis().anomaly_score(one)
    with pytest.raises(LowdataError, match="fitted on 4 features, got 5"):
        KNN().fit([rng.normal(size=(3, 4))]).anomaly_score([rng.normal(size=(2, 5))])
    with pytest.raises(LowdataError, match="maps per level"):
        PaDiM().fit([rng.normal(size=(3, 4))])
    # parameters are checked when fitting (scikit-learn's convention: __init__ only stores them)
    with pytest.raises(LowdataError, match=r"knn: k must be a whole number in \[1, 1,000,000\], got 0"):
        KNN(0).fit(one)
    with pytest.raises(LowdataError, match="estimator must be one of empirical, ledoit-wolf, got 'bogus'"):
        Mahalanobis("bogus").fit([rng.normal(size=(3, 4))])
    with pytest.raises(LowdataError, match="padim: estimator must be one of empirical, ledoit-wolf, got 'bogus'"):
        PaDiM("bogus").fit([rng.normal(size=(3, 2, 2, 4))])


def test_detectors_follow_scikit_learns_conventions():
    rng = np.random.default_rng(0)
    train, test = [rng.normal(size=(8, 4))], [rng.normal(size=(3, 4))]
    knn = KNN(3)
    assert knn.get_params() == {"k": 3} and PaDiM().get_params() == {"estimator": "ledoit-wolf", "chunk": 64, "sigma": 4.0}
    assert knn.set_params(k=2) is knn and knn.k == 2 and repr(knn) == "KNN(k=2)"
    with pytest.raises(LowdataError, match=r"knn: unknown parameter 'kk'; its parameters: k \(a whole number in"):
        knn.set_params(kk=1)
    assert not knn.is_fitted and knn.fit(train) is knn and knn.is_fitted  # fit returns the detector
    for method in ("knn", "maha-emp", "maha-lw"):
        det = make_detector(method)
        with pytest.raises(LowdataError, match="call fit"):
            det.anomaly_score(test)
        # anomaly_score: higher is more anomalous (scikit-learn's score_samples is the opposite)
        far = [test[0] + 100.0]
        assert (det.fit(train).anomaly_score(far) > det.anomaly_score(test)).all()
    assert not hasattr(KNN, "score") and not hasattr(PaDiM, "score_samples")


def test_padim_on_rows_of_several_arrays_equals_the_copied_subset():
    """The study's pool (originals, then copies: several arrays) read by rows, a block of locations at a
    time, gives the model fitted on the same images copied out (both routes)."""
    rng = np.random.default_rng(11)
    originals, copies = rng.normal(size=(9, 3, 3, 8)).astype(np.float32), rng.normal(size=(9, 3, 3, 8)).astype(np.float32)
    test = rng.normal(size=(4, 3, 3, 8)).astype(np.float32)
    for rows in ([7, 2, 4], [0, 3, 5, 8, 9, 12, 14, 17]):  # 3 <= 8 / 2: Woodbury; 8: Cholesky
        pool = np.concatenate([originals, copies])
        from_rows = PaDiM().fit(MapRows([originals, copies], rows))
        copied = PaDiM().fit(pool[rows])
        assert from_rows.bank_.route == ("woodbury" if len(rows) == 3 else "cholesky")
        np.testing.assert_allclose(from_rows.anomaly_maps(test), copied.anomaly_maps(test), rtol=1e-6)
        ref = np.sqrt(sk_reference(pool[rows].reshape(len(rows), 9, 8).astype(np.float64),
                                   test.reshape(4, 9, 8).astype(np.float64), "ledoit-wolf")).reshape(4, 3, 3)
        np.testing.assert_allclose(from_rows.anomaly_maps(test), ref, rtol=1e-4)
        np.testing.assert_array_equal(np.concatenate(list(MapRows([originals, copies], rows).chunks(2))), pool[rows])


def test_padim_nested_series_from_running_sums_matches_fresh_fits():
    """Each set of a nested series fitted by adding its new images to running sums gives scikit-learn's
    distances, as a fit from scratch; large offsets do not cancel (the sums are about the first mean)."""
    rng = np.random.default_rng(13)
    pool = (50.0 + correlated(rng, 60, 4, 10)).reshape(60, 2, 2, 10).astype(np.float32)
    test = (50.0 + correlated(rng, 3, 4, 10)).reshape(3, 2, 2, 10).astype(np.float32)
    order = rng.permutation(60)
    sums, before = None, []
    for n in (4, 8, 20, 35, 60):  # 4 <= 10 / 2: Woodbury from the samples; then running sums
        rows = order[:n]
        det = PaDiM()
        sums = det.fit_nested(MapRows(pool, rows), MapRows(pool, order[len(before):n]), sums)
        assert det.bank_.route == ("woodbury" if n == 4 else "cholesky") and det.n_train_ == n
        assert (sums is None) == (n == 4)
        ref = np.sqrt(sk_reference(pool[rows].reshape(n, 4, 10).astype(np.float64),
                                   test.reshape(3, 4, 10).astype(np.float64), "ledoit-wolf")).reshape(3, 2, 2)
        np.testing.assert_allclose(det.anomaly_maps(test), ref, rtol=1e-4)
        np.testing.assert_allclose(det.bank_.shrinkage_, [ledoit_wolf_shrinkage(pool[rows].reshape(n, 4, 10)[:, j]
                                                                                .astype(np.float64)) for j in range(4)],
                                   rtol=1e-4)
        before = list(rows)
    with pytest.raises(LowdataError, match="running sums hold 60 images, the training set 61"):
        PaDiM().fit_nested(MapRows(pool, np.r_[order, 0]), None, sums)
