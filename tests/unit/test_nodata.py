"""Nodata is sacred: same ground positions, no halo, never produced by a valid pixel."""
import numpy as np
import pytest

from backend.encoding import encode
from backend.job import SuperResolveJob, run_job
from helpers import LANDSAT, copy_with, read


def _hole(tmp_path, nodata_value=0):
    img = read(LANDSAT).copy()
    img[:, 40:70, 50:90] = nodata_value        # a block of nodata in the middle
    img[:, 0:6, :] = nodata_value              # and a strip on the top edge
    return copy_with(LANDSAT, tmp_path / "hole.tif", array=img, nodata=nodata_value), img


@pytest.mark.parametrize("model", ["bicubic", "dganet"])
def test_nodata_stays_at_same_ground_positions(tmp_path, model):
    src, img = _hole(tmp_path)
    out = tmp_path / "out.tif"
    run_job(SuperResolveJob(str(src), str(out), model=model, scale=4, ise_iterations=3))
    sr = read(out)
    lr_mask = img == 0
    hr_mask = np.repeat(np.repeat(lr_mask, 4, axis=1), 4, axis=2)
    np.testing.assert_array_equal(sr == 0, hr_mask)


def test_no_dark_halo_next_to_nodata(tmp_path):
    src, img = _hole(tmp_path)
    ours = tmp_path / "ours.tif"
    run_job(SuperResolveJob(str(src), str(ours), model="dganet", scale=2, ise_iterations=3))
    ref = tmp_path / "ref.tif"   # the same image without the hole
    run_job(SuperResolveJob(str(LANDSAT), str(ref), model="dganet", scale=2, ise_iterations=3))
    naive_src = copy_with(LANDSAT, tmp_path / "naive_in.tif", array=img)  # zeros taken as data
    naive = tmp_path / "naive.tif"
    run_job(SuperResolveJob(str(naive_src), str(naive), model="dganet", scale=2, ise_iterations=3,
                            zero_collar="off"))
    a, b, c = (read(p).astype(float) for p in (ours, ref, naive))
    # the valid ring of 2 input pixels around the block
    ring = np.zeros(a.shape[1:], bool)
    ring[(40 - 2) * 2:(70 + 2) * 2, (50 - 2) * 2:(90 + 2) * 2] = True
    ring[40 * 2:70 * 2, 50 * 2:90 * 2] = False
    span = float(np.ptp(read(LANDSAT)))
    ours_err = np.abs(a[:, ring] - b[:, ring]).mean() / span
    naive_err = np.abs(c[:, ring] - b[:, ring]).mean() / span
    assert naive_err > 3 * ours_err, (ours_err, naive_err)   # the naive run has the halo
    assert (a[:, ring] > 0.5 * b[:, ring]).all()             # ours has no dark pixels there


def test_valid_value_equal_to_nodata_is_moved():
    values = np.array([[[0.2, 0.6, 4.0], [-3.0, 1.0, 0.0]]])
    valid = np.array([[[True, True, True], [True, True, False]]])
    out = encode(values, valid, np.uint16, [0])
    assert out.tolist() == [[[1, 1, 4], [1, 1, 0]]]            # rounds/clips to 0 -> moved to 1
    out = encode(np.full((1, 1, 2), 255.4), np.ones((1, 1, 2), bool), np.uint8, [255])
    assert out.tolist() == [[[254, 254]]]
    f = encode(np.array([[[-9999.0, -9998.0]]]), np.array([[[True, False]]]), np.float32, [-9999.0])
    assert f[0, 0, 0] != np.float32(-9999.0) and f[0, 0, 1] == np.float32(-9999.0)


def test_nodata_inside_valid_range(tmp_path):
    img = read(LANDSAT)
    value = int(np.median(img[0]))                   # a value many valid pixels have
    src = copy_with(LANDSAT, tmp_path / "mid.tif", nodata=value)
    out = tmp_path / "out.tif"
    run_job(SuperResolveJob(str(src), str(out), model="bicubic", scale=2))
    sr = read(out)
    hr_mask = np.repeat(np.repeat(img == value, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(sr == value, hr_mask)
    assert hr_mask.any()


def _neighbourhood_range(lr, valid, r):
    """Independent reference: min/max of valid pixels within r (Chebyshev), and near-nodata."""
    h, w = lr.shape
    lo, hi = np.full((h, w), np.inf), np.full((h, w), -np.inf)
    near = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if not valid[y, x]:
                continue
            win = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
            vals = lr[win][valid[win]]
            lo[y, x], hi[y, x] = vals.min(), vals.max()
            near[y, x] = valid[y, x] and not valid[win].all()
    return lo, hi, near


@pytest.mark.parametrize("model,scale,dtype", [("dganet", 2, np.float64), ("bicubic", 4, np.uint8)])
def test_no_halo_outside_the_local_valid_range(tmp_path, model, scale, dtype):
    """A nodata hole cut into strong texture: valid pixels next to it stay in their neighbours' range."""
    from helpers import AERIAL
    from backend.tiling import HALO_RADIUS, HALO_SLACK
    img = read(AERIAL)[:, :64, :64].astype(dtype)       # forest canopy: strong texture
    nodata = 255 if dtype == np.uint8 else -9999.0
    img[:, 20:44, 18:40] = nodata                       # a cloud-mask-like hole
    img[:, 50:53, 5:60] = nodata                        # and a thin gap
    from osgeo import gdal
    gtype = gdal.GDT_Float64 if dtype == np.float64 else gdal.GDT_Byte
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "in.tif"), 64, 64, 3, gtype)
    ref = gdal.Open(str(AERIAL))
    ds.SetGeoTransform(ref.GetGeoTransform())
    ds.SetProjection(ref.GetProjection())
    for i in range(3):
        ds.GetRasterBand(i + 1).WriteArray(img[i])
        ds.GetRasterBand(i + 1).SetNoDataValue(nodata)
        ds.GetRasterBand(i + 1).SetColorInterpretation(ref.GetRasterBand(i + 1).GetColorInterpretation())
    ds = None
    out = tmp_path / "out.tif"
    run_job(SuperResolveJob(str(tmp_path / "in.tif"), str(out), model=model, scale=scale, ise_iterations=5))
    sr = read(out).astype(float)
    checked = 0
    for b in range(3):
        valid = img[b] != nodata
        lo, hi, near = _neighbourhood_range(img[b].astype(float), valid, HALO_RADIUS)
        slack = (hi - lo) * HALO_SLACK      # no tolerance: the clamp holds after rounding too
        up = lambda a: np.kron(a, np.ones((scale, scale)))  # noqa: E731
        zone = up(near) > 0
        band = sr[b]
        assert (band[zone] >= up(lo - slack)[zone]).all() and (band[zone] <= up(hi + slack)[zone]).all()
        checked += zone.sum()
    assert checked > 1000
