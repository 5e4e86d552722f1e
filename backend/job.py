"""A super-resolution run, from parameters to a finished output.

``SuperResolveJob`` is what every front end (the Processing algorithm, the
dialog, the CLI) fills in; ``run_job`` does the work on files with GDAL and
``super_resolve_array`` does the same on numpy arrays.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .allocator import retained_heap
from .engine import Engine, build_engine, engine_config, fixed_precision, tile_size_for
from .encoding import gdal_type_name
from .errors import SuperResError
from .normalise import SAMPLE_PIXELS, BandStats, compute_stats, valid_mask
from .registry import check_scale, get_model
from .src_nodata import (DECLARED, OneNodataWriter, SrcNodata, dataset_nodata, needs_one_nodata,
                         nodata_report, parse_src_nodata, resolve_src_nodata)
from .tiling import plan_tiles, run_tiles
from .window import Window
from .torch_support import require_torch, resolve_device, torch

#: ``tile_size`` None (or 0): chosen per run by ``choose_tiling``.
DEFAULT_TILE_SIZE = None
#: Most memory the CPU path plans for one batch of tiles (and a quarter of what is free).
CPU_BUDGET_BYTES = 3 * 1024 ** 3
#: Most tiles in one GPU batch.
MAX_BATCH = 16
# GDAL colour interpretations of natural-colour RGB (GCI_RedBand, GCI_GreenBand, GCI_BlueBand).
RGB_INTERP = (3, 4, 5)


@dataclass
class SuperResolveJob:
    """The parameters of one run; front ends only fill this in.

    Attributes:
        input_path: a GDAL-readable raster file (opened read-only).
        output_path: the GeoTIFF to write.
        model: a registry model name.
        scale: 2, 4 or 8.
        ise_iterations: ISE iterations (0 disables).
        extent: (xmin, ymin, xmax, ymax) in the input's CRS, or None for all of it.
        bands: 1-based band numbers, or None for all.
        device: ``auto``, ``cpu`` or ``cuda``.
        tile_size: core tile size in input pixels; None (or 0) chooses one whose
            margin costs at most 15% more pixels, within the memory there is.
        tile_overlap: margin in input pixels; None means the engine's safe margin.
        ise_kernel: ``bicubic``/``bilinear``; None follows the weights' degradation.
        overwrite: replace an existing output.
        write_mask: add an internal mask band (255 valid, 0 nodata) to the output.
        zero_collar: ``auto`` treats 0 as nodata when none is declared and zeros
            line the raster's edge (Landsat's collar); ``off`` never does.
        weights: a weight set (``registry.WEIGHT_SETS``) or ``auto``: the set
            whose training pixel size and data type are nearest the input's.
        self_ensemble: average networks over 8 flips and rotations (8x slower).
        precision: ``auto`` (the fastest measured on this machine), ``bf16`` or ``fp32``.
        cog: write a Cloud-Optimised GeoTIFF (with overviews).
        dask: a ``dask.distributed`` scheduler address, or ``local:N`` for N
            local worker processes; None runs here.
        adapt_steps: image-specific adaptation (``backend.adapt``): fine-tune a
            copy of the network for this many steps on pairs made from the
            extent itself, before the first tile; 0 (the default) disables it.
        src_nodata: the input's nodata, as GDAL's ``-srcnodata``: ``declared``
            (the layer's own values, the default), ``none`` (every pixel is
            data; no zero collar either), or one value for every band or one
            per input band (a sequence, or text such as ``0,0,0``). The output
            declares the same values (``backend.src_nodata``).
    """

    input_path: str
    output_path: str
    model: str = "dganet"
    scale: int = 4
    ise_iterations: int = 0
    extent: Optional[Tuple[float, float, float, float]] = None
    bands: Optional[Sequence[int]] = None
    device: str = "auto"
    tile_size: Optional[int] = DEFAULT_TILE_SIZE
    tile_overlap: Optional[int] = None
    ise_kernel: Optional[str] = None
    overwrite: bool = False
    write_mask: bool = False
    zero_collar: str = "auto"
    weights: str = "auto"
    self_ensemble: bool = False
    precision: str = "auto"
    cog: bool = False
    dask: Optional[str] = None
    adapt_steps: int = 0
    src_nodata: SrcNodata = DECLARED


@dataclass
class JobResult:
    """What a finished run reports."""

    output_path: str
    width: int
    height: int
    geotransform: Tuple[float, ...]
    device: str
    tiles: int
    margin: int
    seconds: float
    ise_kernel: str
    weights: str = ""
    stats: Optional[BandStats] = None
    log: List[str] = field(default_factory=list)
    tile_size: int = 0
    precision: str = "fp32"


def _check_common(model: str, scale: int, ise_iterations: int, tile_size: Optional[int],
                  tile_overlap: Optional[int], adapt_steps: int = 0):
    spec = get_model(model)
    if scale not in (2, 4, 8):
        raise SuperResError(f"SCALE must be 2, 4 or 8, not {scale}.")
    if spec.needs_torch:
        require_torch(f"Model '{spec.name}'")
    elif ise_iterations > 0:
        require_torch("ISE (ISE_ITERATIONS > 0)")
    check_scale(spec, scale)
    if ise_iterations < 0:
        raise SuperResError("ISE_ITERATIONS must be 0 or more.")
    if tile_size and tile_size < 8:
        raise SuperResError("TILE_SIZE must be at least 8 input pixels (or 0 to choose automatically).")
    if tile_overlap is not None and tile_overlap < 0:
        raise SuperResError("TILE_OVERLAP must be 0 or more.")
    if adapt_steps < 0:
        raise SuperResError("ADAPT_STEPS must be 0 or more.")
    if adapt_steps and not spec.needs_torch:
        raise SuperResError(f"ADAPT_STEPS needs a network; '{spec.name}' has nothing to adapt "
                            "(use ADAPT_STEPS 0).")
    return spec


def _check_bands(bands: Optional[Sequence[int]], count: int) -> List[int]:
    if not bands:
        return list(range(1, count + 1))
    bad = [b for b in bands if not 1 <= int(b) <= count]
    if bad:
        raise SuperResError(f"BANDS {', '.join(map(str, bad))} out of range: the input has "
                            f"bands 1 to {count}.")
    return [int(b) for b in bands]


def memory_budget(device: str) -> int:
    """Bytes of inference memory to plan a batch of tiles for.

    On a GPU, half of what is free on it; on the CPU, a quarter of the
    available RAM, at most ``CPU_BUDGET_BYTES``.
    """
    if device.startswith("cuda") and torch is not None:
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * 0.5)
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    return min(CPU_BUDGET_BYTES, available // 4) if available else CPU_BUDGET_BYTES // 2


@dataclass(frozen=True)
class Tiling:
    """How a run is cut: core tile size, margin, batch size, and the margin
    dropped from tiles without nodata (its nodata-filling part)."""

    tile_size: int
    margin: int
    batch_size: int
    trim: int = 0

    def overhead(self, region: Window) -> float:
        """Extra pixels the margins make the network compute, as a fraction of the
        region, for tiles without nodata (those with nodata have ``trim`` more)."""
        m = self.margin - self.trim
        tiles = plan_tiles(region, region.x + region.w, region.y + region.h, self.tile_size, m)
        read = sum((t.core.w + 2 * m) * (t.core.h + 2 * m) for t in tiles)
        return read / float(region.w * region.h) - 1


def choose_tiling(engine: Engine, region: Window, tile_size: Optional[int],
                  tile_overlap: Optional[int]) -> Tiling:
    """The run's tiles: the user's size, or one that keeps the margin's cost under 15%.

    A tile-dependent model always runs on its own fixed size. Automatic
    sizes make whole output blocks (a multiple of 256 output pixels) and
    fit the memory budget; on a GPU, as many tiles go in one batch as the
    budget holds.
    """
    from .engine import FILL_ITERATIONS
    from .raster_io import BLOCK
    margin = engine.safe_margin if tile_overlap is None else tile_overlap
    grid = engine.tile_grid
    # trimmed tiles must keep their windows on the network's grid
    trim = FILL_ITERATIONS // grid * grid if tile_overlap is None else 0
    budget = memory_budget(engine.device)
    longest = max(region.w, region.h)
    if engine.fixed_tile:
        # one window size always (seed 001's attention sees the whole window):
        # the result does not depend on TILE_SIZE or the raster's size
        margin = engine.spec.fixed_margin
        size, trim = engine.fixed_tile - 2 * margin, 0
    elif tile_size:
        size = -(-tile_size // grid) * grid
    else:
        # sized for the usual tile, which has no nodata and the trimmed margin
        size = tile_size_for(engine, margin - trim, budget, largest=longest)
        if size < longest:
            # as few tiles across as that size allows, made equal (no thin last tile),
            # then rounded up to whole output blocks
            step = max(16, BLOCK // engine.scale)
            step = step * grid // math.gcd(step, grid)
            across = -(-longest // size)
            size = -(-longest // across)
            size = -(-size // step) * step
            if size > step and engine.bytes_per_lr_pixel() * (size + 2 * (margin - trim)) ** 2 > budget:
                # rounding up would pass the memory budget (by up to a block each
                # way: 34% over a 256 MiB budget in fp32): whole blocks that fit instead
                size -= step
    batch = 1
    per_tile = engine.bytes_per_lr_pixel() * (size + 2 * margin) ** 2
    if engine.device.startswith("cuda") or engine.fixed_tile:
        # small fixed windows go through the network many at a time, on the CPU too
        most = 256 if engine.fixed_tile else MAX_BATCH
        batch = int(max(1, min(most, budget // max(per_tile, 1))))
    return Tiling(size, margin, batch, trim)


@retained_heap()
def _run(reader, writer, region: Window, *, raster_w: int, raster_h: int, dtype, spec, scale: int,
         ise_iterations: int, ise_kernel: Optional[str], device: str, rgb: bool,
         tile_size: Optional[int], tile_overlap: Optional[int], progress, is_cancelled, log=None,
         weights: str = "auto", pixel_size_m: Optional[float] = None, self_ensemble: bool = False,
         precision: str = "auto", dask: Optional[str] = None,
         input_path: Optional[str] = None,
         bands: Optional[Sequence[int]] = None, adapt_steps: int = 0,
         nodata_origin: str = "as given") -> Tuple[Engine, Tiling, int]:
    """The part shared by files and arrays: statistics, engine, tiles (keyword arguments only)."""
    sample = reader.read_sample(region, SAMPLE_PIXELS)
    valid = valid_mask(sample, reader.nodata)
    stats = compute_stats(sample, valid, np.dtype(dtype).kind in "iu")
    if log is not None:
        # counted on the statistics sample: no extra pass over the raster
        for line in nodata_report(sample, valid, reader.nodata, dtype, nodata_origin,
                                  list(bands or range(1, sample.shape[0] + 1)),
                                  sample.shape[1:] == (region.h, region.w), scale):
            log(line)
    config = engine_config(spec.name, scale, stats, sample.shape[0], rgb, dtype, reader.nodata,
                           device=device, ise_iterations=ise_iterations, ise_kernel=ise_kernel,
                           weights=weights, pixel_size_m=pixel_size_m, self_ensemble=self_ensemble,
                           precision=precision)
    engine = build_engine(config)
    if adapt_steps:
        # once, before the tiles: every tile then runs the same adapted network
        from .adapt import adapt_engine
        adapt_engine(engine, reader, region, adapt_steps, log, is_cancelled)
    tiling = choose_tiling(engine, region, tile_size, tile_overlap)
    tiles = plan_tiles(region, raster_w, raster_h, tiling.tile_size, tiling.margin)
    if log is not None:
        for line in describe_engine(engine, ise_kernel, dask):
            log(line)
        log(f"Tiles: {len(tiles)} of up to {tiling.tile_size} px with a {tiling.margin} px margin "
            f"({tiling.overhead(region) * 100:.0f}% extra pixels)"
            + (f", {tiling.batch_size} per batch" if tiling.batch_size > 1 else ""))
    if dask:
        from .distributed import run_tiles_dask
        # the workers run the path chosen here, not one they would measure for themselves
        config = dataclasses.replace(config, precision=fixed_precision(engine))
        run_tiles_dask(dask, config, input_path, list(bands or []), reader.nodata, writer, tiles,
                       tiling, progress, is_cancelled, log)
    else:
        run_tiles(reader, writer, tiles, engine, progress, is_cancelled, log, tiling.batch_size,
                  trim=tiling.trim)
    return engine, tiling, len(tiles)


def network_elsewhere(device: str, dask: Optional[str]) -> bool:
    """True when the network does not run on this machine's CPU (a GPU, a remote Dask cluster).

    Then the CPU is free to compress the output on all its cores. A scheduler
    on this machine's loopback address counts as local: its workers are here too.
    """
    if device.startswith("cuda"):
        return True
    if not dask or dask.startswith("local"):
        return False
    host = dask.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host not in ("localhost", "::1") and not host.startswith("127.")


def describe_engine(engine: Engine, ise_kernel_asked: Optional[str], dask: Optional[str] = None) -> List[str]:
    """The log lines naming the model, weights, ISE and device of a run (before its tiles)."""
    spec, s = engine.spec, engine.scale
    weights = spec.weights_path(s, engine.weight_set).name if engine.net is not None else ""
    if ise_kernel_asked:
        origin = "as asked"
    else:   # the ISE_KERNEL value "weights": say where the kernel came from
        origin = "from the weights" if engine.net is not None else "the baselines' kernel"
    return [
        f"Model {spec.name} x{s}" + (f" ({weights}, {'one RGB pass' if engine.bands_per_pass == 3 else 'band by band'})"
                                    if weights else ""),
        *([engine.choice[0].upper() + engine.choice[1:]] if engine.choice else []),
        f"ISE: {engine.ise_iterations} iterations, kernel {engine.ise_kernel} ({origin})"
        + (", self-ensemble of 8 flips and rotations" if engine.self_ensemble else ""),
        f"Device: {engine.device}" + (f", {engine.precision_note or engine.precision}" if engine.net is not None else "")
        + (f", Dask scheduler {dask}" if dask else ""),
    ]


def provenance(job: SuperResolveJob, spec, info) -> dict:
    """The output's provenance tags, naming the weights the engine will load.

    The weight set and ISE kernel are resolved as ``build_engine`` resolves
    them (``resolve_weight_set``, then the file's ``degradation``).
    """
    from .provenance import provenance_tags
    from .registry import resolve_weight_set
    from .resample import KERNELS
    from .weights import read_metadata
    kernel = job.ise_kernel or "bicubic"
    extra = {}
    if spec.needs_torch:
        chosen, _why = resolve_weight_set(spec, job.scale, job.weights, info.pixel_size_m,
                                          gdal_type_name(info.dtype))
        path = spec.weights_path(job.scale, chosen)
        meta = read_metadata(path)
        kernel = job.ise_kernel or meta.get("degradation", "bicubic")
        kernel = kernel if kernel in KERNELS else "bicubic"
        extra = dict(weight_set=chosen, weights_file=path, weights_hash=meta.get("tensor_sha256", ""))
    return provenance_tags(model=spec.name, network=spec.needs_torch, scale=job.scale,
                           ise_iterations=job.ise_iterations, ise_kernel=kernel,
                           self_ensemble=job.self_ensemble and spec.needs_torch,
                           source=Path(job.input_path).name, **extra)


def check_free_space(folder: Path, needed: int, what: str = "The output") -> None:
    """Refuse before the first tile when ``folder`` has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise SuperResError(f"Not enough free disk space in '{folder}': {what.lower()} needs up to "
                            f"{needed / 1e9:.2f} GB and {free / 1e9:.2f} GB are free. Free some space, "
                            "choose another folder, or process a smaller EXTENT.")


def run_job(job: SuperResolveJob, progress: Optional[Callable[[float], None]] = None,
            is_cancelled: Optional[Callable[[], bool]] = None,
            log: Optional[Callable[[str], None]] = None) -> JobResult:
    """Super-resolve ``job.input_path`` into ``job.output_path``.

    The output covers exactly the snapped extent, with the pixel size divided
    by the scale. On error or cancel the partial output is removed and the
    exception (a ``SuperResError``) propagates.
    """
    from .raster_io import GdalReader, GdalWriter, extent_to_window, output_bytes, read_info
    start = time.perf_counter()
    say = log or (lambda _msg: None)
    spec = _check_common(job.model, job.scale, job.ise_iterations, job.tile_size, job.tile_overlap,
                         job.adapt_steps)
    src_nodata = parse_src_nodata(job.src_nodata)
    if job.adapt_steps and job.dask:
        raise SuperResError("ADAPT_STEPS cannot run on a Dask scheduler: the adapted network exists "
                            "only in this process. Run without DASK_SCHEDULER, or with ADAPT_STEPS 0.")
    device = resolve_device(job.device)
    src, dst = Path(job.input_path), Path(job.output_path)
    if dst.exists() and dst.resolve() == src.resolve():
        raise SuperResError("OUTPUT is the input file: choose another output name; "
                            "the input is never overwritten.")
    if not dst.parent.is_dir():
        raise SuperResError(f"The output folder '{dst.parent}' does not exist.")
    if dst.exists() and not job.overwrite:
        raise SuperResError(f"Output '{dst}' already exists; choose another name or allow "
                            "overwriting (--overwrite on the command line).")
    if not os.access(dst.parent, os.W_OK):
        raise SuperResError(f"The output folder '{dst.parent}' is not writable.")
    info = read_info(str(src))
    bands = _check_bands(job.bands, info.band_count)
    region = extent_to_window(job.extent, info.geotransform, info.width, info.height)
    s = job.scale
    x0, pw, _, y0, _, ph = info.geotransform
    out_gt = (x0 + region.x * pw, pw / s, 0.0, y0 + region.y * ph, 0.0, ph / s)
    band_infos = [info.bands[b - 1] for b in bands]
    if any(b.palette for b in band_infos) and (job.model != "nearest" or job.ise_iterations):
        raise SuperResError(
            "The input is a paletted raster: its values are class indexes, which only MODEL "
            "'nearest' with ISE_ITERATIONS 0 keeps intact (with the palette). To super-resolve the "
            "picture instead, convert it to RGB first (Raster > Conversion > PCT to RGB).")
    needed = output_bytes(region.w * s, region.h * s, len(bands), info.gdal_type)
    check_free_space(dst.parent, needed * (2 if job.cog else 1))
    rgb = tuple(b.color_interp for b in band_infos) == RGB_INTERP
    nodata, origin = resolve_src_nodata(src_nodata, [b.nodata for b in info.bands], bands, info.dtype)
    reader = GdalReader(info, bands, nodata)
    # the collar rule guesses for files that declare nothing, not when the analyst has decided
    if (job.zero_collar == "auto" and src_nodata == DECLARED and info.dtype.kind in "iu"
            and all(nd is None for nd in reader.nodata) and reader.has_zero_collar()):
        reader.nodata, origin = [0] * len(bands), "the zero collar"
        say("No nodata is declared, but zeros line the raster's edge (a scene collar): treating 0 "
            "as nodata, declared in the output.")
    out_nodata = dataset_nodata(reader.nodata)
    if needs_one_nodata(reader.nodata):
        say(f"The bands' nodata differ ({', '.join('none' if v is None else f'{v:g}' for v in reader.nodata)}); "
            f"a GeoTIFF declares one value for all its bands, so the output's nodata is {out_nodata:g} "
            "in every band.")
    if not info.crs_wkt:
        say("Warning: the input has no CRS; the output has none either.")
    writer = None
    where = [f"Input window: x {region.x}, y {region.y}, {region.w} x {region.h} px; bands {bands}",
             f"Output: {region.w * s} x {region.h * s} px, pixel size {abs(pw / s):g} x {abs(ph / s):g}"
             + (", Cloud-Optimised GeoTIFF" if job.cog else "")]
    for line in where:
        say(line)
    try:
        tags = provenance(job, spec, info)
        writer = GdalWriter(str(dst), region.w * s, region.h * s, out_gt, info.crs_wkt,
                            info.gdal_type, band_infos, [out_nodata] * len(bands), job.write_mask, job.cog,
                            metadata=tags, compress_threads=network_elsewhere(device, job.dask))
        tiles_to = (OneNodataWriter(writer, reader.nodata, out_nodata, info.dtype)
                    if needs_one_nodata(reader.nodata) else writer)
        engine, tiling, n_tiles = _run(
            reader, tiles_to, region, raster_w=info.width, raster_h=info.height, dtype=info.dtype,
            spec=spec, scale=s, ise_iterations=job.ise_iterations, ise_kernel=job.ise_kernel,
            device=device, rgb=rgb, tile_size=job.tile_size, tile_overlap=job.tile_overlap,
            progress=progress, is_cancelled=is_cancelled, log=say, weights=job.weights,
            pixel_size_m=info.pixel_size_m, self_ensemble=job.self_ensemble,
            precision=job.precision, dask=job.dask, input_path=os.path.abspath(src), bands=bands,
            adapt_steps=job.adapt_steps, nodata_origin=origin)
        writer.commit(job.overwrite)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
    seconds = time.perf_counter() - start
    weights = spec.weights_path(s, engine.weight_set).name if engine.net is not None else ""
    result = JobResult(str(dst), region.w * s, region.h * s, out_gt, device, n_tiles, tiling.margin,
                       seconds, engine.ise_kernel, weights, engine.stats, tile_size=tiling.tile_size,
                       precision=engine.precision if engine.net is not None else "fp32")
    mpx = region.w * s * region.h * s / 1e6
    elapsed = f"Elapsed: {seconds:.2f} s ({mpx / max(seconds, 1e-9):.2f} Mpx/s of output)"
    result.log = [*describe_engine(engine, job.ise_kernel, job.dask),
                  *([engine.adaptation] if engine.adaptation else []), *where, elapsed]
    say(elapsed)
    return result


def super_resolve_array(array: np.ndarray, scale: int, model: str = "dganet",
                        ise_iterations: int = 0, nodata: Optional[Sequence] = None,
                        rgb: Optional[bool] = None, device: str = "auto",
                        tile_size: Optional[int] = DEFAULT_TILE_SIZE, tile_overlap: Optional[int] = None,
                        ise_kernel: Optional[str] = None, out: Optional[np.ndarray] = None,
                        progress=None, is_cancelled=None, weights: str = "auto",
                        pixel_size_m: Optional[float] = None, self_ensemble: bool = False,
                        precision: str = "auto", log=None, adapt_steps: int = 0) -> np.ndarray:
    """Super-resolve a (C, H, W) or (H, W) array with the same pipeline as files.

    Works without GDAL (e.g. on memory-mapped arrays on a GPU machine). A
    2-D array comes back 2-D. ``rgb`` None treats a 3-band array as
    natural-colour R, G, B (as a file run does with bands marked so).
    ``nodata`` is one value for all bands or one per band. ``out`` may be a
    preallocated (C, H*s, W*s) array or memmap. ``weights`` ``auto`` picks
    the set by the array's data type and ``pixel_size_m``. ``adapt_steps``
    fine-tunes the network on the array itself first (``backend.adapt``).
    """
    from .arrays import ArrayReader, ArrayWriter
    spec = _check_common(model, scale, ise_iterations, tile_size, tile_overlap, adapt_steps)
    two_d = np.ndim(array) == 2
    if nodata is not None and np.ndim(nodata) == 0:
        nodata = [nodata] * (1 if two_d else array.shape[0])
    reader = ArrayReader(array, nodata)
    c, h, w = reader.array.shape
    if rgb is None:
        rgb = c == 3
    if out is not None and out.ndim == 2:
        out = out[None]
    writer = ArrayWriter((c, h * scale, w * scale), reader.array.dtype, out)
    _run(reader, writer, Window(0, 0, w, h), raster_w=w, raster_h=h, dtype=reader.array.dtype,
         spec=spec, scale=scale, ise_iterations=ise_iterations, ise_kernel=ise_kernel,
         device=resolve_device(device), rgb=rgb, tile_size=tile_size, tile_overlap=tile_overlap,
         progress=progress, is_cancelled=is_cancelled, log=log, weights=weights,
         pixel_size_m=pixel_size_m, self_ensemble=self_ensemble, precision=precision,
         adapt_steps=adapt_steps)
    return writer.array[0] if two_d else writer.array
