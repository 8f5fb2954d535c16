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
