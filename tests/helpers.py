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
