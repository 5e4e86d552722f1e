"""Evaluation: degrade an HR raster, super-resolve it with each model, compare.

Degradation: ``interpolate(hr, scale_factor=1/s, mode="bicubic",
antialias=True, align_corners=False)`` on float values, rounded and clipped
to the data type. Metrics are defined in ``backend.metrics``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .errors import SuperResError
from .job import RGB_INTERP, super_resolve_array
from .metrics import data_range, lr_consistency, psnr, ssim
from .torch_support import require_torch


@dataclass
class EvalRow:
    """One model and ISE setting on one image."""

    model: str
    ise: int
    psnr: float
    ssim: float
    lr_consistency: float
    seconds_per_mp: float
    psnr_bands: List[float]


def crop_to_multiple(hr: np.ndarray, scale: int) -> np.ndarray:
    """Trim rows and columns so both sides divide by ``scale``."""
    h, w = hr.shape[-2] // scale * scale, hr.shape[-1] // scale * scale
    return hr[..., :h, :w]


def evaluate_array(hr: np.ndarray, scale: int, models: Sequence[str], ise_list: Sequence[int],
                   rgb: bool = False, device: str = "auto") -> List[EvalRow]:
    """Degrade (C, H, W) ``hr`` by ``scale`` and score each model and ISE count."""
    torch = require_torch("Evaluation")
    from .resample import degrade
    hr = crop_to_multiple(hr, scale)
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)
    rows = []
    for model in models:
        for n in ise_list:
            t0 = time.perf_counter()
            sr = super_resolve_array(lr, scale, model, n, rgb=rgb, device=device)
            secs = time.perf_counter() - t0
            ranges = [data_range(hr[c], hr.dtype) for c in range(hr.shape[0])]
            pb = [psnr(sr[c], hr[c], ranges[c], scale) for c in range(hr.shape[0])]
            sb = [ssim(sr[c], hr[c], ranges[c], scale) for c in range(hr.shape[0])]
            lc = np.mean([lr_consistency(sr[c:c + 1], lr[c:c + 1], scale, ranges[c])
                          for c in range(hr.shape[0])])
            rows.append(EvalRow(model, n, float(np.mean(pb)), float(np.mean(sb)), float(lc),
                                secs / (sr.shape[-1] * sr.shape[-2] / 1e6), pb))
    return rows


def evaluate_file(path: str, scale: int, models: Sequence[str], ise_list: Sequence[int],
                  bands: Optional[Sequence[int]] = None, window: Optional[Sequence[int]] = None,
                  device: str = "auto") -> List[EvalRow]:
    """Evaluate on a raster file (optionally a pixel window x, y, w, h of it)."""
    from .raster_io import GdalReader, read_info
    from .tiling import Window
    info = read_info(path)
    bands = list(bands or range(1, info.band_count + 1))
    win = Window(*window) if window else Window(0, 0, info.width, info.height)
    if win.w < 4 * scale or win.h < 4 * scale:
        raise SuperResError(f"The HR raster is too small to evaluate x{scale}.")
    reader = GdalReader(info, bands)
    hr = reader.read(win)
    reader.close()
    rgb = tuple(info.bands[b - 1].color_interp for b in bands) == RGB_INTERP
    return evaluate_array(hr, scale, models, ise_list, rgb, device)


def format_table(rows: Sequence[EvalRow]) -> str:
    """A markdown table of ``rows``, with the gain over the bicubic row."""
    base = {r.ise: r.psnr for r in rows if r.model == "bicubic"}
    ref = base.get(0, next(iter(base.values()), None))
    out = ["| model | ISE | PSNR (dB) | vs bicubic (dB) | SSIM | LR consistency (% of R) | s / output MP |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        gain = f"{r.psnr - ref:+.2f}" if ref is not None else "n/a"
        out.append(f"| {r.model} | {r.ise} | {r.psnr:.2f} | {gain} | {r.ssim:.4f} | "
                   f"{r.lr_consistency:.3f} | {r.seconds_per_mp:.2f} |")
    return "\n".join(out)
