"""The fast paths give the reference's pixels: bf16, big rasters in flat memory, Dask, COG output."""
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from backend import engine as engine_mod
from backend.errors import Cancelled, SuperResError
from backend.evaluate import evaluate_file
from backend.job import SuperResolveJob, run_job, super_resolve_array
from helpers import AERIAL, LANDSAT, ROOT, read

BF16 = engine_mod.bf16_supported("cpu")


# --- precision -----------------------------------------------------------------------

@pytest.mark.skipif(not BF16, reason="this CPU has no native bf16")
@pytest.mark.parametrize("path,scale", [(AERIAL, 4), (LANDSAT, 2)])
def test_bf16_agrees_with_fp32(path, scale):
    """The stated tolerance: at most 0.02 dB of PSNR on the committed crops, ISE on."""
    a = evaluate_file(str(path), scale, ["dganet"], [3], device="cpu", precision="fp32")[0]
    b = evaluate_file(str(path), scale, ["dganet"], [3], device="cpu", precision="bf16")[0]
    assert abs(a.psnr - b.psnr) <= 0.02, (a.psnr, b.psnr)
    img = read(path)[:, :48, :48]
    x = super_resolve_array(img, scale, "dganet", 0, device="cpu", precision="fp32").astype(float)
    y = super_resolve_array(img, scale, "dganet", 0, device="cpu", precision="bf16").astype(float)
    span = float(img.max() - img.min())
    assert 0 < np.abs(x - y).max() and np.sqrt(((x - y) ** 2).mean()) < 0.002 * span


def test_fp32_fallback_where_bf16_is_missing(monkeypatch):
    img = read(AERIAL)[:, :40, :40]
    ref = super_resolve_array(img, 2, "dganet", 1, device="cpu", precision="fp32")
    assert engine_mod.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(engine_mod, "bf16_supported", lambda device: False)
    assert engine_mod.resolve_precision("bf16", "cpu") == "fp32"
    np.testing.assert_array_equal(super_resolve_array(img, 2, "dganet", 1, device="cpu", precision="bf16"), ref)


def test_precision_setting_from_the_environment(monkeypatch, tmp_path):
    import backend.calibrate as calibrate_mod
    monkeypatch.setenv(calibrate_mod.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(engine_mod.PRECISION_ENV, raising=False)
    monkeypatch.setattr(calibrate_mod, "measure", lambda device, paths: {"fp32": 1.0, "fp32+cl": 1.0, "bf16": 3.0})
    assert engine_mod.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setenv(engine_mod.PRECISION_ENV, "fp32")
    assert engine_mod.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setenv(engine_mod.PRECISION_ENV, "fp8")
    with pytest.raises(SuperResError, match="Unknown precision 'fp8'"):
        engine_mod.resolve_precision("auto", "cpu")


def test_job_reports_its_precision(tmp_path):
    log = []
    res = run_job(SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), "dganet", 2, precision="fp32"),
                  log=log.append)
    assert res.precision == "fp32" and any(line == "Device: cpu, fp32" for line in log)


# --- a raster much larger than a tile, in flat memory --------------------------------

def _mosaic(path, size):
    """A size^2 RGB mosaic of the committed aerial crop, mirrored end to end (real pixels)."""
    a = read(AERIAL)
    reps = -(-size // a.shape[1])
    rows = np.concatenate([a[:, ::-1] if i % 2 else a for i in range(reps)], axis=1)
    big = np.concatenate([rows[:, :, ::-1] if j % 2 else rows for j in range(reps)], axis=2)[:, :size, :size]
    src = gdal.Open(str(AERIAL))
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 3, gdal.GDT_Byte, ["TILED=YES"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for i in range(3):
        ds.GetRasterBand(i + 1).WriteArray(big[i])
        ds.GetRasterBand(i + 1).SetNoDataValue(255)
        ds.GetRasterBand(i + 1).SetColorInterpretation(src.GetRasterBand(i + 1).GetColorInterpretation())
    ds = None
    return big


def _peak_rss_kib(args):
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "backend", "superresolve", *args],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


def test_large_raster_in_flat_memory_gives_the_reference_pixels(tmp_path):
    """4x the pixels at most 10% more peak memory, and the same pixels as one piece."""
    small, big = tmp_path / "small.tif", tmp_path / "big.tif"
    _mosaic(small, 768)
    pixels = _mosaic(big, 1536)
    common = ["--model", "bicubic", "--scale", "2", "--ise", "2", "--tile", "192"]
    rss_small = _peak_rss_kib([str(small), str(tmp_path / "s.tif"), *common])
    rss_big = _peak_rss_kib([str(big), str(tmp_path / "b.tif"), *common])
    assert rss_big <= 1.1 * rss_small, (rss_small, rss_big)
    ref = super_resolve_array(pixels, 2, "bicubic", 2, nodata=255, tile_size=1536, device="cpu")
    np.testing.assert_array_equal(read(tmp_path / "b.tif"), ref)


# --- Dask ---------------------------------------------------------------------------------

def test_dask_local_cluster_is_byte_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")   # the provenance timestamp, fixed
    local, dask = tmp_path / "local.tif", tmp_path / "dask.tif"
    kw = dict(model="dganet", scale=2, ise_iterations=1, tile_size=40)
    run_job(SuperResolveJob(str(LANDSAT), str(local), **kw))
    log = []
    run_job(SuperResolveJob(str(LANDSAT), str(dask), dask="local:2", **kw), log=log.append)
    assert any(line.startswith("Dask: 2 worker(s)") for line in log)
    assert dask.read_bytes() == local.read_bytes()


@pytest.fixture(scope="module")
def threads_cluster():
    """An in-process cluster (threads): a test can reach into its workers."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_cancel_leaves_nothing(tmp_path, threads_cluster):
    calls = {"n": 0}

    def cancel_at_third():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled, match="of 16"):
        run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 2, tile_size=32,
                                dask=threads_cluster.scheduler_address), is_cancelled=cancel_at_third)
    assert list(tmp_path.iterdir()) == []


def test_dask_worker_error_is_one_clear_message(tmp_path, threads_cluster, monkeypatch):
    from backend import tiling

    def broken(engine, tile, values):
        if tile.index == 3:
            raise MemoryError("worker ran out of memory")
        return real(engine, tile, values)

    real = tiling.super_resolve_tile
    monkeypatch.setattr(tiling, "super_resolve_tile", broken)
    with pytest.raises(SuperResError, match="Dask worker failed on tile 4 of 16: MemoryError: worker ran out"):
        run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 2, tile_size=32,
                                dask=threads_cluster.scheduler_address))
    assert list(tmp_path.iterdir()) == []


def test_dask_bad_address_is_clear(tmp_path):
    with pytest.raises(SuperResError, match="Cannot reach the Dask scheduler|local:N"):
        run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 2, dask="local:zero"))
    assert list(tmp_path.iterdir()) == []


# --- output ---------------------------------------------------------------------------------

def test_cog_output_is_valid_and_has_the_pixels(tmp_path):
    from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate
    plain, cog = tmp_path / "plain.tif", tmp_path / "cog.tif"
    run_job(SuperResolveJob(str(AERIAL), str(plain), "bicubic", 4))
    run_job(SuperResolveJob(str(AERIAL), str(cog), "bicubic", 4, cog=True))
    warnings, errors, _ = validate(str(cog), full_check=True)
    assert errors == [], errors
    ds = gdal.Open(str(cog))
    assert ds.GetRasterBand(1).GetOverviewCount() >= 1
    np.testing.assert_array_equal(read(cog), read(plain))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "plain.tif"]


def test_output_is_compressed_tiled_with_a_predictor(tmp_path):
    run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 2))
    ds = gdal.Open(str(tmp_path / "o.tif"))
    meta = ds.GetMetadata("IMAGE_STRUCTURE")
    assert meta["COMPRESSION"] in ("ZSTD", "DEFLATE") and meta.get("PREDICTOR") == "2"
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]


def test_compression_on_all_cores_changes_no_byte_of_the_output(tmp_path, monkeypatch):
    import hashlib
    from backend import raster_io
    from backend.job import network_elsewhere
    # all cores only where the network is not on this CPU
    assert [network_elsewhere(d, k) for d, k in (("cpu", None), ("cpu", "local:2"), ("cuda", None),
                                                 ("cpu", "tcp://10.0.0.5:8786"), ("cpu", "tcp://127.0.0.1:8786"),
                                                 ("cpu", "localhost:8786"), ("cpu", "tcp://[::1]:8786"),
                                                 ("cpu", "tls://gis-node:8786"))] == \
        [False, False, True, True, False, False, False, True]
    assert "NUM_THREADS=ALL_CPUS" in raster_io.creation_options(gdal.GDT_UInt16, False, threads=True)
    assert not any(o.startswith("NUM_THREADS") for o in raster_io.creation_options(gdal.GDT_UInt16, False))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")   # the same timestamp in both files
    # x8 of the 128 px crop: 1024^2 x 3 output, 48 blocks for the compression threads
    asked = []
    options = raster_io.creation_options
    monkeypatch.setattr(raster_io, "creation_options",
                        lambda t, big, threads=False: asked.append(threads) or options(t, big, threads))
    run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "one.tif"), "bicubic", 8))
    # the job hands the writer its choice: as if the network ran on a GPU
    monkeypatch.setattr("backend.job.network_elsewhere", lambda device, dask: True)
    run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "threads.tif"), "bicubic", 8))
    assert asked == [False, True]
    assert hashlib.sha256((tmp_path / "threads.tif").read_bytes()).hexdigest() == \
        hashlib.sha256((tmp_path / "one.tif").read_bytes()).hexdigest()


def test_not_enough_disk_space_is_refused_before_any_work(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(SuperResError, match=r"Not enough free disk space .* needs up to 0\.01 GB and 0\.00 GB are free"):
        run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 8))
    assert list(tmp_path.iterdir()) == []
