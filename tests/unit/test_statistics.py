"""Normalisation statistics: percentiles of the valid pixels of the processed extent, from a decimated sample."""
import numpy as np
from osgeo import gdal

from backend.job import SuperResolveJob, run_job
from helpers import LANDSAT, mosaic, write_raster


def test_percentiles_of_a_decimated_sample_of_the_extent(tmp_path):
    # 1024 x 1024 real pixels, rows alternating between two Landsat bands: a sample of every other
    # row holds one band only, so its percentiles differ from those of all pixels
    img = np.tile(mosaic(256, 256, band=0)[0], (4, 4))[None]
    img[0, 1::2] = np.tile(mosaic(256, 256, band=2)[0], (4, 4))[1::2]
    img[0, 300:420, 500:640] = 0                       # declared nodata: not part of the statistics
    img[0, :12] = img[0, 1012:] = 60000                # outside the extent: not part of them either
    src = write_raster(tmp_path / "big.tif", img, gt=gdal.Open(str(LANDSAT)).GetGeoTransform(), nodata=0,
                       dtype=gdal.GDT_UInt16)
    x0, pw, _, y0, _, ph = gdal.Open(str(src)).GetGeoTransform()
    region = img[0, 12:1012]                           # 1024 x 1000: over the sample's million pixels
    res = run_job(SuperResolveJob(str(src), str(tmp_path / "o.tif"), "nearest", 2,
                                  extent=(x0, y0 + 1012 * ph, x0 + 1024 * pw, y0 + 12 * ph), tile_size=512))
    assert (res.width, res.height) == (2048, 2000)

    def stats(values):
        lo, hi = np.percentile(values[values != 0].astype(np.float64), [0.5, 99.5])
        return lo, hi - lo
    # every other row and column (one whole factor keeps the sample under a million pixels)
    samples = [stats(region[oy::2, ox::2]) for oy in (0, 1) for ox in (0, 1)]
    assert (res.stats.low[0], res.stats.span[0]) in samples
    assert (res.stats.low[0], res.stats.span[0]) != stats(region)   # not the full-resolution values
