"""GDAL raster reading and writing for the tile pipeline.

The input is opened read-only. The output is written under a hidden
temporary name in the destination folder, read back whole, and renamed only
then. GDAL calls run with GDAL's exceptions on (``gdal_exceptions``).
"""
from __future__ import annotations

import errno
import math
import os
import shutil
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .errors import SuperResError
from .window import Window, sample_shape

GDAL_FIX = "Install GDAL's Python bindings (Debian: python3-gdal)"


def _gdal():
    try:
        from osgeo import gdal
    except ImportError as exc:
        raise SuperResError(f"Reading rasters needs GDAL ({exc}). {GDAL_FIX}.") from None
    return gdal


_MODE_LOCK = threading.Lock()
_MODE_USERS = 0
_MODE_RESTORE = False


@contextmanager
def gdal_exceptions() -> Iterator:
    """Run the GDAL calls inside with GDAL's exceptions on, then restore the caller's mode.

    Yields the ``gdal`` module. GDAL 3.13 warns when no mode was chosen and
    GDAL 4 turns exceptions on by default; inside this block the mode is
    chosen and is the same on every version. The ``osgeo`` modules are
    shared with QGIS and other plugins, so the switch is undone after: from
    GDAL 3.7 it is this thread's own (``gdal.ExceptionMgr``); GDAL 3.6 has
    only the process-wide one, turned on by the first block to enter and
    back off by the last to leave (readers and writers run in threads).
    """
    gdal = _gdal()
    if hasattr(gdal, "_SetExceptionsLocal"):   # GDAL 3.7+: a per-thread mode
        from osgeo import osr
        with gdal.ExceptionMgr(useExceptions=True), osr.ExceptionMgr(useExceptions=True):
            yield gdal
        return
    global _MODE_USERS, _MODE_RESTORE
    with _MODE_LOCK:
        if _MODE_USERS == 0:
            _MODE_RESTORE = not gdal.GetUseExceptions()
            if _MODE_RESTORE:
                gdal.UseExceptions()
        _MODE_USERS += 1
    try:
        yield gdal
    finally:
        with _MODE_LOCK:
            _MODE_USERS -= 1
            if _MODE_USERS == 0 and _MODE_RESTORE:
                gdal.DontUseExceptions()


class GdalErrors:
    """GDAL's failure messages in this thread, collected instead of printed (a CPL error handler).

    Some failures never become an exception: those raised while a dataset is
    closed, and, on GDAL 3.6, the causes behind the last error (libtiff's
    ``No space left on device`` before GDAL's ``WriteEncodedTile failed``).
    Warnings are dropped. Use as ``with GdalErrors() as errors:``.
    """

    def __init__(self):
        self.messages: List[str] = []

    def __call__(self, err_class, _err_no, message) -> None:
        """The handler GDAL calls."""
        if err_class >= 3:   # CE_Failure, CE_Fatal
            self.messages.append(str(message))

    def __enter__(self) -> "GdalErrors":
        _gdal().PushErrorHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        _gdal().PopErrorHandler()


@dataclass(frozen=True)
class BandInfo:
    """Per-band properties carried from input to output."""

    description: str
    color_interp: int
    nodata: Optional[float]
    scale: Optional[float]
    offset: Optional[float]
    unit: str
    palette: Tuple[Tuple[int, ...], ...] = ()   # RGBA entries of a colour table, if any


@dataclass(frozen=True)
class RasterInfo:
    """What the pipeline needs to know about an input raster."""

    path: str
    width: int
    height: int
    geotransform: Tuple[float, ...]
    crs_wkt: str
    dtype: np.dtype
    gdal_type: int
    bands: Tuple[BandInfo, ...]
    pixel_size_m: Optional[float] = None    # ground pixel size; None without a CRS

    @property
    def dtype_name(self) -> str:
        """GDAL's name of the data type, e.g. ``Byte`` or ``UInt16``."""
        return _gdal().GetDataTypeName(self.gdal_type)

    @property
    def band_count(self) -> int:
        """Number of bands in the file."""
        return len(self.bands)


def extent_to_window(extent, geotransform, width: int, height: int) -> Window:
    """Snap a (xmin, ymin, xmax, ymax) extent outward to the pixel grid, clipped to the raster.

    Raises ``SuperResError`` when the extent does not overlap the raster.
    """
    if extent is None:
        return Window(0, 0, width, height)
    xmin, ymin, xmax, ymax = extent
    if not (xmax > xmin and ymax > ymin):
        raise SuperResError("EXTENT is empty: its maximum must be larger than its minimum.")
    x0, pw, _, y0, _, ph = geotransform
    eps = 1e-6  # pixels: keeps an extent already on the grid from growing by one
    cols = sorted(((xmin - x0) / pw, (xmax - x0) / pw))
    rows = sorted(((ymax - y0) / ph, (ymin - y0) / ph))
    c0, c1 = math.floor(cols[0] + eps), math.ceil(cols[1] - eps)
    r0, r1 = math.floor(rows[0] + eps), math.ceil(rows[1] - eps)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, width), min(r1, height)
    if c1 <= c0 or r1 <= r0:
        raise SuperResError("EXTENT does not overlap the input layer. Leave it empty to use "
                            "the whole layer, or draw an extent over the layer.")
    return Window(c0, r0, c1 - c0, r1 - r0)


def ground_pixel_size(geotransform, crs_wkt: str, height: int) -> Optional[float]:
    """Geometric mean of the pixel's width and height in metres, or None without a CRS.

    Geographic CRSs use the metres of a degree at the raster's middle latitude.
    """
    if not crs_wkt:
        return None
    with gdal_exceptions():
        from osgeo import osr
        try:
            srs = osr.SpatialReference()
            if srs.ImportFromWkt(crs_wkt) != 0:   # GDAL 3.6 keeps osr's mode apart from gdal's
                return None
            geographic, unit = srs.IsGeographic(), srs.GetLinearUnits()
        except RuntimeError:   # a CRS GDAL cannot read: no pixel size
            return None
    pw, ph = abs(geotransform[1]), abs(geotransform[5])
    if geographic:
        lat = math.radians(geotransform[3] + geotransform[5] * height / 2)
        pw, ph = pw * 111320.0 * max(math.cos(lat), 1e-6), ph * 110574.0
    else:
        pw, ph = pw * (unit or 1.0), ph * (unit or 1.0)
    return math.sqrt(pw * ph) or None


def read_info(path: str) -> RasterInfo:
    """Open ``path`` read-only and describe it, or raise a clear error."""
    with gdal_exceptions():
        return _read_info(path)


def gdal_message(message: str) -> str:
    """GDAL's message on one line (GDAL 3.7+ adds its causes on lines of their own)."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _read_info(path: str) -> RasterInfo:
    gdal = _gdal()
    try:
        ds, why = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY), ""
    except RuntimeError as exc:
        ds, why = None, gdal_message(exc)
    if ds is None and not str(path).startswith("/vsi") and not os.path.exists(str(path)):
        raise SuperResError(f"Input file '{path}' does not exist.")
    if ds is None:
        raise SuperResError(f"Cannot open '{path}' as a raster: {why or 'unknown format'}.")
    try:
        return _describe_input(gdal, ds, path)
    except RuntimeError as exc:
        raise SuperResError(f"Cannot read '{path}' as a raster: {gdal_message(exc)}.") from None


def _describe_input(gdal, ds, path: str) -> RasterInfo:
    if ds.RasterCount == 0:
        raise SuperResError(f"'{path}' has no raster bands.")
    gt = tuple(ds.GetGeoTransform(can_return_null=True) or (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    if gt[2] != 0 or gt[4] != 0:
        raise SuperResError(f"'{path}' has a rotated or sheared geotransform, which is not "
                            "supported: warp it north-up first (Raster > Projections > Warp).")
    bands = []
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        ct = b.GetColorTable()
        palette = tuple(tuple(ct.GetColorEntry(k)) for k in range(ct.GetCount())) if ct else ()
        bands.append(BandInfo(b.GetDescription() or "", b.GetColorInterpretation(),
                              b.GetNoDataValue(), b.GetScale(), b.GetOffset(), b.GetUnitType() or "",
                              palette))
    gdal_type = ds.GetRasterBand(1).DataType
    from osgeo import gdal_array
    dtype = np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type))
    info = RasterInfo(str(path), ds.RasterXSize, ds.RasterYSize, gt, ds.GetProjection() or "",
                      dtype, gdal_type, tuple(bands),
                      ground_pixel_size(gt, ds.GetProjection() or "", ds.RasterYSize))
    ds = None
    return info


class GdalReader:
    """Windowed reads of the selected bands (1-based) of a raster, read-only.

    ``nodata``, one per selected band (None: no nodata), replaces the values
    the file declares (``SuperResolveJob.src_nodata``); None keeps them.
    """

    def __init__(self, info: RasterInfo, bands: Sequence[int],
                 nodata: Optional[Sequence[Optional[float]]] = None):
        self.info = info
        self.bands = list(bands)
        self.nodata = list(nodata) if nodata is not None else [info.bands[b - 1].nodata for b in self.bands]
        with gdal_exceptions() as gdal:
            try:
                self._ds = gdal.OpenEx(info.path, gdal.OF_RASTER | gdal.OF_READONLY)
            except RuntimeError as exc:   # e.g. deleted since read_info
                raise SuperResError(f"Cannot open '{info.path}' as a raster: {gdal_message(exc)}.") from None
        self._row = None

    def read(self, window: Window) -> np.ndarray:
        """(C, h, w) values of ``window`` in the file's data type.

        When a new row of tiles starts, the blocks cached for the previous
        row are freed, so memory stays flat however large the input.
        """
        if self._row is not None and window.y != self._row:
            self.flush()
        self._row = window.y
        return self._read(window, window.w, window.h)

    def read_sample(self, window: Window, max_pixels: int) -> np.ndarray:
        """A deterministic nearest-neighbour decimation of ``window`` with at most ``max_pixels``."""
        bw, bh = sample_shape(window, max_pixels)
        return self._read(window, bw, bh)

    def _read(self, window: Window, bw: int, bh: int) -> np.ndarray:
        out = []
        with gdal_exceptions():   # per call: tiles are read on their own thread
            for b in self.bands:
                try:
                    arr = self._ds.GetRasterBand(b).ReadAsArray(window.x, window.y, window.w, window.h,
                                                                buf_xsize=bw, buf_ysize=bh)
                except Exception as exc:   # RuntimeError from GDAL, or numpy's on a bad buffer
                    arr, why = None, gdal_message(exc)
                else:
                    why = "no data returned"
                if arr is None:
                    raise SuperResError(f"Could not read band {b} of the input ({why}); "
                                        "the file may be damaged or truncated.")
                out.append(arr)
        return np.stack(out)

    def flush(self) -> None:
        """Free the blocks GDAL cached for reads so far (after each row of tiles)."""
        with gdal_exceptions():
            try:
                self._ds.FlushCache()
            except RuntimeError:   # a read-only dataset has nothing to write: nothing is lost
                pass

    def close(self) -> None:
        """Release the dataset."""
        self._ds = None

    def has_zero_collar(self) -> bool:
        """True when zeros cover at least 5% of the raster's outer edge in every selected band.

        Landsat and Sentinel scenes declare no nodata but pad the scene with a
        zero collar; valid imagery almost never has zeros in all bands along
        that much of its edge.
        """
        w, h = self.info.width, self.info.height
        strips = [Window(0, 0, w, 1), Window(0, h - 1, w, 1), Window(0, 0, 1, h), Window(w - 1, 0, 1, h)]
        zero = np.concatenate([(self._read(s, s.w, s.h) == 0).all(axis=0).ravel() for s in strips])
        return bool(zero.mean() >= 0.05)


def temporary_path(final: Path) -> Path:
    """A hidden name beside ``final`` for the output while it is written."""
    return final.with_name(f".{final.stem}.partial-{os.getpid()}-{id(final):x}{final.suffix or '.tif'}")


#: Output block size: tiles whose HR size is a multiple of it fill whole blocks.
BLOCK = 256


def creation_options(gdal_type: int, big: bool, threads: bool = False) -> List[str]:
    """Tiled GeoTIFF options: ZSTD (DEFLATE where GDAL lacks it) with a predictor.

    The predictor is horizontal differencing for integers and the
    floating-point one for floats; BigTIFF when the output may pass 4 GB.
    ``threads`` compresses blocks on all cores (GDAL's ``NUM_THREADS``), for
    runs whose network is not on this CPU: one thread stores about 125 Mpx/s
    here (`make bench`), which would cap a GPU run, while beside a CPU run
    the extra threads only compete with the network. The bytes are the same.
    """
    with gdal_exceptions() as gdal:
        opts = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
        floating = gdal_type in (gdal.GDT_Float32, gdal.GDT_Float64)
    compress = ["COMPRESS=ZSTD", "ZSTD_LEVEL=1"] if "ZSTD" in opts else ["COMPRESS=DEFLATE", "ZLEVEL=1"]
    threads = ["NUM_THREADS=ALL_CPUS"] if threads and "NUM_THREADS" in opts else []
    return ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", *compress,
            f"PREDICTOR={3 if floating else 2}", "BIGTIFF=" + ("YES" if big else "IF_SAFER"), *threads]


def output_bytes(width: int, height: int, bands: int, gdal_type: int) -> int:
    """Uncompressed size of an output raster, the bound used by the disk-space check."""
    return width * height * bands * _gdal().GetDataTypeSize(gdal_type) // 8


#: A failed write with less than this free in the folder is put down to a full disk.
FULL_DISK_BYTES = 1024 * 1024
# What the system says for a write that cannot be stored (errno's own words, as GDAL quotes them).
_FULL = tuple(os.strerror(getattr(errno, e)) for e in ("ENOSPC", "EDQUOT") if hasattr(errno, e))
_SYSTEM = _FULL + tuple(os.strerror(getattr(errno, e)) for e in ("EFBIG", "EIO", "EROFS") if hasattr(errno, e))


def write_failure(path: Path, where: str, messages: Sequence[str]) -> str:
    """The one-line error for a failed write of ``path`` (``where``: " at x .., y .." or "")."""
    return f"Writing the output '{path}' failed{where}: {failure_reason(Path(path).parent, messages)}."


def failure_reason(folder: Path, messages: Sequence[str]) -> str:
    """Why a write into ``folder`` failed, in one line, from GDAL's messages.

    The system's own reason (``No space left on device``) is preferred to
    GDAL's consequence of it (``WriteEncodedTile/Strip() failed``). A full
    disk is said plainly, also when GDAL did not say why: GDAL 3.13 lets
    libtiff print the reason instead of reporting it.
    """
    causes = []
    for message in messages:
        for line in str(message).splitlines():
            line = line.strip()
            line = line[len("May be caused by:"):].strip() if line.startswith("May be caused by:") else line
            if line and line not in causes:
                causes.append(line)
    systems = [c for c in causes if any(s.lower() in c.lower() for s in _SYSTEM)]
    detail = (systems or causes or [""])[0].rstrip(".")
    try:
        free: Optional[int] = shutil.disk_usage(folder).free
    except OSError:
        free = None
    full = any(s.lower() in detail.lower() for s in _FULL) or (free is not None and free < FULL_DISK_BYTES)
    if full:
        return (f"no space left on the device ({detail or f'{free} bytes free'}); "
                "free some space or choose another folder")
    return detail or "the file could not be written"


def check_whole(path, width: Optional[int] = None, height: Optional[int] = None,
                bands: Optional[int] = None) -> List[str]:
    """Why the GeoTIFF at ``path`` is not whole, or ``[]`` when it is.

    Whole means: it opens, has the expected size and bands, every block of
    every band, of the mask and of each overview is stored inside the file,
    and every block decodes. A block that GDAL failed to write is left
    empty, and an empty block reads back as zeros without any error, so the
    blocks' places are checked as well as their contents. Reading back is
    one decompression of the file, by rows of blocks so memory stays flat.
    """
    with gdal_exceptions() as gdal, GdalErrors() as errors:
        try:
            ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
            found = (ds.RasterXSize, ds.RasterYSize, ds.RasterCount)
            if width is not None and found != (width, height, bands):
                return [f"the file has {found[0]} x {found[1]} px and {found[2]} bands instead of "
                        f"{width} x {height} px and {bands}"]
            size = os.path.getsize(path)
            for level in _levels(gdal, ds):
                missing = _missing_block(level, size)
                if missing:
                    return [f"{missing} is missing from the file (it was not written)"]
                _read_level(ds, level)
        except RuntimeError as exc:
            return [*errors.messages, str(exc)]
        finally:
            ds = None
        return errors.messages


def _levels(gdal, ds) -> List[List[Tuple[str, object]]]:
    """(name, band) of the full resolution, then of each overview; the mask counts as a band."""
    bands = [(f"band {i}", ds.GetRasterBand(i)) for i in range(1, ds.RasterCount + 1)]
    first = bands[0][1]
    # an internal mask, stored like a band (with a nodata value too, GDAL shows only the nodata)
    if first.GetMaskFlags() == gdal.GMF_PER_DATASET:
        bands.append(("the mask", first.GetMaskBand()))
    levels = [bands]
    for k in range(first.GetOverviewCount()):
        levels.append([(f"{name}, overview {k + 1}", band.GetOverview(k)) for name, band in bands
                       if band.GetOverviewCount() > k])
    return levels


def _missing_block(level, size: int) -> str:
    """The first block of ``level`` with no place in a file of ``size`` bytes, or ""."""
    for name, band in level:
        bx, by = band.GetBlockSize()
        for y in range(-(-band.YSize // by)):
            for x in range(-(-band.XSize // bx)):
                offset = band.GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF")
                length = band.GetMetadataItem(f"BLOCK_SIZE_{x}_{y}", "TIFF")
                if not offset or not length or int(offset) + int(length) > size:
                    return f"block {x}, {y} of {name}"
    return ""


def _read_level(ds, level) -> None:
    """Decode every block of ``level`` (raises GDAL's RuntimeError on a damaged one)."""
    band = level[0][1]
    by = band.GetBlockSize()[1]
    for y in range(0, band.YSize, by):
        for _name, b in level:
            b.ReadRaster(0, y, b.XSize, min(by, b.YSize - y))
        ds.FlushCache()   # free this row's blocks


class GdalWriter:
    """A GeoTIFF written tile by tile under a temporary name, renamed by ``commit``.

    Tiles may come in any order. ``flush`` hands finished blocks to the file
    and frees them from GDAL's cache, which keeps memory flat on large
    outputs. With ``cog`` the finished file is rewritten as a Cloud-Optimised
    GeoTIFF (GDAL's COG driver, with overviews) before the rename.
    ``compress_threads`` compresses on all cores (``creation_options``).
    Every failure to write, wherever GDAL reports it or fails to, ends in a
    one-line ``SuperResError`` with the temporary files removed.
    """

    def __init__(self, final_path: str, width: int, height: int, geotransform, crs_wkt: str,
                 gdal_type: int, bands: List[BandInfo], nodata: Sequence[Optional[float]],
                 mask: bool = False, cog: bool = False, metadata: Optional[dict] = None,
                 compress_threads: bool = False):
        self.final = Path(final_path)
        self.tmp = temporary_path(self.final)
        self.cog = cog
        self.width, self.height, self.count = width, height, len(bands)
        self._cog_tmp = self.tmp.with_name(self.tmp.stem + ".cog" + self.tmp.suffix) if cog else None
        self._ds = self._mask = self._cog_ds = None
        big = output_bytes(width, height, len(bands), gdal_type) > 3_500_000_000
        self.options = creation_options(gdal_type, big, compress_threads)
        with gdal_exceptions() as gdal, GdalErrors() as errors:
            try:
                self._ds = gdal.GetDriverByName("GTiff").Create(str(self.tmp), width, height, len(bands),
                                                                gdal_type, self.options)
            except RuntimeError as exc:
                errors.messages.append(str(exc))
            if self._ds is None:
                why = failure_reason(self.final.parent, errors.messages)   # before abort frees space
                self.abort()
                raise SuperResError(f"Cannot create the output in '{self.final.parent}': {why}.")
            try:
                self._describe(gdal, geotransform, crs_wkt, bands, nodata, mask)
                if metadata:
                    self._ds.SetMetadata({k: str(v) for k, v in metadata.items()})
            except RuntimeError as exc:
                message = write_failure(self.final, "", [*errors.messages, str(exc)])
                self.abort()
                raise SuperResError(message) from None
            except BaseException:   # Ctrl-C here must not leave the file behind
                self.abort()
                raise

    def _describe(self, gdal, geotransform, crs_wkt, bands, nodata, mask) -> None:
        if mask:  # an internal per-dataset mask: 255 where every band is valid
            # this thread only, and only for this call: inside QGIS a process-wide option reaches other code
            previous = gdal.GetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
            gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
            try:
                self._ds.CreateMaskBand(gdal.GMF_PER_DATASET)
            finally:
                gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", previous)
            self._mask = self._ds.GetRasterBand(1).GetMaskBand()
        self._ds.SetGeoTransform(tuple(geotransform))
        if crs_wkt:
            self._ds.SetProjection(crs_wkt)
        for i, (info, nd) in enumerate(zip(bands, nodata), start=1):
            band = self._ds.GetRasterBand(i)
            if info.description:
                band.SetDescription(info.description)
            band.SetColorInterpretation(info.color_interp)
            if nd is not None:
                band.SetNoDataValue(float(nd))
            if info.scale is not None and info.scale != 1.0:
                band.SetScale(info.scale)
            if info.offset is not None and info.offset != 0.0:
                band.SetOffset(info.offset)
            if info.unit:
                band.SetUnitType(info.unit)
            if info.palette:
                ct = gdal.ColorTable()
                for k, entry in enumerate(info.palette):
                    ct.SetColorEntry(k, entry)
                band.SetColorTable(ct)

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Write (C, h, w) ``values`` (and the mask, if asked for) at ``window``.

        ``valid`` is the (C, h/s, w/s) validity of the input pixels behind them.
        """
        where = f" at x {window.x}, y {window.y}"
        # per call: tiles are written on their own thread, and both settings are per thread
        with gdal_exceptions(), GdalErrors() as errors:
            try:
                if self._mask is not None and valid is not None:
                    s = values.shape[-1] // valid.shape[-1]
                    ok = np.repeat(np.repeat(valid.all(axis=0), s, axis=0), s, axis=1)
                    if self._mask.WriteArray(np.where(ok, 255, 0).astype(np.uint8), window.x, window.y):
                        raise RuntimeError("the mask's blocks could not be written")
                for i in range(values.shape[0]):
                    if self._ds.GetRasterBand(i + 1).WriteArray(values[i], window.x, window.y):
                        raise RuntimeError("the blocks could not be written")
            except RuntimeError as exc:
                errors.messages.append(str(exc))
        if errors.messages:   # also failures GDAL reported without failing the call (a block evicted)
            raise SuperResError(write_failure(self.final, where, errors.messages))
        if window.x + window.w >= self.width:
            self.flush(where)   # a row of tiles is complete: free its blocks

    def flush(self, where: str = "") -> None:
        """Write the cached blocks to the file and free them (after each row of tiles).

        ``where`` names the tile whose write completed the row, for the error.
        """
        with gdal_exceptions(), GdalErrors() as errors:
            try:
                if self._ds.FlushCache():   # GDAL 3.7+ returns an error code, 3.6 None
                    errors.messages.append("the cached blocks could not be written")
            except RuntimeError as exc:
                errors.messages.append(str(exc))
        if errors.messages:
            raise SuperResError(write_failure(self.final, where, errors.messages))

    def commit(self, overwrite: bool) -> None:
        """Flush and close the file, prove it whole, (make the COG,) then give it its final name.

        Blocks still in GDAL's cache reach the disk only now, so a full disk
        often shows here; GDAL 3.13 may even report success on a truncated
        file. So the closed file is read back (``check_whole``) and takes the
        output's name only when every block is there.
        """
        problems = self._finish()
        if not problems:
            problems = check_whole(self.tmp, self.width, self.height, self.count)
        if problems:
            message = write_failure(self.final, "", problems)   # before abort frees the space
            self.abort()
            raise SuperResError(message)
        result = self._make_cog() if self.cog else self.tmp
        if self.final.exists() and not overwrite:
            self.abort()
            raise SuperResError(f"Output '{self.final}' already exists; choose another name or "
                                "allow overwriting (--overwrite on the command line).")
        try:
            os.replace(result, self.final)
        except OSError as exc:
            self.abort()
            raise SuperResError(f"Cannot move the result to '{self.final}': {exc.strerror}. "
                                "Is the file open in another program?") from None
        self._remove(self.tmp)

    def _finish(self) -> List[str]:
        """Write the blocks still cached and close the file; GDAL's failure messages, if any."""
        with gdal_exceptions(), GdalErrors() as errors:
            try:
                if self._ds.FlushCache():
                    errors.messages.append("the cached blocks could not be written")
            except RuntimeError as exc:
                errors.messages.append(str(exc))
            errors.messages.extend(self._close("_ds"))
        if not errors.messages and not self.tmp.exists():
            errors.messages.append("the file was not written")
        return errors.messages

    def _close(self, attribute: str) -> List[str]:
        """Close the dataset held in ``attribute``, writing its last blocks; GDAL's failures.

        GDAL 3.8+ has ``Close``. Before it, closing is dropping the last
        reference, and an error then is no exception but a message Python
        prints as "Exception ignored"; it is caught here instead.
        """
        ds = getattr(self, attribute)
        setattr(self, attribute, None)
        self._mask = None   # a band must not outlive its dataset
        if ds is None:
            return []
        failures: List[str] = []
        if hasattr(ds, "Close"):
            try:
                if ds.Close():
                    failures.append("the file could not be closed")
            except RuntimeError as exc:
                failures.append(str(exc))
            return failures
        previous = sys.unraisablehook

        def keep(unraisable):
            if "delete_Dataset" in repr(unraisable.object) and isinstance(unraisable.exc_value, RuntimeError):
                failures.append(str(unraisable.exc_value))
            else:
                previous(unraisable)
        sys.unraisablehook = keep
        try:
            del ds   # the only reference: the file is closed here
        finally:
            sys.unraisablehook = previous
        return failures

    def _make_cog(self) -> Path:
        """Rewrite the finished GeoTIFF as a COG with overviews, prove it whole; return its path."""
        compress = [o for o in self.options if o.startswith(("COMPRESS=", "PREDICTOR="))]
        opts = [*compress, "LEVEL=1", "OVERVIEWS=AUTO", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS",
                f"BLOCKSIZE={BLOCK}"]
        opts = [o.replace("PREDICTOR=2", "PREDICTOR=YES").replace("PREDICTOR=3", "PREDICTOR=FLOATING_POINT")
                for o in opts]
        with gdal_exceptions() as gdal, GdalErrors() as errors:
            try:
                self._cog_ds = gdal.Translate(str(self._cog_tmp), str(self.tmp), format="COG",
                                              creationOptions=opts)
                if self._cog_ds is None:
                    errors.messages.append("the COG driver wrote nothing")
            except RuntimeError as exc:
                errors.messages.append(str(exc))
            errors.messages.extend(self._close("_cog_ds"))
        problems = errors.messages or check_whole(self._cog_tmp, self.width, self.height, self.count)
        if problems:
            message = write_failure(self.final, " (as a Cloud-Optimised GeoTIFF)", problems)
            self.abort()
            raise SuperResError(message)
        self._remove(self.tmp)
        return self._cog_tmp

    def abort(self) -> None:
        """Close and delete the temporary files (after an error or a cancel).

        GDAL's complaints while closing a file that is being thrown away are
        dropped: the error that led here has been reported.
        """
        if self._ds is not None or self._cog_ds is not None:
            with gdal_exceptions(), GdalErrors():
                self._close("_ds")
                self._close("_cog_ds")
        self._mask = None
        for p in (self.tmp, self._cog_tmp):
            if p is not None:
                self._remove(p)

    @staticmethod
    def _remove(path: Path) -> None:
        for p in (path, path.with_name(path.name + ".aux.xml"), path.with_name(path.name + ".msk")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
