"""GDAL round trips: georeferencing, data type, nodata and band metadata survive."""
import numpy as np
import pytest
from osgeo import gdal

from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job
from helpers import (AERIAL, LANDSAT, RGBN, assert_same_pixels, copy_with, keys_upsample, read,
                     write_raster)


def _run(src, dst, **kw):
    kw.setdefault("model", "bicubic")
    return run_job(SuperResolveJob(str(src), str(dst), **kw))


@pytest.mark.parametrize("src,scale", [(AERIAL, 4), (LANDSAT, 2), (RGBN, 8)])
def test_geotransform_crs_dtype_nodata(tmp_path, src, scale):
    out = tmp_path / "out.tif"
    res = _run(src, out, scale=scale)
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    ga, gb = a.GetGeoTransform(), b.GetGeoTransform()
    assert gb[0] == ga[0] and gb[3] == ga[3]                       # same top-left corner
    assert gb[1] == pytest.approx(ga[1] / scale) and gb[5] == pytest.approx(ga[5] / scale)
    assert (b.RasterXSize, b.RasterYSize) == (a.RasterXSize * scale, a.RasterYSize * scale)
    # the same ground: bounds equal
    assert ga[0] + a.RasterXSize * ga[1] == pytest.approx(gb[0] + b.RasterXSize * gb[1], abs=1e-6)
    assert ga[3] + a.RasterYSize * ga[5] == pytest.approx(gb[3] + b.RasterYSize * gb[5], abs=1e-6)
    assert b.GetProjection() == a.GetProjection()
    for i in range(1, a.RasterCount + 1):
        ba, bb = a.GetRasterBand(i), b.GetRasterBand(i)
        assert bb.DataType == ba.DataType
        assert bb.GetNoDataValue() == ba.GetNoDataValue()
        assert bb.GetColorInterpretation() == ba.GetColorInterpretation()
        assert bb.GetOverviewCount() == 0
        assert bb.GetMetadata("") .get("STATISTICS_MEAN") is None
    assert res.width == b.RasterXSize and res.tiles >= 1


def test_scale_offset_unit_descriptions_carried(tmp_path):
    src = copy_with(LANDSAT, tmp_path / "in.tif", scale=2.75e-5, offset=-0.2, unit="reflectance",
                    descriptions=["blue", "green", "red"])
    out = tmp_path / "out.tif"
    _run(src, out, scale=2)
    b = gdal.Open(str(out))
    assert [b.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == ["blue", "green", "red"]
    assert b.GetRasterBand(2).GetScale() == pytest.approx(2.75e-5)
    assert b.GetRasterBand(2).GetOffset() == pytest.approx(-0.2)
    assert b.GetRasterBand(3).GetUnitType() == "reflectance"


def test_uint16_values_are_not_clipped_to_255(tmp_path):
    out = tmp_path / "out.tif"
    _run(LANDSAT, out, scale=2)
    sr, lr = read(out), read(LANDSAT)
    assert sr.dtype == np.uint16 and sr.max() > 255
    # bicubic keeps the band means
    assert np.allclose(sr.reshape(3, -1).mean(1), lr.reshape(3, -1).mean(1), rtol=0.01)


# values in each type's own range: negatives, beyond 16 bits, reflectance, a large offset
TYPED = [(gdal.GDT_Int16, lambda v: v - 8000), (gdal.GDT_UInt32, lambda v: v * 1000),
         (gdal.GDT_Int32, lambda v: v * 1000 - 8_000_000), (gdal.GDT_Float32, lambda v: v * 2.75e-5 - 0.2),
         (gdal.GDT_Float64, lambda v: (v - 8000) * 1e-3 + 1e6)]


@pytest.mark.parametrize("dtype,values", TYPED, ids=lambda v: gdal.GetDataTypeName(v) if isinstance(v, int) else "")
def test_other_data_types(tmp_path, dtype, values):
    lr = values(read(LANDSAT)[0].astype(np.float64))
    src = write_raster(tmp_path / "in.tif", lr[None], gt=gdal.Open(str(LANDSAT)).GetGeoTransform(), dtype=dtype)
    lr = read(src)[0].astype(np.float64)           # as stored in the type
    out = tmp_path / "out.tif"
    _run(src, out, scale=2)
    ds = gdal.Open(str(out))  # keep the dataset alive while its band is used
    b = ds.GetRasterBand(1)
    assert b.DataType == dtype
    sr = b.ReadAsArray().astype(np.float64)[4:-4, 4:-4]
    ref = keys_upsample(lr, 2)[4:-4, 4:-4]     # where no tap reaches past the edge
    if dtype in (gdal.GDT_Float32, gdal.GDT_Float64):
        assert np.abs(sr - ref).max() <= 1e-5 * np.ptp(lr)
    else:
        assert np.abs(sr - np.rint(ref)).max() <= 1


def test_byte_values_clip_to_type_range(tmp_path):
    # a sharp real edge: bicubic overshoots, which must clip at 0..255, not wrap
    img = read(AERIAL).copy()
    img[:, :, :64] = 254
    img[:, :, 64:] = 0
    src = copy_with(AERIAL, tmp_path / "edge.tif", array=img)
    out = tmp_path / "out.tif"
    _run(src, out, scale=4, model="bicubic")
    sr = read(out).astype(int)
    # bicubic overshoots above 254 and below 0 at the edge: clipped, not wrapped around;
    # 255 is the declared nodata, so a valid overshoot lands on 254, never on nodata
    assert sr.min() == 0 and sr.max() == 254
    assert (sr[:, :, 246:252] == 254).all() and (sr[:, :, 260:266] <= 1).all()


@pytest.fixture(scope="module")
def aerial_x2(tmp_path_factory):
    """The whole-layer bicubic x2 run of the aerial crop, for comparing extents with."""
    out = tmp_path_factory.mktemp("full") / "full.tif"
    _run(AERIAL, out, scale=2)
    return read(out)


# (columns, rows) of the extent in input pixels -> the snapped window (x, y, w, h)
EXTENTS = [
    (((10.5, 20.2), (5.3, 200.0)), (10, 5, 11, 123)),   # starts mid-pixel, ends beyond the raster
    (((37.9, 70.01), (41.2, 60.0)), (37, 41, 34, 19)),  # inside; the bottom edge on the grid
    (((64.0, 96.0), (0.0, 32.0)), (64, 0, 32, 32)),     # on the grid: does not grow
    (((-20.0, 5.5), (-3.0, 2.2)), (0, 0, 6, 3)),        # starts before the raster
]


@pytest.mark.parametrize("pixels,window", EXTENTS)
def test_extent_snaps_outward_and_clips(tmp_path, aerial_x2, pixels, window):
    a = gdal.Open(str(AERIAL))
    x0, pw, _, y0, _, ph = a.GetGeoTransform()
    (c0, c1), (r0, r1) = pixels
    out = tmp_path / "out.tif"
    res = _run(AERIAL, out, scale=2, extent=(x0 + c0 * pw, y0 + r1 * ph, x0 + c1 * pw, y0 + r0 * ph))
    x, y, w, h = window
    b = gdal.Open(str(out))
    gb = b.GetGeoTransform()
    # the snapped window's corner, to a thousandth of a pixel (0.1 mm on 0.1 m pixels)
    assert gb[0] == pytest.approx(x0 + x * pw, abs=1e-3 * pw)
    assert gb[3] == pytest.approx(y0 + y * ph, abs=1e-3 * abs(ph))
    assert (gb[1], gb[5]) == pytest.approx((pw / 2, ph / 2), rel=1e-12)
    assert (b.RasterXSize, b.RasterYSize) == (res.width, res.height) == (2 * w, 2 * h)
    assert f"Input window: x {x}, y {y}, {w} x {h} px" in "\n".join(res.log)
    # the pixels of the same window of the whole-layer run (context is read around the extent)
    assert_same_pixels(read(out), aerial_x2[:, 2 * y:2 * (y + h), 2 * x:2 * (x + w)])


def test_extent_outside_is_a_clear_error(tmp_path):
    a = gdal.Open(str(AERIAL))
    x0 = a.GetGeoTransform()[0]
    with pytest.raises(SuperResError, match="does not overlap"):
        _run(AERIAL, tmp_path / "o.tif", extent=(x0 - 100, 0, x0 - 50, 1e9))
    assert not list(tmp_path.iterdir())


def test_bands_subset_and_order(tmp_path):
    out = tmp_path / "out.tif"
    _run(LANDSAT, out, scale=2, bands=[3, 1])
    full = tmp_path / "full.tif"
    _run(LANDSAT, full, scale=2)
    np.testing.assert_array_equal(read(out), read(full)[[2, 0]])
    with pytest.raises(SuperResError, match="BANDS 4 out of range"):
        _run(LANDSAT, tmp_path / "bad.tif", bands=[4])


def _paletted(tmp_path):
    src = tmp_path / "pal.tif"
    classes = (read(AERIAL)[1] // 64).astype(np.uint8)   # 4 classes from a real band
    ds = gdal.GetDriverByName("GTiff").Create(str(src), 128, 128, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(gdal.Open(str(AERIAL)).GetGeoTransform())
    band = ds.GetRasterBand(1)
    ct = gdal.ColorTable()
    for k, rgba in enumerate([(0, 0, 0, 255), (200, 0, 0, 255), (0, 200, 0, 255), (0, 0, 200, 255)]):
        ct.SetColorEntry(k, rgba)
    # the palette before the pixels: once they are written GDAL 3.13 may refuse to change
    # the TIFF's PhotometricInterpretation (an error, with exceptions on)
    band.SetColorTable(ct)
    band.SetColorInterpretation(gdal.GCI_PaletteIndex)
    band.WriteArray(classes)
    ds = None
    return src, classes


def test_paletted_raster_refused_except_nearest(tmp_path):
    src, classes = _paletted(tmp_path)
    with pytest.raises(SuperResError, match="paletted raster.*nearest"):
        _run(src, tmp_path / "o.tif", model="bicubic", scale=2)
    out = tmp_path / "n.tif"
    _run(src, out, model="nearest", scale=2)
    np.testing.assert_array_equal(read(out)[0], np.kron(classes, np.ones((2, 2), np.uint8)))
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).GetColorTable().GetColorEntry(2) == (0, 200, 0, 255)
