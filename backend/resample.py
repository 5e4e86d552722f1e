"""Resampling operators shared by the baselines, ISE, training and evaluation.

The torch versions wrap ``torch.nn.functional.interpolate`` with
``align_corners=False`` (pixel-centre convention, so no half-pixel shift).
``numpy_upsample`` reproduces the same upsampling without torch, so the
baselines run where PyTorch is missing.
"""
from __future__ import annotations

import numpy as np

#: ISE / degradation kernels: name -> (downsampling mode, antialias, upsampling mode).
KERNELS = {
    # Matched to the training degradation (seed 000 section 3.1.2 uses bicubic
    # downsampling to make LR images; we antialias as torch's resize does).
    "bicubic": ("bicubic", True, "bicubic"),
    # Seed 000 section 2.4, literally: bilinear for both directions.
    "bilinear": ("bilinear", False, "bilinear"),
}

#: How far (in LR pixels) each operator reaches, used to size tile margins.
UP_RADIUS = {"nearest": 1, "bilinear": 1, "bicubic": 2}
DOWN_RADIUS = {"bilinear": 1, "bicubic": 2}


def ise_growth(kernel: str) -> int:
    """LR pixels one ISE iteration adds to the dependency radius (plus one spare)."""
    down, _, up = KERNELS[kernel]
    return DOWN_RADIUS[down] + UP_RADIUS[up] + 1


def torch_upsample(x, scale: int, mode: str):
    """Upsample a (N, C, H, W) tensor by an integer ``scale``."""
    import torch.nn.functional as F
    size = (x.shape[-2] * scale, x.shape[-1] * scale)
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def torch_downsample(x, scale: int, kernel: str = "bicubic"):
    """Downsample a (N, C, H, W) tensor by ``scale`` with an ISE kernel's operator.

    ``bicubic`` is ``interpolate(..., mode="bicubic", antialias=True)``, the
    degradation the shipped weights were trained with.
    """
    import torch.nn.functional as F
    mode, antialias, _ = KERNELS[kernel]
    size = (x.shape[-2] // scale, x.shape[-1] // scale)
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)


def _cubic(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def upsample_matrix(n_in: int, scale: int, mode: str) -> np.ndarray:
    """The (n_in*scale, n_in) matrix of 1-D upsampling, as torch computes it."""
    n_out = n_in * scale
    dst = np.arange(n_out, dtype=np.float64)
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    if mode == "nearest":
        mat[rows, np.minimum(dst // scale, n_in - 1).astype(int)] = 1.0
        return mat
    src = (dst + 0.5) / scale - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(int)
        lam = src - i0
        np.add.at(mat, (rows, np.minimum(i0, n_in - 1)), 1.0 - lam)
        np.add.at(mat, (rows, np.minimum(i0 + 1, n_in - 1)), lam)
        return mat
    if mode == "bicubic":
        i0 = np.floor(src).astype(int)
        t = src - i0
        for k in (-1, 0, 1, 2):
            np.add.at(mat, (rows, np.clip(i0 + k, 0, n_in - 1)), _cubic(t - k))
        return mat
    raise ValueError(f"unknown upsampling mode {mode!r}")


def numpy_upsample(arr: np.ndarray, scale: int, mode: str) -> np.ndarray:
    """Upsample a (C, H, W) float array like ``torch_upsample``, without torch."""
    my = upsample_matrix(arr.shape[-2], scale, mode).astype(np.float32)
    mx = upsample_matrix(arr.shape[-1], scale, mode).astype(np.float32)
    return np.einsum("yh,chw,xw->cyx", my, arr.astype(np.float32), mx, optimize=True)


def degrade(hr, scale: int, dtype):
    """The project's degradation of a (N, C, H, W) tensor: antialiased bicubic,
    computed on float values, rounded (integer types) and clipped to ``dtype``."""
    from .encoding import type_range
    lr = torch_downsample(hr.double(), scale, "bicubic")
    lo, hi = type_range(dtype)
    if np.dtype(dtype).kind in "iu":
        lr = lr.round()
    return lr.clamp(lo, hi).float()
