import numpy as np
import pytest

from lowdata.core.errors import LowdataError
from lowdata.metrics import auc_percent_area, image_auroc, pixel_auroc


def test_area_hand_computed_example():
    # x = 0.25, 0.5, 1; trapezoids 0.25 * (0.6 + 0.8) / 2 + 0.5 * (0.8 + 1.0) / 2 = 0.625; / (1 - 0.25)
    assert auc_percent_area([5, 10, 20], [0.6, 0.8, 1.0]) == pytest.approx(0.625 / 0.75, abs=1e-12)


def test_area_constant_curve_is_that_auc_whatever_the_grid():
    assert auc_percent_area([5, 10, 15, 209], [0.9] * 4) == pytest.approx(0.9)
    assert auc_percent_area([5, 60], [0.7, 0.7]) == pytest.approx(0.7)


def test_area_averages_replicates_and_accepts_any_order():
    n = [10, 5, 5, 20, 10]
    auc = [0.8, 0.5, 0.7, 1.0, 0.8]  # replicates at N=5 average to 0.6
    assert auc_percent_area(n, auc) == pytest.approx(0.625 / 0.75)


def test_area_single_point_and_errors():
    assert auc_percent_area([50], [0.93]) == pytest.approx(0.93)
    with pytest.raises(LowdataError, match="full training set"):
        auc_percent_area([5, 10], [0.5, 0.6], n_max=20)
    with pytest.raises(LowdataError, match="NaN"):
        auc_percent_area([5, 10], [0.5, float("nan")])


def test_image_auroc_known_value_and_one_class():
    # pairs (anomalous, normal): (0.9 > 0.1), (0.9 > 0.8), (0.4 > 0.1), (0.4 < 0.8): 3 of 4
    assert image_auroc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.8]) == pytest.approx(0.75)
    assert np.isnan(image_auroc([0, 0], [0.1, 0.2]))
    with pytest.raises(LowdataError, match="not finite"):
        image_auroc([0, 1], [0.1, float("inf")])


def test_pixel_auroc():
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[1, 1:3, 1:3] = 255
    heat = np.zeros((2, 4, 4))
    heat[1, 1:3, 1:3] = 1.0
    assert pixel_auroc(masks, heat) == 1.0
    assert pixel_auroc(masks, -heat) == 0.0
    with pytest.raises(LowdataError, match="differ in shape"):
        pixel_auroc(masks, heat[:, :3])


def test_average_precision_and_f1_max_hand_computed():
    from lowdata.metrics import image_average_precision, image_f1_max

    # ranked 0.9 (anomalous), 0.8 (good), 0.4 (anomalous), 0.1 (good):
    # AP = 0.5 * 1 + 0.5 * 2/3; F1 at 0.9: 2/3, at 0.4: P = 2/3, R = 1, F1 = 0.8, at 0.1: 2/3
    labels, scores = [1, 0, 1, 0], [0.9, 0.1, 0.4, 0.8]
    assert image_average_precision(labels, scores) == pytest.approx(0.5 + 1 / 3)
    assert image_f1_max(labels, scores) == pytest.approx(0.8)
    assert image_f1_max([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2]) == pytest.approx(1.0)  # separable
    assert np.isnan(image_average_precision([0, 0], [0.1, 0.2])) and np.isnan(image_f1_max([1, 1], [0.1, 0.2]))
    with pytest.raises(LowdataError, match="not finite"):
        image_f1_max([0, 1], [0.1, float("nan")])


def test_average_precision_and_f1_max_match_scikit_learn():
    from sklearn.metrics import average_precision_score, f1_score

    from lowdata.metrics import image_average_precision, image_f1_max

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    scores = rng.normal(size=60) + labels
    assert image_average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    best = max(f1_score(labels, scores >= t) for t in np.unique(scores))  # every threshold, one at a time
    assert image_f1_max(labels, scores) == pytest.approx(best, abs=1e-12)


def _two_regions():
    """Two 1 x 7 images: region A (1 pixel) in the first, region B (3 connected pixels) in the second,
    10 normal pixels. Ranked: A 0.9, n 0.8, B 0.7, n 0.6, n 0.5, B 0.4, seven n 0.1, B 0.05."""
    masks = np.array([[[1, 0, 0, 0, 0, 0, 0]], [[1, 1, 1, 0, 0, 0, 0]]], np.uint8)
    heat = np.array([[[0.9, 0.8, 0.6, 0.1, 0.1, 0.1, 0.1]], [[0.7, 0.4, 0.05, 0.5, 0.1, 0.1, 0.1]]])
    return masks, heat


def test_aupro_two_regions_of_different_sizes_hand_computed():
    from lowdata.metrics import aupro, pro_curve

    masks, heat = _two_regions()
    fpr, pro = pro_curve(masks, heat)
    # each region weighs 1/2 whatever its size: A alone gives PRO 0.5, each pixel of B adds 1/6
    np.testing.assert_allclose(fpr, [0, 0, 0.1, 0.1, 0.2, 0.3, 0.3, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(pro, [0, 0.5, 0.5, 2 / 3, 2 / 3, 2 / 3, 5 / 6, 5 / 6, 1.0, 1.0])
    # area to 0.3: 0.1 * 0.5 + 0.2 * 2/3 = 0.18333, divided by 0.3
    assert aupro(masks, heat) == pytest.approx((0.05 + 0.2 * 2 / 3) / 0.3)
    # a limit inside a segment: 0.1 * 0.5 + 0.05 * 2/3, divided by 0.15
    assert aupro(masks, heat, limit=0.15) == pytest.approx((0.05 + 0.05 * 2 / 3) / 0.15)


def test_aupro_one_region_perfect_and_inverted_maps():
    from lowdata.metrics import aupro

    masks = np.zeros((3, 6, 6), np.uint8)
    masks[1, 2:4, 1:5] = 255  # one region of 8 pixels; images 0 and 2 are good
    perfect = masks.astype(float) + np.random.default_rng(0).uniform(0, 0.5, masks.shape)
    assert aupro(masks, perfect) == pytest.approx(1.0)
    assert aupro(masks, -perfect) == pytest.approx(0.0)
    # a constant map flags everything at once: one point (1, 1); under the chord from (0, 0), the area to
    # 0.3 is 0.3^2 / 2, divided by 0.3: 0.15, what a random map gets
    assert aupro(masks, np.zeros(masks.shape)) == pytest.approx(0.15)
    assert np.isnan(aupro(np.zeros((2, 4, 4)), perfect[:2, :4, :4]))  # no defect region: NaN, no error
    with pytest.raises(LowdataError, match="one shape"):
        aupro(masks, perfect[:, :3])


def test_aupro_matches_the_definition_threshold_by_threshold():
    """Against a slow reading of the definition: for every threshold, the FPR on normal pixels and the mean
    over regions (8-connected: the diagonal pair is one region) of the fraction at or above it."""
    from scipy.ndimage import label

    from lowdata.metrics import aupro

    rng = np.random.default_rng(5)
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, 1:3, 1:3] = 1
    masks[0, 5, 5] = masks[0, 6, 6] = 1  # diagonal neighbours: one region
    masks[2, 3:8, 0:6] = 1
    heat = rng.normal(size=masks.shape) + 1.5 * masks
    heat = np.round(heat, 1)  # ties
    regions = []
    for i in range(4):
        lab, k = label(masks[i], structure=np.ones((3, 3)))
        regions += [(i, lab == j + 1) for j in range(k)]
    assert len(regions) == 3
    normal = heat[masks == 0]
    xs, ys = [0.0], [0.0]
    for t in np.unique(heat)[::-1]:
        xs.append(float((normal >= t).mean()))
        ys.append(float(np.mean([(heat[i][r] >= t).mean() for i, r in regions])))
    xs, ys = np.array(xs + [1.0]), np.array(ys + [1.0])
    j = int(np.argmax(xs > 0.3))  # the first point beyond the limit: interpolate there
    y_lim = ys[j - 1] + (0.3 - xs[j - 1]) / (xs[j] - xs[j - 1]) * (ys[j] - ys[j - 1])
    xk, yk = np.append(xs[:j], 0.3), np.append(ys[:j], y_lim)
    expected = np.sum(np.diff(xk) * (yk[1:] + yk[:-1]) / 2) / 0.3
    assert aupro(masks, heat) == pytest.approx(expected, abs=1e-12)


def test_auroc_by_type_compares_each_defect_type_with_the_normal_images_only():
    from sklearn.metrics import roc_auc_score

    from lowdata.metrics import auroc_by_type

    labels = [0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.5, 0.3, 0.9, 0.2, 0.4, 0.8]
    types = ["good", "good", "good", "logical", "logical", "structural", "structural"]
    got = auroc_by_type(labels, scores, types)
    assert list(got) == ["logical", "structural"]
    # by hand: logical {0.9, 0.2} against {0.1, 0.5, 0.3}: 0.9 beats 3, 0.2 beats 1 -> 4/6
    assert got["logical"] == roc_auc_score([0, 0, 0, 1, 1], [0.1, 0.5, 0.3, 0.9, 0.2]) == pytest.approx(4 / 6)
    # structural {0.4, 0.8}: 0.4 beats 2, 0.8 beats 3 -> 5/6
    assert got["structural"] == roc_auc_score([0, 0, 0, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8]) == pytest.approx(5 / 6)
    assert auroc_by_type([0, 1, 1], [0.1, 0.2, 0.3], ["good", "scratch", "scratch"]) == {}  # one type: nothing more
    assert auroc_by_type([1, 1], [0.1, 0.2], ["a", "b"]) == {}  # no normal image: nothing can be said
