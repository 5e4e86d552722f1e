"""Metrics against hand-computed values."""
import math

import numpy as np
import pytest

from backend.metrics import data_range, ergas, psnr, sam_degrees, ssim


def test_psnr_by_hand():
    hr = np.zeros((6, 6), np.uint8)
    sr = hr.copy()
    sr[2, 3] = 10                                   # one error of 10 among 16 unshaved pixels
    assert psnr(sr, hr, 255, shave=1) == pytest.approx(10 * math.log10(255 ** 2 / (100 / 16)))
    assert psnr(hr, hr, 255) == float("inf")
    assert data_range(np.array([3, 900], np.uint16), np.uint16) == 897
    assert data_range(np.array([3, 900], np.uint8), np.uint8) == 255


def test_ssim_identity_and_constant_shift():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32)).astype(float)
    assert ssim(img, img, 255) == pytest.approx(1.0)
    # a constant offset changes only the luminance term: l = (2 mu_x mu_y + C1)/(mu_x^2 + mu_y^2 + C1)
    flat = np.full((20, 20), 100.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert ssim(flat + 10, flat, 255) == pytest.approx(expected)


def test_sam_and_ergas_by_hand():
    hr = np.ones((2, 1, 1))
    sr = np.array([[[1.0]], [[0.0]]])
    assert sam_degrees(sr, hr) == pytest.approx(45.0)
    hr = np.full((2, 2, 2), 10.0)
    sr = hr + 1.0                                   # RMSE 1, mean 10 -> 100/4 * 0.1
    assert ergas(sr, hr, 4) == pytest.approx(2.5)
