"""Metrics against hand-computed values."""
import math

import numpy as np
import pytest

from backend.metrics import data_range, ergas, gradient_error, psnr, sam_degrees, ssim


def test_psnr_by_hand():
    hr = np.zeros((6, 6), np.uint8)
    sr = hr.copy()
    sr[2, 3] = 10                                   # one error of 10 among 16 unshaved pixels
    assert psnr(sr, hr, 255, shave=1) == pytest.approx(10 * math.log10(255 ** 2 / (100 / 16)))
    assert psnr(hr, hr, 255) == float("inf")
    assert data_range(np.array([3, 900], np.uint16), np.uint16) == 897
    assert data_range(np.array([3, 200], np.uint8), np.uint8) == 255   # Byte: its full range, not 197


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


def test_gradient_error_by_hand():
    hr = np.zeros((5, 5))
    sr = np.tile(np.arange(5.0), (5, 1))           # a ramp of 1 per column
    # Sobel x of the ramp: (1 + 2 + 1) * (x+1 - (x-1)) = 8 everywhere inside, Sobel y 0;
    # the mean over x and y is (8 + 0) / 2 = 4, which is 4 % of R = 100
    assert gradient_error(sr, hr, 100.0) == pytest.approx(4.0)
    assert gradient_error(hr, hr, 100.0) == 0.0


def test_psnr_and_ssim_match_scikit_image_on_a_real_pair():
    """An independent reference: scikit-image (Debian's, built on the same numpy)."""
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from backend.resample import degrade, torch_upsample
    from helpers import AERIAL, LANDSAT, read
    for path, scale in ((AERIAL, 4), (LANDSAT, 2)):
        hr = read(path)
        lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)
        sr = torch_upsample(lr, scale, "bicubic")[0].numpy()
        sr = np.clip(np.round(sr), np.iinfo(hr.dtype).min, np.iinfo(hr.dtype).max).astype(hr.dtype)
        for c in range(hr.shape[0]):
            r = data_range(hr[c], hr.dtype)
            a, b = hr[c, scale:-scale, scale:-scale], sr[c, scale:-scale, scale:-scale]
            ref_ssim = structural_similarity(b.astype(float), a.astype(float), data_range=r,
                                             gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            assert ssim(sr[c], hr[c], r, scale) == pytest.approx(ref_ssim, abs=1e-6)
            assert psnr(sr[c], hr[c], r, scale) == pytest.approx(
                peak_signal_noise_ratio(a.astype(float), b.astype(float), data_range=r), abs=1e-9)
            assert 0.2 < ref_ssim < 0.99  # a real, imperfect pair
