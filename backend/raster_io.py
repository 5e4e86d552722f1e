"""GDAL raster reading and writing for the tile pipeline.

The input is opened read-only. The output is written under a hidden
temporary name in the destination folder and renamed only on success.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import SuperResError
from .tiling import Window, sample_shape

GDAL_FIX = "Install GDAL's Python bindings (Debian: python3-gdal)"


def _gdal():
    try:
        from osgeo import gdal
    except ImportError as exc:
        raise SuperResError(f"Reading rasters needs GDAL ({exc}). {GDAL_FIX}.") from None
    return gdal


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
    from osgeo import osr
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(crs_wkt) != 0:
        return None
    pw, ph = abs(geotransform[1]), abs(geotransform[5])
    if srs.IsGeographic():
        lat = math.radians(geotransform[3] + geotransform[5] * height / 2)
        pw, ph = pw * 111320.0 * max(math.cos(lat), 1e-6), ph * 110574.0
    else:
        unit = srs.GetLinearUnits() or 1.0
        pw, ph = pw * unit, ph * unit
    return math.sqrt(pw * ph) or None


def read_info(path: str) -> RasterInfo:
    """Open ``path`` read-only and describe it, or raise a clear error."""
    gdal = _gdal()
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
        why = gdal.GetLastErrorMsg()
    except RuntimeError as exc:   # GDAL raises when exceptions are on (QGIS enables them)
        ds, why = None, str(exc)
    if ds is None and not str(path).startswith("/vsi") and not os.path.exists(str(path)):
        raise SuperResError(f"Input file '{path}' does not exist.")
    if ds is None:
        raise SuperResError(f"Cannot open '{path}' as a raster: {why or 'unknown format'}.")
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
    """Windowed reads of the selected bands (1-based) of a raster, read-only."""

    def __init__(self, info: RasterInfo, bands: Sequence[int]):
        gdal = _gdal()
        self.info = info
        self.bands = list(bands)
        self.nodata = [info.bands[b - 1].nodata for b in self.bands]
        self._ds = gdal.OpenEx(info.path, gdal.OF_RASTER | gdal.OF_READONLY)
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
        for b in self.bands:
            try:
                arr = self._ds.GetRasterBand(b).ReadAsArray(window.x, window.y, window.w, window.h,
                                                            buf_xsize=bw, buf_ysize=bh)
            except Exception as exc:  # GDAL raises when exceptions are on (QGIS enables them)
                raise SuperResError(f"Could not read band {b} of the input ({exc}); "
                                    "the file may be damaged or truncated.") from None
            if arr is None:
                raise SuperResError(f"Could not read band {b} of the input ({_gdal().GetLastErrorMsg()}); "
                                    "the file may be damaged or truncated.")
            out.append(arr)
        return np.stack(out)

    def flush(self) -> None:
        """Free the blocks GDAL cached for reads so far (after each row of tiles)."""
        self._ds.FlushCache()

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
    gdal = _gdal()
    opts = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    floating = gdal_type in (gdal.GDT_Float32, gdal.GDT_Float64)
    compress = ["COMPRESS=ZSTD", "ZSTD_LEVEL=1"] if "ZSTD" in opts else ["COMPRESS=DEFLATE", "ZLEVEL=1"]
    threads = ["NUM_THREADS=ALL_CPUS"] if threads and "NUM_THREADS" in opts else []
    return ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", *compress,
            f"PREDICTOR={3 if floating else 2}", "BIGTIFF=" + ("YES" if big else "IF_SAFER"), *threads]


def output_bytes(width: int, height: int, bands: int, gdal_type: int) -> int:
    """Uncompressed size of an output raster, the bound used by the disk-space check."""
    return width * height * bands * _gdal().GetDataTypeSize(gdal_type) // 8


class GdalWriter:
    """A GeoTIFF written tile by tile under a temporary name, renamed by ``commit``.

    Tiles may come in any order. ``flush`` hands finished blocks to the file
    and frees them from GDAL's cache, which keeps memory flat on large
    outputs. With ``cog`` the finished file is rewritten as a Cloud-Optimised
    GeoTIFF (GDAL's COG driver, with overviews) before the rename.
    ``compress_threads`` compresses on all cores (``creation_options``).
    """

    def __init__(self, final_path: str, width: int, height: int, geotransform, crs_wkt: str,
                 gdal_type: int, bands: List[BandInfo], nodata: Sequence[Optional[float]],
                 mask: bool = False, cog: bool = False, metadata: Optional[dict] = None,
                 compress_threads: bool = False):
        gdal = _gdal()
        self.final = Path(final_path)
        self.tmp = temporary_path(self.final)
        self.cog = cog
        self.width = width
        self._cog_tmp = self.tmp.with_name(self.tmp.stem + ".cog" + self.tmp.suffix) if cog else None
        driver = gdal.GetDriverByName("GTiff")
        big = output_bytes(width, height, len(bands), gdal_type) > 3_500_000_000
        self.options = creation_options(gdal_type, big, compress_threads)
        self._ds = driver.Create(str(self.tmp), width, height, len(bands), gdal_type, self.options)
        if self._ds is None:
            raise SuperResError(f"Cannot create the output in '{self.final.parent}': "
                                f"{gdal.GetLastErrorMsg() or 'permission denied or disk full'}.")
        self._mask = None
        try:
            self._describe(gdal, geotransform, crs_wkt, bands, nodata, mask)
            if metadata:
                self._ds.SetMetadata({k: str(v) for k, v in metadata.items()})
        except BaseException:   # Ctrl-C or a GDAL error here must not leave the file behind
            self.abort()
            raise

    def _describe(self, gdal, geotransform, crs_wkt, bands, nodata, mask) -> None:
        if mask:  # an internal per-dataset mask: 255 where every band is valid
            gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
            self._ds.CreateMaskBand(gdal.GMF_PER_DATASET)
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
        if self._mask is not None and valid is not None:
            s = values.shape[-1] // valid.shape[-1]
            ok = valid.all(axis=0)
            mask = np.repeat(np.repeat(ok, s, axis=0), s, axis=1)
            self._mask.WriteArray(np.where(mask, 255, 0).astype(np.uint8), window.x, window.y)
        gdal = _gdal()
        for i in range(values.shape[0]):
            try:
                err = self._ds.GetRasterBand(i + 1).WriteArray(values[i], window.x, window.y)
            except RuntimeError as exc:   # GDAL raises when exceptions are on (QGIS enables them)
                err, msg = 1, str(exc)
            else:
                msg = gdal.GetLastErrorMsg()
            if err != 0:
                raise SuperResError(f"Writing the output failed at x {window.x}, y {window.y}: "
                                    f"{msg or 'disk full?'}")
        if window.x + window.w >= self.width:
            self.flush(f" at x {window.x}, y {window.y}")   # a row of tiles is complete: free its blocks

    def flush(self, where: str = "") -> None:
        """Write the cached blocks to the file and free them (after each row of tiles).

        ``where`` names the tile whose write completed the row, for the error.
        """
        gdal = _gdal()
        gdal.ErrorReset()
        try:
            self._ds.FlushCache()
            failed = gdal.GetLastErrorType() >= gdal.CE_Failure
            msg = gdal.GetLastErrorMsg()
        except RuntimeError as exc:   # GDAL raises when exceptions are on (QGIS enables them)
            failed, msg = True, str(exc)
        if failed:
            raise SuperResError(f"Writing the output failed{where}: {msg or 'disk full?'}")

    def commit(self, overwrite: bool) -> None:
        """Flush, close (and make the COG), then move the result to its final name."""
        gdal = _gdal()
        # Blocks still in GDAL's cache reach the disk only now: a full disk
        # shows up here, and the half-written file must not be renamed.
        gdal.ErrorReset()
        try:
            self._ds.FlushCache()
        except RuntimeError:
            pass  # raised when GDAL exceptions are on; the error type is checked below
        self._mask = None
        self._ds = None
        if gdal.GetLastErrorType() >= gdal.CE_Failure or not self.tmp.exists():
            message = gdal.GetLastErrorMsg() or "the file was not written"
            self.abort()
            raise SuperResError(f"Writing the output failed: {message}")
        result = self.tmp
        if self.cog:
            result = self._make_cog(gdal)
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

    def _make_cog(self, gdal) -> Path:
        """Rewrite the finished GeoTIFF as a COG with overviews; return its path."""
        compress = [o for o in self.options if o.startswith(("COMPRESS=", "PREDICTOR="))]
        level = "LEVEL=1"
        opts = [*compress, level, "OVERVIEWS=IF_NEEDED", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS",
                f"BLOCKSIZE={BLOCK}"]
        opts = [o.replace("PREDICTOR=2", "PREDICTOR=YES").replace("PREDICTOR=3", "PREDICTOR=FLOATING_POINT")
                for o in opts]
        ds = gdal.Translate(str(self._cog_tmp), str(self.tmp), format="COG", creationOptions=opts)
        if ds is None:
            self.abort()
            raise SuperResError(f"Writing the Cloud-Optimised GeoTIFF failed: {gdal.GetLastErrorMsg()}")
        ds = None
        self._remove(self.tmp)
        return self._cog_tmp

    def abort(self) -> None:
        """Close and delete the temporary files (after an error or a cancel)."""
        self._mask = None
        self._ds = None
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
