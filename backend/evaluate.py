"""Evaluation: degrade an HR raster, super-resolve it with each model, compare.

Degradation: ``interpolate(hr, scale_factor=1/s, mode="bicubic",
antialias=True, align_corners=False)`` on float values, rounded and clipped
to the data type. Metrics are defined in ``backend.metrics``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import SuperResError
from .job import RGB_INTERP, super_resolve_array
from .metrics import data_range, ergas, gradient_error, lr_consistency, psnr, sam_degrees, ssim
from .registry import check_scale, get_model, resolve_weight_set
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
    sam: float = float("nan")
    ergas: float = float("nan")
    ssim_bands: List[float] = field(default_factory=list)
    mse: float = float("nan")          # mean over bands (seed 000 eq. 7-9)
    weights: str = ""                  # weight set used (networks)
    grad_error: float = float("nan")   # gradient-map error, % of R (metrics.gradient_error)
    adapt: int = 0                     # image-specific adaptation steps (backend.adapt)
    adapt_note: str = ""               # what the adaptation did (its log line)

    @property
    def label(self) -> str:
        """The model, with its adaptation steps when adapted."""
        return self.model + (f" + adapt {self.adapt}" if self.adapt else "")


def crop_to_multiple(hr: np.ndarray, scale: int) -> np.ndarray:
    """Trim rows and columns so both sides divide by ``scale``."""
    h, w = hr.shape[-2] // scale * scale, hr.shape[-1] // scale * scale
    return hr[..., :h, :w]


#: The evaluation's extra row: GDAL's own cubic resampling (``gdalwarp -r cubic``).
GDALWARP_CUBIC = "gdalwarp-cubic"


def evaluate_array(hr: np.ndarray, scale: int, models: Sequence[str], ise_list: Sequence[int],
                   rgb: bool = False, device: str = "auto", keep=None,
                   lr: Optional[np.ndarray] = None, weights: str = "auto",
                   pixel_size_m: Optional[float] = None, precision: str = "fp32",
                   adapt: Sequence[int] = (0,)) -> List[EvalRow]:
    """Score each model and ISE count at recovering (C, H, W) ``hr`` from its LR.

    Networks run in ``precision`` (fp32 by default, so scores do not depend
    on whether the machine has bf16; ``bench`` measures bf16's effect).

    The LR is ``hr`` degraded by ``scale``, or the given real ``lr`` (a
    degradation this project did not make, such as Landsat B2_60m -> B2).
    ``keep(model, ise, sr)``, if given, receives each SR array (e.g. to save it).
    ``weights`` is a weight set or ``auto`` (chosen from the LR's
    ``pixel_size_m`` and data type, as a run on the LR would choose).
    Model ``gdalwarp-cubic`` is GDAL's cubic warp, for ISE 0 only; a network
    name ending in ``+`` (``dganet+``) runs it with the 8-fold self-ensemble.
    Each network also runs adapted to the LR image for each step count in
    ``adapt`` (``backend.adapt``; 0 is the network as it is); ``keep``
    then receives ``<model>_adapt<steps>`` as the model.
    """
    torch = require_torch("Evaluation")
    from .resample import degrade
    if lr is None:
        hr = crop_to_multiple(hr, scale)
        lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)
    else:
        lr = lr.astype(hr.dtype)
        if hr.shape[-2] < lr.shape[-2] * scale or hr.shape[-1] < lr.shape[-1] * scale:
            raise SuperResError(f"The HR raster must be at least {scale} times the LR raster's size.")
        hr = hr[..., :lr.shape[-2] * scale, :lr.shape[-1] * scale]
    from .encoding import gdal_type_name
    rows = []
    for model in models:
        chosen = ""
        name, ensemble = (model[:-1], True) if model.endswith("+") else (model, False)
        if model != GDALWARP_CUBIC and get_model(name).kind == "network":
            spec = get_model(name)
            chosen = resolve_weight_set(spec, scale, weights, pixel_size_m, gdal_type_name(hr.dtype))[0]
        for steps, n in [(a, n) for a in (adapt if chosen else [0]) for n in ise_list]:
            if model == GDALWARP_CUBIC and n:
                continue
            notes = []
            t0 = time.perf_counter()
            sr = (gdalwarp_cubic(lr, scale) if model == GDALWARP_CUBIC else
                  super_resolve_array(lr, scale, name, n, rgb=rgb, device=device, weights=chosen or "auto",
                                      self_ensemble=ensemble, precision=precision, adapt_steps=steps,
                                      log=lambda line: notes.append(line) if line.startswith("Adaptation:") else None))
            secs = time.perf_counter() - t0
            ranges = [data_range(hr[c], hr.dtype) for c in range(hr.shape[0])]
            pb = [psnr(sr[c], hr[c], ranges[c], scale) for c in range(hr.shape[0])]
            sb = [ssim(sr[c], hr[c], ranges[c], scale) for c in range(hr.shape[0])]
            s = scale
            mse = float(np.mean([np.mean((sr[c, s:-s, s:-s].astype(np.float64) - hr[c, s:-s, s:-s]) ** 2)
                                 for c in range(hr.shape[0])]))
            lc = np.mean([lr_consistency(sr[c:c + 1], lr[c:c + 1], scale, ranges[c])
                          for c in range(hr.shape[0])])
            spectral = hr.shape[0] > 1
            rows.append(EvalRow(model, n, float(np.mean(pb)), float(np.mean(sb)), float(lc),
                                secs / (sr.shape[-1] * sr.shape[-2] / 1e6), pb,
                                sam_degrees(sr[:, s:-s, s:-s], hr[:, s:-s, s:-s]) if spectral else float("nan"),
                                ergas(sr[:, s:-s, s:-s], hr[:, s:-s, s:-s], s), sb, mse, chosen,
                                float(np.mean([gradient_error(sr[c], hr[c], ranges[c], s)
                                               for c in range(hr.shape[0])])), steps,
                                notes[0] if notes else ""))
            if keep is not None:
                keep(f"{model}_adapt{steps}" if steps else model, n, sr)
    return rows


def gdalwarp_cubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """``gdalwarp -r cubic`` of a (C, h, w) array to (C, h*s, w*s), in its data type."""
    from osgeo import gdal_array
    from .raster_io import gdal_exceptions, gdal_message
    c, h, w = lr.shape
    with gdal_exceptions() as gdal:
        try:
            src = gdal_array.OpenArray(np.ascontiguousarray(lr))
            src.SetGeoTransform((0.0, float(scale), 0.0, 0.0, 0.0, -float(scale)))
            dst = gdal.Warp("", src, format="MEM", width=w * scale, height=h * scale,
                            outputBounds=(0.0, -h * scale, w * scale, 0.0), resampleAlg="cubic")
            out = dst.ReadAsArray()
        except RuntimeError as exc:
            raise SuperResError(f"GDAL's cubic warp ({GDALWARP_CUBIC}) failed: {gdal_message(exc)}.") from None
    return out.reshape(c, h * scale, w * scale)


def evaluate_file(path: str, scale: int, models: Sequence[str], ise_list: Sequence[int],
                  bands: Optional[Sequence[int]] = None, window: Optional[Sequence[int]] = None,
                  device: str = "auto", sr_folder: Optional[str] = None,
                  lr_path: Optional[str] = None, weights: str = "auto",
                  rgb: Optional[bool] = None, precision: str = "fp32",
                  adapt: Sequence[int] = (0,)) -> List[EvalRow]:
    """Evaluate on a raster file (optionally a pixel window x, y, w, h of it).

    With ``lr_path``, the LR is that raster (a real pair, same top-left
    corner, pixel size ``scale`` times larger) instead of a degradation.

    With ``sr_folder``, each SR result is also written there as a GeoTIFF on
    the HR grid (``<model>_ise<N>_x<s>.tif``). ``rgb`` None reads the bands'
    colour interpretation; True treats the selected three bands as R, G, B.
    ``adapt`` lists adaptation step counts for the networks (``evaluate_array``).
    """
    from .raster_io import GdalReader, GdalWriter, read_info
    from .window import Window
    info = read_info(path)
    for model in models:
        if model != GDALWARP_CUBIC:
            check_scale(get_model(model.rstrip("+")), scale)
    bands = list(bands or range(1, info.band_count + 1))
    win = Window(*window) if window else Window(0, 0, info.width, info.height)
    if win.w < 4 * scale or win.h < 4 * scale:
        raise SuperResError(f"The HR raster is too small to evaluate x{scale}.")
    reader = GdalReader(info, bands)
    hr = reader.read(win)
    reader.close()
    if rgb is None:
        rgb = tuple(info.bands[b - 1].color_interp for b in bands) == RGB_INTERP
    keep = None
    if sr_folder:
        x0, pw, _, y0, _, ph = info.geotransform
        gt = (x0 + win.x * pw, pw, 0.0, y0 + win.y * ph, 0.0, ph)
        band_infos = [info.bands[b - 1] for b in bands]

        def write_sr(model, n, sr):
            """Write one SR result beside the report."""
            out = Path(sr_folder) / f"{model}_ise{n}_x{scale}.tif"
            writer = GdalWriter(str(out), sr.shape[2], sr.shape[1], gt, info.crs_wkt, info.gdal_type,
                                band_infos, [b.nodata for b in band_infos])
            try:
                writer.write(Window(0, 0, sr.shape[2], sr.shape[1]), sr)
                writer.commit(overwrite=True)
            except BaseException:
                writer.abort()
                raise
        keep = write_sr
    lr = None
    if lr_path:
        lr_info = read_info(lr_path)
        ratio = lr_info.geotransform[1] / info.geotransform[1]
        if abs(ratio - scale) > 1e-6 or lr_info.geotransform[0] != info.geotransform[0] or \
                lr_info.geotransform[3] != info.geotransform[3] or window:
            raise SuperResError(f"The LR raster's pixels must be exactly {scale} times the HR's, on the "
                                "same top-left corner (and no window).")
        lr_reader = GdalReader(lr_info, bands)
        lr = lr_reader.read(Window(0, 0, lr_info.width, lr_info.height))
        lr_reader.close()
    lr_px = info.pixel_size_m * scale if info.pixel_size_m else None
    return evaluate_array(hr, scale, models, ise_list, rgb, device, keep, lr, weights, lr_px, precision,
                          adapt)


def write_csv(rows: Sequence[EvalRow], path) -> None:
    """The rows as CSV, one line per model and ISE count, per-band PSNR last."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "weights", "ise", "psnr_db", "ssim", "mse", "gradient_error_pct", "sam_deg",
                    "ergas", "lr_consistency_pct", "seconds_per_output_mp", "psnr_per_band_db",
                    "ssim_per_band", "adapt_steps"])
        for r in rows:
            w.writerow([r.model, r.weights, r.ise, f"{r.psnr:.4f}", f"{r.ssim:.5f}", f"{r.mse:.4f}",
                        f"{r.grad_error:.4f}", f"{r.sam:.4f}", f"{r.ergas:.4f}",
                        f"{r.lr_consistency:.4f}", f"{r.seconds_per_mp:.3f}",
                        " ".join(f"{p:.3f}" for p in r.psnr_bands), " ".join(f"{p:.5f}" for p in r.ssim_bands),
                        r.adapt])


DEFINITIONS = ("Degradation: torch interpolate(hr, 1/s, bicubic, antialias=True, align_corners=False) "
               "on float values, rounded and clipped to the data type. PSNR = 10 log10(R^2/MSE), R = 255 "
               "for Byte, else the HR band's max - min, s pixels shaved at each border, on values "
               "rounded to the output type; SSIM: Wang et al. 2004 (11x11 Gaussian, sigma 1.5, K1 0.01, "
               "K2 0.03, same R), mean over bands; SAM in degrees; ERGAS = 100/s sqrt(mean (RMSE/mean)^2); "
               "MSE: mean over bands of the per-band mean squared error (seed 000 eq. 7-9); "
               "LR consistency: RMSE between down(SR) and the LR as % of R; gradient error: mean "
               "|Sobel(SR) - Sobel(HR)| over x and y as % of R; bicubic baseline: torch interpolate(lr, s, "
               "bicubic, align_corners=False); gdalwarp-cubic: GDAL's cubic warp; adapt: the network "
               "fine-tuned for that many steps on pairs made from the LR image itself (ADAPT_STEPS), "
               "its time included.")


def write_html(rows: Sequence[EvalRow], path, title: str) -> None:
    """A standalone HTML page with the table and the metric definitions."""
    import html
    base = next((r.psnr for r in rows if r.model == "bicubic" and r.ise == 0), None)
    cells = "".join(
        f"<tr><td>{html.escape(r.model)}</td><td>{html.escape(r.weights or '-')}</td><td>{r.ise}</td><td>{r.psnr:.2f}</td>"
        f"<td>{'' if base is None else f'{r.psnr - base:+.2f}'}</td><td>{r.ssim:.4f}</td>"
        f"<td>{r.grad_error:.3f}</td><td>{r.sam:.3f}</td><td>{r.ergas:.3f}</td><td>{r.lr_consistency:.3f}</td>"
        f"<td>{r.seconds_per_mp:.2f}</td><td>{r.adapt}</td></tr>" for r in rows)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><table border='1' cellpadding='4'>"
            "<tr><th>model</th><th>weights</th><th>ISE</th><th>PSNR (dB)</th><th>vs bicubic (dB)</th><th>SSIM</th>"
            "<th>gradient error (% of R)</th><th>SAM (deg)</th><th>ERGAS</th><th>LR consistency (% of R)</th><th>s / output MP</th>"
            "<th>adapt steps</th></tr>"
            f"{cells}</table><p>{html.escape(DEFINITIONS)}</p></body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def format_table(rows: Sequence[EvalRow], label=lambda r: r.label,
                 extra_columns: Sequence[str] = (), extra: Optional[Dict[str, Sequence[str]]] = None) -> str:
    """A markdown table of ``rows``, with the gain over the bicubic row; ``label(row)`` names a row.

    ``extra`` maps a model name to the values of ``extra_columns`` for its
    rows (other rows show "-").
    """
    base = {r.ise: r.psnr for r in rows if r.model == "bicubic" and not r.adapt}
    ref = base.get(0, next(iter(base.values()), None))
    extra = extra or {}
    head = "".join(f" {c} |" for c in extra_columns)
    out = ["| model | weights | ISE | PSNR (dB) | vs bicubic (dB) | SSIM | gradient error (% of R) "
           "| LR consistency (% of R) | s / output MP |" + head, "|---|---|---|---|---|---|---|---|---|"
           + "---|" * len(extra_columns)]
    for r in rows:
        gain = f"{r.psnr - ref:+.2f}" if ref is not None else "n/a"
        cells = "".join(f" {v} |" for v in extra.get(r.model, ["-"] * len(extra_columns)))
        out.append(f"| {label(r)} | {r.weights or '-'} | {r.ise} | {r.psnr:.2f} | {gain} | {r.ssim:.4f} | "
                   f"{r.grad_error:.3f} | {r.lr_consistency:.3f} | {r.seconds_per_mp:.2f} |" + cells)
    return "\n".join(out)


def _sdpa_flops(q, k, *_args, out_shape=None, **_kwargs) -> int:
    """FLOPs of scaled dot-product attention (Q K^T and the weighted sum), from shapes."""
    b, h, length, d = q
    return 4 * b * h * length * k[-2] * d


def network_costs(model: str, scale: int, bands: int = 3, lr_side: int = 48, repeats: int = 3) -> Dict[str, float]:
    """Parameters, FLOPs and CPU seconds per output megapixel of a registry network.

    Measured on one forward pass (float32, one CPU thread, random weights:
    the cost does not depend on them) of an ``lr_side``-square input; a
    network with a fixed window (``ModelSpec.fixed_tile``) runs on that
    window and is charged for its core only, as its tiles overlap by design.
    Tile margins of other networks are not included. FLOPs count
    convolutions, matrix products and attention (2 per multiply-add); CPU
    seconds are process time, the best of ``repeats`` passes.
    """
    torch = require_torch("Cost measurement")
    from torch.utils.flop_counter import FlopCounterMode
    spec = get_model(model)
    net = spec.build(bands, scale).eval()
    side = spec.fixed_tile or lr_side
    core = (side - 2 * spec.fixed_margin) if spec.fixed_tile else side
    out_mp = (core * scale) ** 2 / 1e6
    x = torch.rand(1, bands, side, side)
    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            with counter:
                net(x)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.process_time()
                net(x)
                best = min(best, time.process_time() - t0)
    finally:
        torch.set_num_threads(threads)
    return {"params": float(sum(p.numel() for p in net.parameters())),
            "gflops_per_mp": counter.get_total_flops() / 1e9 / out_mp, "cpu_s_per_mp": best / out_mp}
