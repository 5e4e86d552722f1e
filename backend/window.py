"""Pixel windows, the lowest layer of the tile pipeline.

Readers, writers and the tiler all speak in ``Window``; keeping it here,
with no imports from the rest of the backend, lets ``raster_io`` and
``arrays`` use it without importing the tiler (and with it the engine).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Window:
    """A pixel window: column ``x``, row ``y``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    def scaled(self, s: int) -> "Window":
        """The same ground area on a grid ``s`` times finer."""
        return Window(self.x * s, self.y * s, self.w * s, self.h * s)


def sample_shape(window: Window, max_pixels: int) -> Tuple[int, int]:
    """Buffer size of a statistics sample: the window, decimated by one whole factor."""
    step = max(1, math.ceil(math.sqrt(window.w * window.h / max_pixels)))
    return max(1, window.w // step), max(1, window.h // step)
