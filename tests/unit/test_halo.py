"""No halo at nodata edges, to the last pixel (README "How it works", Nodata).

The raster is Landsat 7-like: the committed Landsat 8 B4 crop (fields with
sharp boundaries) as Float64 surface reflectance (Collection 2 scaling,
DN * 2.75e-5 - 0.2), with SLC-off-like gaps (diagonal stripes that widen
towards the sides) and a lobed cloud hole, so the nodata edges cut through
strong gradients everywhere.
"""
import subprocess
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from backend.job import SuperResolveJob, run_job
from backend.tiling import HALO_RADIUS, HALO_SLACK
from helpers import LANDSAT, ROOT, read, write_raster

NODATA = -9999.0


def _landsat7_like(tmp_path, dtype="Float64"):
    """Write the gapped raster; return (path, values, valid)."""
    from osgeo import gdal
    dn = read(LANDSAT)[2].astype(np.float64)
    h, w = dn.shape
    yy, xx = np.mgrid[0:h, 0:w]
    gap = (yy * 0.95 + xx * 0.3) % 21 < 1 + 3 * np.abs(xx - w / 2) / (w / 2)
    gap |= np.hypot(yy - 70, xx - 40) < 12 + 4 * np.sin(5 * np.arctan2(yy - 70, xx - 40))
    if dtype == "UInt16":   # the DNs, with nodata inside the valid range (the median DN)
        nodata = float(np.median(dn))
        values, gtype = dn, gdal.GDT_UInt16
        gap |= dn == nodata
    else:
        values, nodata, gtype = dn * 2.75e-5 - 0.2, NODATA, getattr(gdal, f"GDT_{dtype}")
    # as the file holds them, compared in float64
    values = np.where(gap, nodata, values).astype(dtype.lower()).astype(np.float64)
    path = write_raster(tmp_path / "l7.tif", values[None], nodata=nodata, dtype=gtype)
    return path, values, ~gap


def out_of_range(lr, valid, sr, scale):
    """Output pixels breaking the promise, and how many pixels it covers.

    Independent of the backend: per valid LR pixel with nodata within
    ``HALO_RADIUS`` (Chebyshev), the valid LR min/max there widened by
    ``HALO_SLACK`` of their difference, in float64, with no tolerance.
    """
    k = 2 * HALO_RADIUS + 1
    win = lambda a, fill: sliding_window_view(np.pad(a, HALO_RADIUS, constant_values=fill), (k, k))  # noqa: E731
    lo = win(np.where(valid, lr, np.inf), np.inf).min(axis=(-1, -2))
    hi = win(np.where(valid, lr, -np.inf), -np.inf).max(axis=(-1, -2))
    near = valid & win(~valid, False).any(axis=(-1, -2))
    up = lambda a: np.kron(a, np.ones((scale, scale), a.dtype))  # noqa: E731
    low, high = up(np.where(near, lo - (hi - lo) * HALO_SLACK, 0)), up(np.where(near, hi + (hi - lo) * HALO_SLACK, 0))
    bad = up(near) & ((sr < low) | (sr > high))
    return int(bad.sum()), int(up(near).sum())


@pytest.mark.parametrize("scale,ise", [(2, 0), (2, 5), (2, 10), (4, 5)])
def test_no_valid_pixel_outside_the_local_range_near_nodata(tmp_path, scale, ise):
    src, lr, valid = _landsat7_like(tmp_path)
    out = tmp_path / "out.tif"
    run_job(SuperResolveJob(str(src), str(out), model="dganet", scale=scale, ise_iterations=ise))
    bad, checked = out_of_range(lr, valid, read(out)[0].astype(np.float64), scale)
    assert checked > 10000 * scale * scale // 4
    assert bad == 0, f"{bad} of {checked} output pixels near nodata are outside the promised range"


def test_the_guard_is_needed_and_touches_only_pixels_near_nodata(tmp_path, monkeypatch):
    """Without the clamp the same run breaks the promise; with it, pixels farther than
    ``HALO_RADIUS`` from nodata are bit for bit the same."""
    import backend.tiling as tiling
    src, lr, valid = _landsat7_like(tmp_path)
    ours, raw = tmp_path / "ours.tif", tmp_path / "raw.tif"
    run_job(SuperResolveJob(str(src), str(ours), model="dganet", scale=2, ise_iterations=5))
    monkeypatch.setattr(tiling, "clamp_near_nodata", lambda values, *a: values)
    run_job(SuperResolveJob(str(src), str(raw), model="dganet", scale=2, ise_iterations=5))
    a, b = read(ours)[0], read(raw)[0]
    assert out_of_range(lr, valid, b, 2)[0] > 100                 # a hard case: the network rings here
    k = 2 * HALO_RADIUS + 1
    near = sliding_window_view(np.pad(~valid, HALO_RADIUS), (k, k)).any(axis=(-1, -2))
    far = np.kron(~near, np.ones((2, 2), bool))
    np.testing.assert_array_equal(a[far], b[far])
    assert (a[~far] != b[~far]).any()


@pytest.mark.parametrize("dtype", ["UInt16", "Float32"])
def test_other_output_types(tmp_path, dtype):
    """UInt16 rounds after the clamp (and its nodata lies inside the valid range); Float32
    computes in float32: neither may take a clamped value across the bound."""
    src, lr, valid = _landsat7_like(tmp_path, dtype)
    out = tmp_path / "out.tif"
    run_job(SuperResolveJob(str(src), str(out), model="dganet", scale=2, ise_iterations=5))
    assert out_of_range(lr, valid, read(out)[0].astype(np.float64), 2)[0] == 0


def test_a_bound_equal_to_nodata_is_pulled_in():
    """encode moves a valid value equal to nodata one step up: a top bound equal to
    nodata must step below it, or the move leaves the range."""
    from backend.encoding import encode
    from backend.tiling import halo_limits
    lo, hi, near = np.full((1, 1, 1), 85.0), np.full((1, 1, 1), 100.0), np.ones((1, 1, 1), bool)
    top = 100 + 15 * HALO_SLACK                     # the promised bound, 101.5 (HALO_SLACK 0.1)
    nodata = np.floor(top)                          # the last whole number within it
    low, high, _ = halo_limits((lo, hi, near), np.uint16, [nodata])
    out = encode(np.clip(np.full((1, 1, 1), 150.0), low, high), near, np.uint16, [nodata])
    assert 100 <= out[0, 0, 0] <= top and out[0, 0, 0] != nodata


def test_numpy_path_keeps_the_same_promise(tmp_path):
    """Without torch (bicubic, numpy) the clamp follows the same rule."""
    src, lr, valid = _landsat7_like(tmp_path)
    out = tmp_path / "nt.tif"
    code = ("import sys; sys.modules['torch'] = None\n"
            "from backend.job import SuperResolveJob, run_job\n"
            f"run_job(SuperResolveJob({str(src)!r}, {str(out)!r}, 'bicubic', 4, 0))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out_of_range(lr, valid, read(out)[0], 4)[0] == 0
