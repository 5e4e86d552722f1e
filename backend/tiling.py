"""Tiled, streamed super-resolution.

``plan_tiles`` cuts the processed region into core windows with margins;
``super_resolve_tile`` is pure (a window and an array in, an encoded array
out), so tiles can run in any order, in batches, or on a distributed
scheduler; ``run_tiles`` streams them from a reader thread through the
engine to a writer thread, with bounded queues between them.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .engine import FILL_ITERATIONS, Engine
from .errors import Cancelled, SuperResError
from .normalise import denormalise, fill_invalid, normalise, valid_mask
from .torch_support import torch
from .window import Window


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


@dataclass
class TileResult:
    """A finished tile: encoded output values and the validity of its input pixels.

    Attributes:
        tile: the tile.
        values: (C, h*s, w*s) in the output data type, nodata applied.
        valid: (C, h, w) booleans, the core's input pixels that were valid.
    """

    tile: Tile
    values: np.ndarray
    valid: np.ndarray


class Reader(Protocol):
    """What the pipeline needs from an input: windowed reads of the selected bands."""

    nodata: Sequence

    def read(self, window: Window) -> np.ndarray:
        """Return the selected bands of ``window`` as (C, h, w)."""


class Writer(Protocol):
    """What the pipeline needs from an output: windowed writes of HR tiles."""

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Store (C, h, w) output values at the HR ``window``; ``valid`` is the
        (C, h/s, w/s) validity of the input pixels behind them."""


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


def trim_margin(tile: Tile, values: np.ndarray, nodata: Sequence, by: int,
                all_valid: Optional[bool] = None) -> Tuple[Tile, np.ndarray]:
    """Narrow the margin by ``by`` pixels when every pixel read is valid.

    Nodata filling (``FILL_ITERATIONS`` pixels of the safe margin) changes
    nothing where there is no nodata, so the core's result is the same with
    the narrower margin, and the network computes fewer pixels.
    """
    if all_valid is None:
        all_valid = by > 0 and bool(valid_mask(values, nodata).all())
    if by <= 0 or tile.margin < by or not all_valid:
        return tile, values
    m, c, r = tile.margin - by, tile.core, tile.read
    x0, y0 = max(r.x, c.x - m), max(r.y, c.y - m)
    x1, y1 = min(r.x + r.w, c.x + c.w + m), min(r.y + r.h, c.y + c.h + m)
    read = Window(x0, y0, x1 - x0, y1 - y0)
    sub = values[:, y0 - r.y:y1 - r.y, x0 - r.x:x1 - r.x]
    return Tile(tile.index, c, read, tile.out, m), sub


def tile_pads(tile: Tile, fixed: Optional[int] = None) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Mirror padding ((top, bottom), (left, right)) that completes ``tile.read``.

    Where the margin was cut by the raster's edge, the data is mirrored so the
    network sees image-like context instead of its zero padding (which darkens
    borders and breaks one-pixel-thin rasters). Raster edges are the same for
    every tiling, so tiled and one-piece results still agree. With ``fixed``
    (a tile-dependent model), a short last tile is padded to the full size.
    """
    m, c, r = tile.margin, tile.core, tile.read
    top, left = max(0, m - (c.y - r.y)), max(0, m - (c.x - r.x))
    bottom = max(0, m - (r.y + r.h - c.y - c.h))
    right = max(0, m - (r.x + r.w - c.x - c.w))
    if fixed:   # a short last tile: mirror on, up to the network's one window size
        bottom += max(0, fixed - (r.h + top + bottom))
        right += max(0, fixed - (r.w + left + right))
    return (top, bottom), (left, right)


def padded_shape(tile: Tile, fixed: Optional[int] = None) -> Tuple[int, int]:
    """(h, w) of the network input for ``tile``: tiles of one shape can share a batch."""
    (t, b), (l, r) = tile_pads(tile, fixed)
    return tile.read.h + t + b, tile.read.w + l + r


def super_resolve_tile(engine: Engine, tile: Tile, values: np.ndarray) -> TileResult:
    """Super-resolve one tile: raw (C, h, w) values of ``tile.read`` in, encoded core out."""
    return super_resolve_tiles(engine, [tile], [values])[0]


def super_resolve_tiles(engine: Engine, tiles: Sequence[Tile], values: Sequence[np.ndarray],
                        all_valid: Optional[Sequence[Optional[bool]]] = None,
                        partial: Optional[Callable[[float], None]] = None,
                        is_cancelled: Optional[Callable[[], bool]] = None) -> List[TileResult]:
    """Super-resolve tiles of one padded shape as one batch; pure, like ``super_resolve_tile``.

    On the device: validity, normalisation, nodata filling and padding; the
    network and ISE on the whole batch; then de-normalisation and encoding to
    the output type. Only raw values go to the device and encoded values
    come back. Without torch (interpolation baselines) numpy does the same.
    ``all_valid`` says, per tile, whether the reader found every pixel valid
    (None: find out on the device); ``partial(fraction)`` hears how far the
    network is through the batch; ``is_cancelled()`` is asked before each of
    the network's layers (a cancel lands within one layer, not one tile).
    """
    if torch is None:
        return [_numpy_tile(engine, t, v) for t, v in zip(tiles, values)]
    from . import device_ops as ops
    low, span = engine.stats_tensors
    xs, ms, valids, ranges = [], [], [], []
    for i, (tile, raw_np) in enumerate(zip(tiles, values)):
        raw = ops.to_device(raw_np, engine.device)
        valid = ops.valid_mask(raw, engine.nodata)
        ok = all_valid[i] if all_valid is not None and all_valid[i] is not None else bool(valid.all())
        norm = ops.normalise(raw, low, span, engine.compute)
        # next to nodata, the bounds from the valid input around each pixel (no halo)
        ranges.append(None if ok else halo_limits(ops.local_range(raw.to(engine.compute), valid, HALO_RADIUS),
                                                  engine.dtype, engine.nodata))
        norm = ops.fill_invalid(norm, valid, FILL_ITERATIONS, ok)
        pads = tile_pads(tile, engine.fixed_tile)
        xs.append(ops.symmetric_pad(norm, pads))
        ms.append(ops.symmetric_pad(valid, pads))
        valids.append(valid)
    sr = engine.infer_batch(torch.stack(xs), torch.stack(ms), partial, is_cancelled)
    s = engine.scale
    results = []
    for i, tile in enumerate(tiles):
        c, r = tile.core, tile.read
        (top, _), (left, _) = tile_pads(tile, engine.fixed_tile)
        oy, ox = c.y - r.y + top, c.x - r.x + left
        core = sr[i, :, oy * s:(oy + c.h) * s, ox * s:(ox + c.w) * s]
        lr_core = (slice(None), slice(c.y - r.y, c.y - r.y + c.h), slice(c.x - r.x, c.x - r.x + c.w))
        core_valid = valids[i][lr_core]
        near = None if ranges[i] is None else tuple(a[lr_core] for a in ranges[i])
        encoded = _finish(engine, core, core_valid, near)
        results.append(TileResult(tile, encoded, core_valid.cpu().numpy()))
    return results


#: LR pixels around nodata where the output is kept within the valid input's local range.
HALO_RADIUS = 2
#: How far beyond that range (as a share of it) a value may still go.
HALO_SLACK = 0.1


def halo_limits(ranges, dtype, nodata: Sequence):
    """The clamp's bounds per LR pixel, from ``local_range``'s (lo, hi, near); numpy or torch.

    The promise is ``[lo - HALO_SLACK * (hi - lo), hi + HALO_SLACK * (hi - lo)]``
    in data units. ``lo`` and ``hi`` must be the data's own values in a
    precision that holds them (never normalised float32: its rounding alone
    put clamped pixels outside). The bounds are pulled in by 4 units in the
    last place of the output's float type (more than the rounding of this
    arithmetic and of the cast to the output), never past ``lo``/``hi``;
    for integer outputs they are rounded inward to whole numbers, and a
    top bound equal to nodata steps below it, so neither rounding nor
    nodata's one-step move can leave them. Returns (low, high, near).
    """
    lo, hi, near = ranges
    xp = np if isinstance(lo, np.ndarray) else torch
    dtype = np.dtype(dtype)
    lo, hi = xp.where(near, lo, 0.0), xp.where(near, hi, 0.0)    # far pixels: no overflow
    slack = (hi - lo) * HALO_SLACK
    eps = max(float(xp.finfo(lo.dtype).eps), float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0)
    nudge = 4 * eps * xp.maximum(xp.abs(lo), xp.abs(hi))
    low = xp.minimum(lo, lo - slack + nudge)
    high = xp.maximum(hi, hi + slack - nudge)
    if dtype.kind in "iu":
        low, high = xp.ceil(low), xp.floor(high)
        for c, nd in enumerate(nodata):   # encode moves a value equal to nodata one step up
            if nd is not None and not (isinstance(nd, float) and np.isnan(nd)):
                high[c] = xp.where(high[c] == float(nd), high[c] - 1, high[c])
    return low, high, near


def clamp_near_nodata(values, low, high, near, scale: int):
    """Keep HR values over LR pixels near nodata within their neighbourhood's valid range.

    Next to a nodata hole the network and ISE see filled (invented) values
    and can ring far outside the data: dark and bright rims along every
    cloud mask. There, each output pixel is clipped to the min/max of the
    valid LR pixels within ``HALO_RADIUS``, widened by ``HALO_SLACK`` of that
    range (``halo_limits``); everywhere else the output is untouched.
    ``values`` are de-normalised, in the precision of ``low``/``high``.
    """
    from .device_ops import upsample_mask
    clipped = torch.minimum(torch.maximum(values, upsample_mask(low, scale)), upsample_mask(high, scale))
    return torch.where(upsample_mask(near, scale), clipped, values)


#: Output values per strip of post-processing: small enough to stay in the CPU's cache.
STRIP_VALUES = 400_000


def _finish(engine: Engine, core, valid, near) -> np.ndarray:
    """De-normalise, keep the halo in check and encode a core, in strips of rows.

    ``near`` is ``halo_limits``' answer, or None where the tile has no nodata.

    A chain of element-wise steps over a whole HR tile runs from memory;
    over a few rows at a time it runs from cache (about 3x faster on a CPU).
    """
    from . import device_ops as ops
    low, span = engine.stats_tensors
    s = engine.scale
    c, h, w = core.shape
    rows = max(1, STRIP_VALUES // max(1, c * w * s)) if core.device.type == "cpu" else h // s
    out = np.empty((c, h, w), dtype=engine.dtype)
    for y in range(0, h // s, rows):
        # clamp after de-normalising: the bounds hold in the output's units, to the last bit
        part = ops.denormalise(core[:, y * s:(y + rows) * s], low, span, engine.compute)
        if near is not None:
            part = clamp_near_nodata(part, *(a[:, y:y + rows] for a in near), s)
        out[:, y * s:(y + rows) * s] = ops.encode(part,
                                                  ops.upsample_mask(valid[:, y:y + rows], s),
                                                  engine.dtype, engine.nodata)
    return out


def _numpy_tile(engine: Engine, tile: Tile, values: np.ndarray) -> TileResult:
    """The numpy path (no torch): the same steps, in float64 where they were."""
    from .encoding import encode
    s = engine.scale
    valid = valid_mask(values, engine.nodata)
    raw_norm = normalise(values, engine.stats)
    norm = fill_invalid(raw_norm, valid, FILL_ITERATIONS)
    pads = ((0, 0),) + tile_pads(tile, engine.fixed_tile)
    sr = engine.infer(np.pad(norm, pads, mode="symmetric"), np.pad(valid, pads, mode="symmetric"))
    c, r = tile.core, tile.read
    oy, ox = c.y - r.y + pads[1][0], c.x - r.x + pads[2][0]
    core = sr[:, oy * s:(oy + c.h) * s, ox * s:(ox + c.w) * s]
    lr_core = (slice(None), slice(c.y - r.y, c.y - r.y + c.h), slice(c.x - r.x, c.x - r.x + c.w))
    core_valid = valid[lr_core]
    up = lambda a: np.repeat(np.repeat(a, s, axis=1), s, axis=2)  # noqa: E731 - LR pixel to its s x s block
    core = denormalise(core, engine.stats)
    if not valid.all():
        local = (a[lr_core] for a in _numpy_local_range(values.astype(np.float64), valid, HALO_RADIUS))
        low, high, near = halo_limits(tuple(local), engine.dtype, engine.nodata)
        core = np.where(up(near), np.clip(core, up(low), up(high)), core)
    return TileResult(tile, encode(core, up(core_valid), engine.dtype, engine.nodata), core_valid)


def _numpy_local_range(values: np.ndarray, valid: np.ndarray, radius: int):
    """numpy's ``device_ops.local_range``: neighbourhood min/max of valid pixels, and "near nodata"."""
    big = np.finfo(values.dtype).max
    pad = ((0, 0), (radius, radius), (radius, radius))
    hi_src = np.pad(np.where(valid, values, -big), pad, constant_values=-big)
    lo_src = np.pad(np.where(valid, values, big), pad, constant_values=big)
    bad = np.pad(~valid, pad, constant_values=False)
    h, w = values.shape[-2:]
    k = 2 * radius + 1
    hi = np.max([hi_src[:, dy:dy + h, dx:dx + w] for dy in range(k) for dx in range(k)], axis=0)
    lo = np.min([lo_src[:, dy:dy + h, dx:dx + w] for dy in range(k) for dx in range(k)], axis=0)
    near = np.any([bad[:, dy:dy + h, dx:dx + w] for dy in range(k) for dx in range(k)], axis=0)
    return lo, hi, near & valid


# --- streaming -----------------------------------------------------------------------

_DONE = object()


class _Failed:
    """An exception travelling through a queue to the thread that reports it."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: "queue.Queue", item, stop: threading.Event, give_up=None) -> bool:
    """Put ``item`` unless ``stop`` is set first, or ``give_up()`` says so while the queue is full;
    True when it was put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if give_up is not None and give_up():
                return False
    return False


def read_tile(reader: Reader, tile: Tile, count: int) -> np.ndarray:
    """``reader.read(tile.read)``, with an error naming the tile and its pixel window."""
    try:
        return reader.read(tile.read)
    except SuperResError:
        raise
    except Exception as exc:
        r = tile.read
        raise SuperResError(
            f"Could not read tile {tile.index + 1} of {count} (pixels x {r.x}-{r.x + r.w}, "
            f"y {r.y}-{r.y + r.h}) of the input: {exc}") from None


class Progress:
    """Progress per tile, and an ETA line in the log about every tenth of the run.

    ``report(done)`` calls ``progress(fraction)`` and, at most every few
    seconds, logs tiles done, output megapixels per second and time left.
    """

    def __init__(self, tiles: Sequence[Tile], scale: int, progress=None, log=None,
                 every_s: float = 10.0):
        self.total = len(tiles)
        self.pixels = [t.core.w * t.core.h * scale * scale for t in tiles]
        self.all_pixels = float(sum(self.pixels)) or 1.0
        self.progress, self.log = progress, log
        self.start = time.perf_counter()
        self.every_s, self.last_log = every_s, self.start
        self.done_pixels = 0
        self.next_fraction = 0.1

    def report(self, done_tiles: Sequence[Tile]) -> None:
        """Record finished tiles and tell the front end."""
        for t in done_tiles:
            self.done_pixels += self.pixels[t.index] if t.index < len(self.pixels) else 0
        fraction = self.done_pixels / self.all_pixels
        if self.progress is not None:
            self.progress(min(1.0, fraction))
        self._log_eta(fraction)

    def partial(self, tiles: Sequence[Tile], part: float) -> None:
        """Progress inside a batch of ``tiles`` that is ``part`` (0-1) through the network.

        Large tiles report as the network works through them, so a run of a
        few tiles still moves in small steps.
        """
        if self.progress is None:
            return
        busy = sum(self.pixels[t.index] for t in tiles if t.index < len(self.pixels))
        self.progress(min(1.0, (self.done_pixels + part * busy) / self.all_pixels))

    def _log_eta(self, fraction: float) -> None:
        now = time.perf_counter()
        if (self.log is not None and fraction < 1.0 and fraction >= self.next_fraction
                and now - self.last_log >= self.every_s):
            elapsed = now - self.start
            rate = self.done_pixels / elapsed / 1e6
            left = elapsed * (1 - fraction) / max(fraction, 1e-9)
            self.log(f"{fraction * 100:.0f}% done ({rate:.2f} Mpx/s of output); about "
                     f"{format_seconds(left)} left")
            self.last_log = now
            self.next_fraction = fraction + 0.1


def format_seconds(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12 s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def run_tiles(reader: Reader, writer: Writer, tiles: Sequence[Tile], engine: Engine,
              progress: Optional[Callable[[float], None]] = None,
              is_cancelled: Optional[Callable[[], bool]] = None,
              log: Optional[Callable[[str], None]] = None, batch_size: int = 1,
              queue_depth: int = 2, trim: int = 0) -> None:
    """Stream ``tiles`` through ``engine`` from ``reader`` to ``writer``.

    A reader thread and a writer thread overlap I/O with compute, with at
    most ``queue_depth`` tiles waiting on either side, so memory stays
    bounded by the tile size. Up to ``batch_size`` tiles of one padded shape
    go through the network together. Cancellation is checked before every
    tile and, inside one, before each layer of the network; a read error names the tile and its window; a batch or tile that
    runs out of (GPU) memory is retried in smaller pieces, with the same pixels.
    ``trim`` pixels of margin are dropped from tiles without nodata (``trim_margin``).
    """
    stop = threading.Event()
    read_q: "queue.Queue" = queue.Queue(maxsize=max(1, queue_depth, batch_size))
    write_q: "queue.Queue" = queue.Queue(maxsize=max(1, queue_depth))
    errors: List[BaseException] = []
    count = len(tiles)

    gpu = engine.device.startswith("cuda")
    if gpu:
        from . import device_ops as ops

    def read_loop():
        try:
            for tile in tiles:
                if stop.is_set():
                    return
                values = read_tile(reader, tile, count)
                ok = bool(valid_mask(values, engine.nodata).all())
                tile, values = trim_margin(tile, values, engine.nodata, trim, ok)
                if gpu:
                    values = ops.pin(values)
                if not _put(read_q, (tile, values, ok), stop):
                    return
            _put(read_q, _DONE, stop)
        except BaseException as exc:   # noqa: B902 - handed to the compute thread
            _put(read_q, _Failed(exc), stop)

    def write_loop():
        while True:
            item = write_q.get()
            if item is _DONE:
                return
            if errors:
                continue   # drain after a failure
            try:
                for res in item:
                    if stop.is_set():   # cancelled: a batch of many small tiles need not be written out
                        break
                    writer.write(res.tile.out.scaled(engine.scale), res.values, res.valid)
            except BaseException as exc:   # noqa: B902 - reported by the compute thread
                errors.append(exc)
                stop.set()

    tracker = Progress(tiles, engine.scale, progress, log)
    reader_thread = threading.Thread(target=read_loop, name="superres-read", daemon=True)
    writer_thread = threading.Thread(target=write_loop, name="superres-write", daemon=True)
    reader_thread.start()
    writer_thread.start()
    batch: List[Tuple[Tile, np.ndarray, bool]] = []
    done = 0

    def flush_batch() -> None:
        nonlocal batch, done
        tiles_now = [item[0] for item in batch]
        results = _run_batch(engine, batch, log, lambda part: tracker.partial(tiles_now, part), is_cancelled)
        # a cancel while the writer is behind lands now, not when it has caught up
        if not _put(write_q, results, stop, is_cancelled):
            raise errors[0] if errors else Cancelled("Cancelled while the output was being written.")
        done += len(batch)
        tracker.report([item[0] for item in batch])
        batch = []

    try:
        while True:
            if errors:
                raise errors[0]
            if is_cancelled is not None and is_cancelled():
                raise Cancelled(f"Cancelled before tile {done + len(batch) + 1} of {count}.")
            item = _get(read_q, stop, errors)
            if isinstance(item, _Failed):
                raise item.exc
            if item is _DONE:
                if batch:
                    flush_batch()
                break
            if batch and padded_shape(item[0], engine.fixed_tile) != padded_shape(batch[0][0], engine.fixed_tile):
                flush_batch()
            batch.append(item)
            if len(batch) >= batch_size:
                flush_batch()
        write_q.put(_DONE)
        writer_thread.join()
        if errors:
            raise errors[0]
    finally:
        stop.set()
        if writer_thread.is_alive():
            _drain(write_q)
            write_q.put(_DONE)
            writer_thread.join()
        _drain(read_q)
        reader_thread.join()


def _get(q: "queue.Queue", stop: threading.Event, errors: List[BaseException]):
    """The next item, waking up to notice a writer failure."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if errors:
                raise errors[0]


def _drain(q: "queue.Queue") -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


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


def _run_batch(engine: Engine, batch: List[Tuple[Tile, np.ndarray, bool]], log,
               partial=None, is_cancelled=None) -> List[TileResult]:
    """One batch; out of memory, each tile on its own, then in quarters."""
    try:
        return super_resolve_tiles(engine, [b[0] for b in batch], [b[1] for b in batch],
                                   [b[2] for b in batch], partial, is_cancelled)
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
    _free_device_memory(engine)
    results = []
    for tile, values, _ok in batch:
        results += _with_backoff(engine, tile, values, log, retry=len(batch) > 1, is_cancelled=is_cancelled)
    return results


def _free_device_memory(engine: Engine) -> None:
    if engine.device.startswith("cuda"):
        torch.cuda.empty_cache()


def _with_backoff(engine: Engine, tile: Tile, values: np.ndarray, log, retry: bool = False,
                  is_cancelled=None):
    if retry:
        try:
            return super_resolve_tiles(engine, [tile], [values], is_cancelled=is_cancelled)
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            _free_device_memory(engine)
    if tile.core.w * tile.core.h <= 16 or engine.fixed_tile:
        raise SuperResError("Out of memory even on the smallest tile: use a smaller TILE_SIZE, "
                            "fewer ISE iterations or the CPU.")
    if log is not None:
        log(f"Out of memory on a {tile.core.w} x {tile.core.h} px tile: retrying it in quarters "
            "(use a smaller TILE_SIZE to avoid this).")
    results = []
    for part in split_tile(tile):
        r = part.read
        sub = values[:, r.y - tile.read.y:r.y - tile.read.y + r.h, r.x - tile.read.x:r.x - tile.read.x + r.w]
        if hasattr(values, "superres_dtype"):   # a pinned tensor's view keeps its true type
            sub.superres_dtype = values.superres_dtype
        results += _with_backoff(engine, part, sub, log, retry=True, is_cancelled=is_cancelled)
    return results
