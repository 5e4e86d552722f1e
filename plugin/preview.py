"""The dialog's preview, size and time estimates; the dialog itself computes nothing.

The preview runs the real pipeline (``run_job``) twice on a small window of
the visible map, with the chosen model and with plain bicubic, and draws
both with the input's renderer, so what is shown is what the run will make.
The time estimate times two small crops and fits fixed cost plus cost per
pixel the network computes (tile margins included).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from qgis.core import QgsRasterLayer, QgsRectangle, QgsTask
from qgis.PyQt.QtGui import QImage

from ..backend.errors import SuperResError
from ..backend.job import SuperResolveJob, run_job
from .result_layer import LayerLook, apply_look

#: Most output pixels per side of a preview (the input window is this over the scale).
PREVIEW_MAX_OUTPUT = 512
#: Input crops (pixels per side) timed for the estimate.
TIMING_CROPS = (32, 64)
#: Extra pixels the automatic tiles' margins add to a whole run (at most 15%).
RUN_MARGIN_COST = 1.1


def layer_path(layer: QgsRasterLayer) -> str:
    """The file behind a GDAL layer."""
    return layer.source().split("|")[0]


def snap_window(layer: QgsRasterLayer, rect: QgsRectangle) -> Tuple[int, int, int, int]:
    """(col, row, width, height) of ``rect`` (layer CRS) on the layer's pixel grid, clipped."""
    ext = layer.extent()
    px, py = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
    eps = 1e-6   # keeps an extent already on the grid from growing by one pixel
    c0 = max(0, math.floor((rect.xMinimum() - ext.xMinimum()) / px + eps))
    c1 = min(layer.width(), math.ceil((rect.xMaximum() - ext.xMinimum()) / px - eps))
    r0 = max(0, math.floor((ext.yMaximum() - rect.yMaximum()) / py + eps))
    r1 = min(layer.height(), math.ceil((ext.yMaximum() - rect.yMinimum()) / py - eps))
    return c0, r0, max(0, c1 - c0), max(0, r1 - r0)


def window_rect(layer: QgsRasterLayer, col: int, row: int, width: int, height: int) -> QgsRectangle:
    """The ground covered by a pixel window, in the layer's CRS."""
    ext = layer.extent()
    px, py = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
    x0, y1 = ext.xMinimum() + col * px, ext.yMaximum() - row * py
    return QgsRectangle(x0, y1 - height * py, x0 + width * px, y1)


def preview_rect(layer: QgsRasterLayer, visible: QgsRectangle, scale: int) -> Optional[QgsRectangle]:
    """The part of ``visible`` (layer CRS) the preview covers, or None off the layer.

    At most ``PREVIEW_MAX_OUTPUT // scale`` input pixels per side, around the
    centre of the visible part of the layer, on whole pixels.
    """
    part = visible.intersect(layer.extent())
    if part.isEmpty():
        return None
    col, row, w, h = snap_window(layer, part)
    side = max(8, PREVIEW_MAX_OUTPUT // scale)
    if w < 1 or h < 1:
        return None
    col, w = (col + (w - side) // 2, side) if w > side else (col, w)
    row, h = (row + (h - side) // 2, side) if h > side else (row, h)
    return window_rect(layer, col, row, w, h)


def output_estimate(layer: QgsRasterLayer, rect: Optional[QgsRectangle], scale: int,
                    band_count: int) -> Tuple[int, int, int]:
    """(width, height, bytes) of the output for ``rect`` (layer CRS; None = whole layer)."""
    if rect is None:
        w, h = layer.width(), layer.height()
    else:
        _c, _r, w, h = snap_window(layer, rect)
    size = layer.dataProvider().dataTypeSize(1) if layer.dataProvider() else 1
    return w * scale, h * scale, w * scale * h * scale * band_count * size


def human_bytes(n: float) -> str:
    """1.5 GB, 320 MB, 12 kB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def human_seconds(s: float) -> str:
    """About how long, in words."""
    if s < 60:
        return f"{max(1, round(s))} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class RunSettings:
    """What a preview or a timing runs: the dialog's choices, without output or extent."""

    path: str
    model: str
    scale: int
    ise_iterations: int
    bands: List[int] = field(default_factory=list)
    device: str = "auto"
    nodata: str = "declared"

    def job(self, output: str, extent=None, model: Optional[str] = None,
            ise: Optional[int] = None) -> SuperResolveJob:
        """A backend job writing ``output`` over ``extent`` (layer CRS)."""
        return SuperResolveJob(self.path, output, model=model or self.model, scale=self.scale,
                               ise_iterations=self.ise_iterations if ise is None else ise,
                               extent=extent, bands=self.bands or None, device=self.device, overwrite=True,
                               src_nodata=self.nodata)


def _tuple(rect: QgsRectangle):
    return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())


class PreviewTask(QgsTask):
    """Super-resolves a small window with the model and with bicubic, in the background.

    After it ends, ``outputs`` holds (model output, bicubic output) paths,
    ``seconds`` the model run's time and ``error`` a one-line message.
    """

    def __init__(self, settings: RunSettings, rect: QgsRectangle, folder: str):
        super().__init__(f"Preview of {settings.model} x{settings.scale}", QgsTask.Flag.CanCancel)
        self.settings, self.extent, self.folder = settings, _tuple(rect), folder
        self.outputs: Tuple[str, str] = ("", "")
        self.seconds = 0.0
        self.error = ""

    def run(self) -> bool:
        """Both runs, on the worker thread."""
        stamp = f"{time.monotonic_ns()}"
        model_out = os.path.join(self.folder, f"preview_{self.settings.model}_{stamp}.tif")
        bicubic_out = os.path.join(self.folder, f"preview_bicubic_{stamp}.tif")
        try:
            result = run_job(self.settings.job(model_out, self.extent), is_cancelled=self.isCanceled,
                             progress=lambda f: self.setProgress(80 * f))
            self.seconds = result.seconds
            run_job(self.settings.job(bicubic_out, self.extent, model="bicubic", ise=0),
                    is_cancelled=self.isCanceled, progress=lambda f: self.setProgress(80 + 20 * f))
        except SuperResError as exc:
            self.error = str(exc)
            return False
        self.outputs = (model_out, bicubic_out)
        return True


class TimingTask(QgsTask):
    """Times two small crops at the layer's centre; ``per_pixel`` and ``fixed`` seconds result.

    ``per_pixel`` is per input pixel the network computes (core plus
    margins), ``fixed`` what a run costs whatever its size (loading the
    weights, the statistics).
    """

    def __init__(self, settings: RunSettings, layer: QgsRasterLayer, folder: str):
        super().__init__(f"Timing {settings.model} x{settings.scale}", QgsTask.Flag.CanCancel)
        self.settings, self.folder = settings, folder
        self.crops = []
        for side in TIMING_CROPS:
            side_w, side_h = min(side, layer.width()), min(side, layer.height())
            col, row = (layer.width() - side_w) // 2, (layer.height() - side_h) // 2
            self.crops.append(_tuple(window_rect(layer, col, row, side_w, side_h)))
        self.per_pixel = self.fixed = 0.0
        self.error = ""
        self.timed = False

    def run(self) -> bool:
        """Both crops, on the worker thread."""
        points = []
        try:
            for i, crop in enumerate(self.crops):
                if self.isCanceled():
                    return False
                out = os.path.join(self.folder, f"timing_{i}_{time.monotonic_ns()}.tif")
                result = run_job(self.settings.job(out, crop), is_cancelled=self.isCanceled)
                core = (result.width // self.settings.scale) * (result.height // self.settings.scale)
                side = core ** 0.5
                points.append(((side + 2 * result.margin) ** 2 * result.tiles, result.seconds))
                Path(out).unlink(missing_ok=True)
        except SuperResError as exc:
            self.error = str(exc)
            return False
        (p0, t0), (p1, t1) = points
        self.per_pixel = max(0.0, (t1 - t0) / (p1 - p0)) if p1 > p0 else t1 / max(p1, 1)
        self.fixed = max(0.0, t0 - self.per_pixel * p0)
        self.timed = True
        return True

    def estimate(self, input_pixels: int) -> float:
        """Seconds a run over ``input_pixels`` input pixels should take."""
        return self.fixed + self.per_pixel * input_pixels * RUN_MARGIN_COST


def render(path: str, look: Optional[LayerLook], bands: Sequence[int]) -> QImage:
    """The raster at ``path`` drawn with the input's look, at its own size."""
    layer = QgsRasterLayer(path, "preview")
    if not layer.isValid():
        return QImage()
    apply_look(look, layer, bands)
    block = layer.pipe().last().block(1, layer.extent(), layer.width(), layer.height())
    return block.image().copy()
