"""Image quality metrics, with the definitions the reports state.

PSNR = 10 log10(R^2 / MSE) with R = 255 for Byte and otherwise the HR
band's valid max - min, after shaving ``shave`` pixels at each border, on
values already rounded to the output type. SSIM follows Wang et al. 2004
(11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) with the same R.
"""
from __future__ import annotations

import math
import numpy as np


def data_range(hr: np.ndarray, dtype) -> float:
    """R: 255 for Byte, otherwise the HR values' max - min."""
    if np.dtype(dtype) == np.uint8:
        return 255.0
    return float(np.nanmax(hr) - np.nanmin(hr)) or 1.0


def _shave(a: np.ndarray, shave: int) -> np.ndarray:
    return a[..., shave:a.shape[-2] - shave, shave:a.shape[-1] - shave] if shave else a


def psnr(sr: np.ndarray, hr: np.ndarray, r: float, shave: int = 0) -> float:
    """Peak signal-to-noise ratio in dB of a 2-D band (or a stack, pooled)."""
    d = _shave(sr.astype(np.float64), shave) - _shave(hr.astype(np.float64), shave)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10 * math.log10(r * r / mse)


def _gauss_filter(a: np.ndarray, size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    # "valid" separable filtering, as the reference implementation does
    a = np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 0, a)
    return np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 1, a)


def ssim(sr: np.ndarray, hr: np.ndarray, r: float, shave: int = 0) -> float:
    """Mean SSIM of one 2-D band (Wang et al. 2004)."""
    x = _shave(sr.astype(np.float64), shave)
    y = _shave(hr.astype(np.float64), shave)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    mx, my = _gauss_filter(x), _gauss_filter(y)
    sxx = _gauss_filter(x * x) - mx * mx
    syy = _gauss_filter(y * y) - my * my
    sxy = _gauss_filter(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def lr_consistency(sr: np.ndarray, lr: np.ndarray, scale: int, r: float,
                   kernel: str = "bicubic") -> float:
    """RMSE between down(SR) and the LR, as a % of R."""
    import torch
    from .resample import torch_downsample
    down = torch_downsample(torch.from_numpy(sr.astype(np.float64))[None], scale, kernel)[0].numpy()
    return float(np.sqrt(np.mean((down - lr.astype(np.float64)) ** 2)) / r * 100)


def phase_shift(a: np.ndarray, b: np.ndarray, upsample: int = 20, max_freq: float = 0.5) -> tuple:
    """Sub-pixel (dy, dx) by which ``a`` is ``b`` moved, by phase correlation.

    Only frequencies below ``max_freq`` (cycles per pixel) are compared: an
    SR image has no real content above the LR Nyquist frequency, and its
    whitened noise there would make spurious peaks. The peak is refined on a
    grid ``upsample`` times finer by a local matrix-multiply DFT
    (Guizar-Sicairos et al. 2008).
    """
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2(a * win), np.fft.fft2(b * win)
    cross = fa * np.conj(fb)
    cross /= np.abs(cross) + 1e-12
    fy, fx = np.fft.fftfreq(a.shape[0]), np.fft.fftfreq(a.shape[1])
    cross[(np.abs(fy)[:, None] > max_freq) | (np.abs(fx)[None, :] > max_freq)] = 0
    corr = np.abs(np.fft.ifft2(cross))
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), float)
    shape = np.array(corr.shape)
    peak[peak > shape // 2] -= shape[peak > shape // 2]
    # refine in a 1.5-pixel neighbourhood
    n = int(np.ceil(upsample * 1.5))
    off = peak - (n // 2) / upsample
    ys = off[0] + np.arange(n) / upsample
    xs = off[1] + np.arange(n) / upsample
    ky = np.exp(2j * np.pi * np.outer(ys, fy))
    kx = np.exp(2j * np.pi * np.outer(fx, xs))
    up = np.abs(ky @ cross @ kx)
    iy, ix = np.unravel_index(np.argmax(up), up.shape)
    return float(ys[iy]), float(xs[ix])


def sam_degrees(sr: np.ndarray, hr: np.ndarray) -> float:
    """Spectral angle mapper: mean angle (degrees) between (C, H, W) pixel spectra."""
    a = sr.reshape(sr.shape[0], -1).astype(np.float64)
    b = hr.reshape(hr.shape[0], -1).astype(np.float64)
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


def ergas(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """ERGAS = 100 / s * sqrt(mean over bands of (RMSE_c / mean_c(HR))^2)."""
    terms = []
    for c in range(hr.shape[0]):
        rmse = np.sqrt(np.mean((sr[c].astype(np.float64) - hr[c].astype(np.float64)) ** 2))
        terms.append((rmse / max(float(np.mean(hr[c])), 1e-12)) ** 2)
    return float(100.0 / scale * np.sqrt(np.mean(terms)))


def gradient_error(sr: np.ndarray, hr: np.ndarray, r: float, shave: int = 0) -> float:
    """Gradient-map error of a 2-D band: mean |Sobel(SR) - Sobel(HR)|, x and y, as % of R.

    The Sobel responses are those of the gradient-aware loss (seed 000
    eq. 3-4), computed on the interior so no padding enters.
    """
    def sobel(a: np.ndarray):
        gx = (a[:-2, 2:] + 2 * a[1:-1, 2:] + a[2:, 2:]) - (a[:-2, :-2] + 2 * a[1:-1, :-2] + a[2:, :-2])
        gy = (a[2:, :-2] + 2 * a[2:, 1:-1] + a[2:, 2:]) - (a[:-2, :-2] + 2 * a[:-2, 1:-1] + a[:-2, 2:])
        return gx, gy
    (sx, sy), (hx, hy) = sobel(_shave(sr.astype(np.float64), shave)), sobel(_shave(hr.astype(np.float64), shave))
    return float((np.abs(sx - hx).mean() + np.abs(sy - hy).mean()) / 2 / r * 100)
