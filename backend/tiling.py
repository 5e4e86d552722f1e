"""Tiled, streamed super-resolution.

``plan_tiles`` cuts the processed region into core windows with margins;
``super_resolve_tile`` is pure (a window and an array in, an array out), so
tiles can run in any order or be handed to a distributed scheduler;
``run_tiles`` streams them from a reader to a writer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .engine import FILL_ITERATIONS, Engine
from .errors import Cancelled, SuperResError
from .normalise import denormalise, fill_invalid, normalise, valid_mask


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


@dataclass(frozen=True)
class Tile:
    """One unit of work: the ``core`` to produce and the ``read`` window around it.

    Both are in input pixels of the whole raster; ``out`` is the core's place
    in the output grid (relative to the processed region, in LR pixels).
    """

    index: int
    core: Window
    read: Window
    out: Window
    margin: int = 0


class Reader(Protocol):
    """What the pipeline needs from an input: windowed reads of the selected bands."""

    nodata: Sequence

    def read(self, window: Window) -> np.ndarray:
        """Return the selected bands of ``window`` as (C, h, w)."""


class Writer(Protocol):
    """What the pipeline needs from an output: windowed writes of HR tiles."""

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Store (C, h, w) output values (and their validity) at the HR ``window``."""


def sample_shape(window: Window, max_pixels: int) -> Tuple[int, int]:
    """Buffer size of a statistics sample: the window, decimated by one whole factor."""
    step = max(1, math.ceil(math.sqrt(window.w * window.h / max_pixels)))
    return max(1, window.w // step), max(1, window.h // step)


def plan_tiles(region: Window, raster_w: int, raster_h: int, tile_size: int,
               margin: int) -> List[Tile]:
    """Cut ``region`` into cores of at most ``tile_size`` with ``margin`` around each.

    Margins reach into the raster beyond the region where there is data, and
    are clipped at the raster's edges.
    """
    if tile_size < 1:
        raise SuperResError("TILE_SIZE must be at least 1 pixel.")
    tiles = []
    for y in range(region.y, region.y + region.h, tile_size):
        for x in range(region.x, region.x + region.w, tile_size):
            w = min(tile_size, region.x + region.w - x)
            h = min(tile_size, region.y + region.h - y)
            x0, y0 = max(0, x - margin), max(0, y - margin)
            x1, y1 = min(raster_w, x + w + margin), min(raster_h, y + h + margin)
            tiles.append(Tile(len(tiles), Window(x, y, w, h), Window(x0, y0, x1 - x0, y1 - y0),
                              Window(x - region.x, y - region.y, w, h), margin))
    return tiles


def super_resolve_tile(engine: Engine, tile: Tile, values: np.ndarray,
                       nodata: Sequence) -> Tuple[np.ndarray, np.ndarray]:
    """Super-resolve one tile: raw (C, h, w) values of ``tile.read`` in, core out.

    Returns the de-normalised float64 SR values of the core's HR window and
    its validity mask (each LR pixel's validity repeated over its s x s block).
    """
    s = engine.scale
    valid = valid_mask(values, nodata)
    norm = fill_invalid(normalise(values, engine.stats), valid, FILL_ITERATIONS)
    ox, oy = tile.core.x - tile.read.x, tile.core.y - tile.read.y
    # Where the margin was cut by the raster's edge, mirror the data so the
    # network sees image-like context instead of its zero padding (which
    # darkens borders and breaks one-pixel-thin rasters). Raster edges are the
    # same for every tiling, so tiled and one-piece results still agree.
    m, c, r = tile.margin, tile.core, tile.read
    pads = ((0, 0), (max(0, m - oy), max(0, m - (r.y + r.h - c.y - c.h))),
            (max(0, m - ox), max(0, m - (r.x + r.w - c.x - c.w))))
    sr = engine.infer(np.pad(norm, pads, mode="symmetric"), np.pad(valid, pads, mode="symmetric"))
    ox, oy = ox + pads[2][0], oy + pads[1][0]
    sl = (slice(None), slice(oy * s, (oy + tile.core.h) * s), slice(ox * s, (ox + tile.core.w) * s))
    core_valid = valid[:, c.y - r.y:c.y - r.y + c.h, c.x - r.x:c.x - r.x + c.w]
    hr_valid = np.repeat(np.repeat(core_valid, s, axis=1), s, axis=2)
    return denormalise(sr[sl], engine.stats), hr_valid


def run_tiles(reader: Reader, writer: Writer, tiles: Sequence[Tile], engine: Engine,
              encode: Callable[[np.ndarray, np.ndarray], np.ndarray],
              progress: Optional[Callable[[float], None]] = None,
              is_cancelled: Optional[Callable[[], bool]] = None,
              log: Optional[Callable[[str], None]] = None) -> None:
    """Stream ``tiles`` through ``engine`` from ``reader`` to ``writer``.

    ``encode(values, valid)`` turns SR floats into output-type values with
    nodata applied. Cancellation is checked before every tile; a read error
    is reported with the tile's location; a tile that runs out of (GPU)
    memory is split in four and retried, which gives the same pixels.
    """
    for done, tile in enumerate(tiles):
        if is_cancelled is not None and is_cancelled():
            raise Cancelled(f"Cancelled before tile {done + 1} of {len(tiles)}.")
        try:
            values = reader.read(tile.read)
        except SuperResError:
            raise
        except Exception as exc:
            raise SuperResError(
                f"Could not read tile {done + 1} of {len(tiles)} (pixels x {tile.read.x}-"
                f"{tile.read.x + tile.read.w}, y {tile.read.y}-{tile.read.y + tile.read.h}) "
                f"of the input: {exc}") from None
        for part, (sr, hr_valid) in _with_backoff(engine, tile, values, reader.nodata, log):
            writer.write(part.out.scaled(engine.scale), encode(sr, hr_valid), hr_valid)
        if progress is not None:
            progress((done + 1) / len(tiles))


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's (CUDA) out-of-memory errors."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def split_tile(tile: Tile) -> List[Tile]:
    """The four quarters of ``tile``'s core, each with the same margin inside ``tile.read``."""
    c, r, m = tile.core, tile.read, tile.margin
    xs = [c.x, c.x + c.w // 2, c.x + c.w] if c.w > 1 else [c.x, c.x + c.w]
    ys = [c.y, c.y + c.h // 2, c.y + c.h] if c.h > 1 else [c.y, c.y + c.h]
    parts = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            rx0, ry0 = max(r.x, x0 - m), max(r.y, y0 - m)
            rx1, ry1 = min(r.x + r.w, x1 + m), min(r.y + r.h, y1 + m)
            parts.append(Tile(tile.index, Window(x0, y0, x1 - x0, y1 - y0),
                              Window(rx0, ry0, rx1 - rx0, ry1 - ry0),
                              Window(tile.out.x + x0 - c.x, tile.out.y + y0 - c.y, x1 - x0, y1 - y0), m))
    return parts


def _with_backoff(engine, tile, values, nodata, log):
    try:
        return [(tile, super_resolve_tile(engine, tile, values, nodata))]
    except RuntimeError as exc:
        if not is_out_of_memory(exc) or tile.core.w * tile.core.h <= 16:
            raise
    if engine.device.startswith("cuda"):
        from .torch_support import torch
        torch.cuda.empty_cache()
    if log is not None:
        log(f"Out of memory on a {tile.core.w} x {tile.core.h} px tile: retrying it in quarters "
            "(use a smaller TILE_SIZE to avoid this).")
    results = []
    for part in split_tile(tile):
        r = part.read
        sub = values[:, r.y - tile.read.y:r.y - tile.read.y + r.h, r.x - tile.read.x:r.x - tile.read.x + r.w]
        results += _with_backoff(engine, part, sub, nodata, log)
    return results
