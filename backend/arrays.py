"""In-memory (or memory-mapped) readers and writers for the tile pipeline.

They let the same pipeline run on numpy arrays where GDAL is absent, such
as a GPU machine, in training and evaluation.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .window import Window, sample_shape


class ArrayReader:
    """Windowed reads from a (C, H, W) array (which may be a ``np.memmap``)."""

    def __init__(self, array: np.ndarray, nodata: Optional[Sequence] = None):
        if array.ndim == 2:
            array = array[None]
        self.array = array
        self.nodata = list(nodata) if nodata is not None else [None] * array.shape[0]

    def read(self, window: Window) -> np.ndarray:
        """(C, h, w) copy of ``window``."""
        return np.array(self.array[:, window.y:window.y + window.h, window.x:window.x + window.w])

    def read_sample(self, window: Window, max_pixels: int) -> np.ndarray:
        """The same nearest-neighbour decimation GDAL's buffered read makes."""
        bw, bh = sample_shape(window, max_pixels)
        cols = window.x + ((np.arange(bw) + 0.5) * window.w / bw).astype(int)
        rows = window.y + ((np.arange(bh) + 0.5) * window.h / bh).astype(int)
        return self.array[:, rows][:, :, cols]


class ArrayWriter:
    """Collects HR tiles into a (C, H, W) array (or a writable memmap)."""

    def __init__(self, shape, dtype, out: Optional[np.ndarray] = None):
        self.array = out if out is not None else np.zeros(shape, dtype=dtype)

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Store ``values`` at ``window`` (nodata is already in ``values``)."""
        self.array[:, window.y:window.y + window.h, window.x:window.x + window.w] = values
