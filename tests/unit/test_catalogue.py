"""The bad- and edge-input catalogue: each case has one defined outcome.

Either a correct result (pixels and georeferencing asserted) or one clear
SuperResError naming the problem and the fix. Cases that need QGIS (a WMS
layer, an extent in another CRS) are in tests/qgis.
"""
import re

import numpy as np
import pytest
from osgeo import gdal

from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job
from helpers import (AERIAL, COLLAR, LANDSAT, assert_same_pixels, copy_with, keys_upsample, read,
                     write_raster)


def sr(src, out, **kw):
    kw.setdefault("model", "dganet")
    kw.setdefault("scale", 2)
    log = []
    run_job(SuperResolveJob(str(src), str(out), **kw), log=log.append)
    return read(out), log


def real_band(h=64, w=64):
    return read(LANDSAT)[0, :h, :w].astype(np.float32)


# --- rasters -----------------------------------------------------------------

def test_zero_collar_on_real_landsat_is_nodata_without_halo(tmp_path):
    out, log = sr(COLLAR, tmp_path / "o.tif", scale=2, ise_iterations=3)
    lr = read(COLLAR)
    zero = (lr == 0).all(axis=0)
    assert any("zero collar" in line or "zeros line" in line for line in log)
    np.testing.assert_array_equal((out == 0).all(axis=0), np.kron(zero, np.ones((2, 2), bool)))
    assert gdal.Open(str(tmp_path / "o.tif")).GetRasterBand(1).GetNoDataValue() == 0
    naive, _ = sr(COLLAR, tmp_path / "n.tif", scale=2, ise_iterations=3, zero_collar="off")
    # valid pixels along the collar ring (over- and undershoot) when zeros count as data;
    # with the collar masked they stay close to their own input pixels
    edge = np.kron(zero, np.ones((2, 2), bool))
    ring = ~edge & (np.roll(edge, 3, 1) | np.roll(edge, -3, 1))
    local = np.kron(lr, np.ones((1, 2, 2))).astype(float)
    ours_err = np.abs(out[:, ring] - local[:, ring]).mean()
    naive_err = np.abs(naive[:, ring].astype(float) - local[:, ring]).mean()
    assert naive_err > 2 * ours_err, (ours_err, naive_err)
    assert out[:, ring].min() > 0.5 * np.median(lr[:, ~zero])


@pytest.mark.parametrize("dtype", [gdal.GDT_Float32, gdal.GDT_Float64])
def test_nan_and_inf_stay_local(tmp_path, dtype):
    a = real_band()[None].astype(np.float64)
    a[0, 10:14, 10:14] = np.nan
    a[0, 40, 40] = np.inf
    a[0, 50, 5] = -np.inf
    out, _ = sr(write_raster(tmp_path / "nan.tif", a, dtype=dtype), tmp_path / "o.tif")
    bad = np.kron(~np.isfinite(a[0]), np.ones((2, 2), bool))
    assert np.isnan(out[0][bad]).all()
    assert np.isfinite(out[0][~bad]).all()          # NaN never spreads
    assert abs(np.nanmean(out) - np.nanmean(a[np.isfinite(a)])) < 0.02 * np.nanmean(a[np.isfinite(a)])


def test_nan_with_declared_nodata_becomes_nodata(tmp_path):
    a = real_band()[None]
    a[0, :5] = np.nan
    out, _ = sr(write_raster(tmp_path / "n.tif", a, nodata=-9999), tmp_path / "o.tif", model="bicubic")
    assert (out[0, :10] == -9999).all() and (out[0, 10:] != -9999).all()


def test_constant_raster(tmp_path):
    out, _ = sr(write_raster(tmp_path / "c.tif", np.full((1, 32, 32), 812.0, np.float32)), tmp_path / "o.tif",
                ise_iterations=2)
    np.testing.assert_allclose(out, 812.0, atol=0.5)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 120), (120, 2)])
def test_tiny_and_thin_rasters(tmp_path, shape):
    a = real_band(*shape)[None]
    src = write_raster(tmp_path / "t.tif", a)
    # bicubic: Keys' kernel computed here, raster edges mirrored (a 1-pixel row is its own reflection)
    bic, _ = sr(src, tmp_path / "b.tif", model="bicubic", scale=4)
    span = float(np.ptp(real_band(8, 8))) if shape == (1, 1) else float(np.ptp(a))
    assert np.abs(bic[0] - keys_upsample(a[0], 4)).max() <= 1e-5 * span
    out, _ = sr(src, tmp_path / "o.tif", scale=4, ise_iterations=2)
    assert out.shape == (1, shape[0] * 4, shape[1] * 4) and np.isfinite(out).all()
    # dganet + ISE: each 4 x 4 block averages to its input pixel (one pixel: all of it is that
    # value), and the picture stays near bicubic's
    blocks = out[0].reshape(shape[0], 4, shape[1], 4).mean(axis=(1, 3))
    assert np.abs(blocks - a[0]).max() <= (1e-4 if shape == (1, 1) else 0.05) * span
    assert np.abs(out[0] - keys_upsample(a[0], 4)).mean() <= (1e-4 if shape == (1, 1) else 0.05) * span


def test_seven_bands_run_band_by_band(tmp_path):
    l3 = read(LANDSAT)[:, :48, :48]
    a = np.concatenate([l3, l3[::-1], l3[:1]]).astype(np.uint16)   # 7 real bands
    src = write_raster(tmp_path / "seven.tif", a, dtype=gdal.GDT_UInt16)
    out, _ = sr(src, tmp_path / "o.tif")
    single, _ = sr(src, tmp_path / "b5.tif", bands=[5])
    assert out.shape == (7, 96, 96) and out.dtype == np.uint16
    np.testing.assert_array_equal(out[4], single[0])


def test_rotated_geotransform_is_refused(tmp_path):
    src = write_raster(tmp_path / "rot.tif", real_band()[None], gt=(500000, 30, 5, 4000000, 5, -30))
    with pytest.raises(SuperResError, match="rotated or sheared.*Warp"):
        sr(src, tmp_path / "o.tif")
    assert not (tmp_path / "o.tif").exists()


def test_no_crs_works_and_says_so(tmp_path):
    out, log = sr(write_raster(tmp_path / "nocrs.tif", real_band()[None], epsg=None), tmp_path / "o.tif")
    assert out.shape == (1, 128, 128)
    assert gdal.Open(str(tmp_path / "o.tif")).GetProjection() == ""
    assert any("no CRS" in line for line in log)


def test_broken_input_file(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(AERIAL.read_bytes()[:3000])
    with pytest.raises(SuperResError, match="Cannot open|Could not read"):
        sr(broken, tmp_path / "o.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tif"]


def test_input_is_never_modified(tmp_path):
    src = copy_with(LANDSAT, tmp_path / "in.tif")
    before, mtime = src.read_bytes(), src.stat().st_mtime_ns
    sr(src, tmp_path / "o.tif", ise_iterations=1)
    assert src.read_bytes() == before and src.stat().st_mtime_ns == mtime
    assert not (tmp_path / "in.tif.aux.xml").exists()


def test_mask_band(tmp_path):
    out, _ = sr(COLLAR, tmp_path / "o.tif", model="bicubic", write_mask=True)
    ds = gdal.Open(str(tmp_path / "o.tif"))
    mask = ds.GetRasterBand(1).GetMaskBand().ReadAsArray()
    np.testing.assert_array_equal(mask == 255, (out != 0).any(axis=0))


# --- parameters --------------------------------------------------------------

def test_extent_smaller_than_a_pixel_gives_that_pixel(tmp_path):
    ds = gdal.Open(str(LANDSAT))
    x0, pw, _, y0, _, ph = ds.GetGeoTransform()
    ext = (x0 + 10.2 * pw, y0 + 5.6 * ph, x0 + 10.4 * pw, y0 + 5.3 * ph)
    out, _ = sr(LANDSAT, tmp_path / "o.tif", model="bicubic", extent=ext)
    assert out.shape == (3, 2, 2)
    gt = gdal.Open(str(tmp_path / "o.tif")).GetGeoTransform()
    assert gt[0] == pytest.approx(x0 + 10 * pw, abs=1e-3 * pw)       # column 10
    assert gt[3] == pytest.approx(y0 + 5 * ph, abs=1e-3 * abs(ph))   # row 5
    full, _ = sr(LANDSAT, tmp_path / "full.tif", model="bicubic")
    assert_same_pixels(out, full[:, 10:12, 20:22])


def test_empty_extent_is_refused(tmp_path):
    with pytest.raises(SuperResError, match="EXTENT is empty"):
        sr(LANDSAT, tmp_path / "o.tif", extent=(10, 10, 10, 20))


@pytest.mark.parametrize("kw,match", [({"ise_iterations": -1}, "ISE_ITERATIONS"),
                                      ({"tile_size": 2}, "TILE_SIZE"),
                                      ({"scale": 3}, "SCALE must be 2, 4 or 8"),
                                      ({"model": "srgan"}, "Unknown model 'srgan'.*dganet"),
                                      ({"device": "tpu"}, "Unknown device"),
                                      ({"ise_kernel": "lanczos"}, "Unknown ISE kernel")])
def test_bad_parameters(tmp_path, kw, match):
    with pytest.raises(SuperResError, match=match):
        sr(LANDSAT, tmp_path / "o.tif", **kw)
    assert list(tmp_path.iterdir()) == []


# --- files -------------------------------------------------------------------

def test_missing_output_folder(tmp_path):
    with pytest.raises(SuperResError, match="does not exist"):
        sr(LANDSAT, tmp_path / "no" / "such" / "o.tif")


def test_unwritable_output_location(tmp_path):
    with pytest.raises(SuperResError, match="not writable|Cannot create the output"):
        sr(LANDSAT, "/proc/self/o.tif", model="bicubic")


def test_existing_output_open_elsewhere_is_replaced_atomically(tmp_path):
    out = tmp_path / "o.tif"
    sr(LANDSAT, out, model="nearest")
    held = gdal.Open(str(out))            # e.g. the layer still open in QGIS
    old = held.ReadAsArray()
    new, _ = sr(LANDSAT, out, model="bicubic", overwrite=True)
    assert not np.array_equal(new, old)
    np.testing.assert_array_equal(held.ReadAsArray(), old)   # the open handle still reads the old file
    held = None


# Run in a child process: the file-size limit is the kernel's, so GDAL's own
# write() fails with EFBIG exactly where a full disk gives ENOSPC. This works
# for any user; tests/unit/test_full_disk.py fills a real small filesystem.
_FULL_DISK = r"""
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # fail the write instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from osgeo import gdal
from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job
from backend.raster_io import GdalWriter
src, folder = sys.argv[1:3]
row_flush = GdalWriter.flush
for name, cache in (("tile", 256 * 1024), ("commit", 512 * 1024 * 1024)):
    gdal.SetCacheMax(cache)   # small: blocks reach the disk during the tile writes
    if name == "commit":      # large, and no row flush: they reach it only when the file is closed
        GdalWriter.flush = lambda self, where="": None
    try:
        run_job(SuperResolveJob(src, f"{folder}/{name}.tif", "nearest", 8, tile_size=64))
        print(json.dumps([name, "no error"]))
    except SuperResError as exc:
        print(json.dumps([name, str(exc)]))
# does this GDAL report libtiff's reason to its error handlers? (3.6 does; 3.13 prints it)
import numpy as np
messages = []
gdal.PushErrorHandler(lambda _cls, _no, msg: messages.append(msg))
gdal.SetCacheMax(256 * 1024)
ds = gdal.GetDriverByName("GTiff").Create(f"{folder}/probe.tif", 1024, 1024, 1, gdal.GDT_Byte)
ds.GetRasterBand(1).WriteArray(np.random.default_rng(0).integers(0, 255, (1024, 1024), np.uint8))
ds = None
gdal.PopErrorHandler()
import os
os.remove(f"{folder}/probe.tif")
print(json.dumps(["reports", any("File too large" in m for m in messages)]))
"""


def test_write_failure_such_as_a_full_disk(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from helpers import ROOT
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(LANDSAT), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    errors = dict(json.loads(line) for line in proc.stdout.splitlines())
    # GdalWriter.write's own branch, naming the tile's place (HR pixels, tiles of 64 x 8)
    m = re.fullmatch(r"Writing the output '.*tile.tif' failed at x (\d+), y (\d+): .+", errors["tile"])
    assert m and int(m[1]) % 512 == 0 and int(m[2]) % 512 == 0, errors["tile"]
    if errors["reports"]:   # the reason, also when GDAL failed no call for it (a block evicted)
        assert "File too large" in errors["tile"], errors["tile"]
    # the commit alone meets the failure: an error too, never a truncated output
    assert re.fullmatch(r"Writing the output '.*commit.tif' failed: .+", errors["commit"]), errors["commit"]
    assert list(tmp_path.iterdir()) == []


def test_output_equal_to_input(tmp_path):
    src = copy_with(LANDSAT, tmp_path / "in.tif")
    with pytest.raises(SuperResError, match="OUTPUT is the input"):
        sr(src, src, overwrite=True)


def test_cuda_without_gpu(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SuperResError, match="no CUDA GPU.*auto"):
        sr(LANDSAT, tmp_path / "o.tif", device="cuda")


def test_device_auto_uses_the_gpu_when_torch_sees_one(tmp_path):
    import torch
    out, log = sr(LANDSAT, tmp_path / "o.tif", model="bicubic", ise_iterations=1, device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"Device: {expected}" in log and out.shape == (3, 256, 256)
