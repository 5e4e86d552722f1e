"""A full disk at any point of a run: one clear line, and nothing at the output path.

The runs write into a real 4 MiB filesystem (a tmpfs mounted for each test,
so these tests need root, as here and in CI) that something else fills up
during the run: the disk-space check before the first tile passes. The
input is a committed crop; the output (512 x 512 x 3 bytes before
compression) fits the empty filesystem.
"""
import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from backend import raster_io
from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job
from backend.raster_io import GdalWriter, check_whole
from helpers import LANDSAT, ROOT, read

DISK_BYTES = 4 * 1024 * 1024
FULL = r"no space left on the device \(.+\); free some space or choose another folder\."


@pytest.fixture
def disk(tmp_path):
    """The mount point of a fresh 4 MiB tmpfs, unmounted after the test whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem (tmpfs) needs root; run the suite as root to test a full disk")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "superres-full-disk", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)]).returncode:
            subprocess.run(["umount", "-l", str(mnt)])   # still busy: detach it now, freed when let go


def fill(folder: Path) -> Path:
    """Fill the filesystem holding ``folder`` to its last byte with one file."""
    path = folder / "filler"
    chunk = 1 << 16
    with open(path, "ab", buffering=0) as f:
        while chunk:
            try:
                f.write(b"\xff" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return path


@pytest.fixture
def fills_after_first_tile(disk, monkeypatch):
    """The disk fills up once the first tile is written (GDAL writes the file's header then)."""
    write = GdalWriter.write

    def write_then_fill(self, *args, **kwargs):
        write(self, *args, **kwargs)
        if not (disk / "filler").exists():
            fill(disk)
    monkeypatch.setattr(GdalWriter, "write", write_then_fill)
    return disk


@pytest.fixture
def blocks_reach_disk_at_commit(monkeypatch):
    """No row flush and a cache larger than the output: GDAL writes the blocks only at commit."""
    monkeypatch.setattr(GdalWriter, "flush", lambda self, where="": None)
    cache = gdal.GetCacheMax()
    gdal.SetCacheMax(256 * 1024 * 1024)
    yield
    gdal.SetCacheMax(cache)


@pytest.fixture
def gdal_says_nothing(monkeypatch):
    """GDAL 3.13's behaviour: flushing and closing report success on a truncated file."""
    finish = GdalWriter._finish
    monkeypatch.setattr(GdalWriter, "_finish", lambda self: finish(self) and [])


def run_into(out: Path, **kw):
    kw = {"model": "nearest", "scale": 4, "tile_size": 32, **kw}
    with pytest.raises(SuperResError) as caught:
        run_job(SuperResolveJob(str(LANDSAT), str(out), **kw))
    return str(caught.value)


def left_in(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def gdal_reports_the_system_error(folder: Path) -> bool:
    """Whether this GDAL reports libtiff's failed writes to its error handlers (3.6 does;
    3.13 lets libtiff print them), probed on the full disk with GDAL alone."""
    messages = []
    gdal.PushErrorHandler(lambda _cls, _no, msg: messages.append(msg))
    try:
        with raster_io.gdal_exceptions():   # GDAL 3.13 warns without a mode chosen
            ds = gdal.GetDriverByName("GTiff").Create(str(folder / "probe.tif"), 256, 256, 1, gdal.GDT_Byte)
            ds.GetRasterBand(1).WriteArray(np.random.default_rng(0).integers(0, 255, (256, 256), np.uint8))
            ds.FlushCache()
    except RuntimeError as exc:
        messages.append(str(exc))
    finally:
        ds = None
        gdal.PopErrorHandler()
        (folder / "probe.tif").unlink(missing_ok=True)
    return any(os.strerror(errno.ENOSPC) in m for m in messages)


def test_full_disk_at_commit(fills_after_first_tile, blocks_reach_disk_at_commit):
    out = fills_after_first_tile / "out.tif"
    message = run_into(out)
    assert re.fullmatch(rf"Writing the output '{re.escape(str(out))}' failed: {FULL}", message), message
    if gdal_reports_the_system_error(fills_after_first_tile):
        # the cause GDAL reports to its handlers (GdalErrors), not only its last word
        assert os.strerror(errno.ENOSPC) in message, message
    assert left_in(fills_after_first_tile) == ["filler"]


def test_full_disk_at_commit_when_gdal_reports_success(fills_after_first_tile, blocks_reach_disk_at_commit,
                                                       gdal_says_nothing, monkeypatch):
    # only reading the file back (check_whole) can tell; and only the free space says why,
    # measured before the temporary file is deleted (which frees a page or more here)
    monkeypatch.setattr(raster_io, "FULL_DISK_BYTES", 1)
    out = fills_after_first_tile / "out.tif"
    message = run_into(out)
    assert re.fullmatch(rf"Writing the output '{re.escape(str(out))}' failed: {FULL}", message), message
    assert left_in(fills_after_first_tile) == ["filler"]


def test_blocks_a_failed_row_flush_dropped(disk, gdal_says_nothing, monkeypatch):
    # the audit's case: the disk fills after the first row of blocks, the row flush's
    # failures go unnoticed, GDAL drops the blocks it could not write, and closing has
    # nothing left to fail on (as GDAL 3.13 says); only the file itself can tell
    def flush_unchecked(self, where=""):
        with raster_io.gdal_exceptions(), raster_io.GdalErrors():
            try:
                self._ds.FlushCache()
            except RuntimeError:
                pass
        if not (disk / "filler").exists():
            fill(disk)
    monkeypatch.setattr(GdalWriter, "flush", flush_unchecked)
    out = disk / "out.tif"
    message = run_into(out, tile_size=64)   # one row of tiles is one row of blocks: no block is reread
    assert re.fullmatch(rf"Writing the output '{re.escape(str(out))}' failed: {FULL}", message), message
    assert left_in(disk) == ["filler"]


def test_an_empty_block_is_not_whole(tmp_path):
    # a block GDAL never wrote reads back as zeros without an error: its place must be checked
    path = tmp_path / "sparse.tif"
    with raster_io.gdal_exceptions():   # GDAL 3.13 warns without a mode chosen
        ds = gdal.GetDriverByName("GTiff").Create(str(path), 512, 512, 2, gdal.GDT_UInt16,
                                                  ["TILED=YES", "SPARSE_OK=TRUE", "COMPRESS=ZSTD"])
        values = read(LANDSAT)[:2].astype(np.uint16)
        for i in range(2):
            ds.GetRasterBand(i + 1).WriteArray(values[i], 256, 0)    # blocks (1, 0) only
        ds = None
    assert check_whole(path, 512, 512, 2) == ["block 0, 0 of band 1 is missing from the file (it was not written)"]
    assert check_whole(path, 512, 512, 3) == ["the file has 512 x 512 px and 2 bands instead of 512 x 512 px and 3"]
    whole = tmp_path / "whole.tif"
    with raster_io.gdal_exceptions():
        gdal.Translate(str(whole), str(path), creationOptions=["TILED=YES", "COMPRESS=ZSTD"])
    assert check_whole(whole, 512, 512, 2) == []


def test_a_cut_or_damaged_file_is_not_whole(tmp_path):
    path = tmp_path / "o.tif"
    with raster_io.gdal_exceptions():
        gdal.Translate(str(path), str(LANDSAT), creationOptions=["TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                                                                 "COMPRESS=ZSTD"])
        ds = gdal.Open(str(path))   # held: GDAL 3.6's bands do not keep their dataset open
        offset, length = (int(ds.GetRasterBand(1).GetMetadataItem(f"BLOCK_{k}_1_1", "TIFF"))
                          for k in ("OFFSET", "SIZE"))
        ds = None
    assert check_whole(path, 128, 128, 3) == []
    data = path.read_bytes()
    # the last block's bytes replaced: it is in its place, and only decoding it tells
    path.write_bytes(data[:offset] + (bytes(range(256)) * (length // 256 + 1))[:length] + data[offset + length:])
    assert check_whole(path, 128, 128, 3), "a block that does not decode was taken for whole"
    # cut short: the block's place is past the end of the file
    path.write_bytes(data[:offset + length // 2])
    problems = check_whole(path, 128, 128, 3)
    assert problems, "a file cut short was taken for whole"


def test_full_disk_mid_run_names_the_tile(fills_after_first_tile):
    out = fills_after_first_tile / "out.tif"
    message = run_into(out)
    # the first row of tiles fails at its flush (GDAL 3.6), or the next row when it rereads
    # a block the flush did not store (3.13)
    assert re.fullmatch(rf"Writing the output '{re.escape(str(out))}' failed at x \d+, y \d+: {FULL}",
                        message), message
    assert left_in(fills_after_first_tile) == ["filler"]


def test_full_disk_as_a_cloud_optimised_geotiff(disk, monkeypatch):
    # the GeoTIFF fits; the disk is full when it is rewritten as a COG
    out = disk / "out.tif"
    make_cog = GdalWriter._make_cog

    def fill_then_make_cog(self):
        fill(disk)
        return make_cog(self)
    monkeypatch.setattr(GdalWriter, "_make_cog", fill_then_make_cog)
    message = run_into(out, cog=True)
    assert re.fullmatch(rf"Writing the output '{re.escape(str(out))}' failed \(as a Cloud-Optimised "
                        rf"GeoTIFF\): {FULL}", message), message
    assert left_in(disk) == ["filler"]


def test_full_disk_through_the_command_line(disk):
    out = disk / "out.tif"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "superresolve", str(LANDSAT), str(out),
                             "--model", "bicubic", "--scale", "4", "--tile", "32"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        # the disk fills while the run writes: once the temporary output exists,
        # the run is paused, the disk filled, and the run resumed
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".out.partial-") for p in disk.iterdir()):
            assert proc.poll() is None, f"the run ended before writing: {proc.communicate()}"
            assert time.monotonic() < deadline, "no temporary output after 120 s"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            assert not out.exists()
            fill(disk)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, stderr
    # one line: no traceback, no GDAL FutureWarning, no GDAL or libtiff messages
    assert len(stderr.splitlines()) == 1, stderr
    assert re.fullmatch(rf"Error: Writing the output '{re.escape(str(out))}' failed( at x \d+, y \d+)?: "
                        rf"{FULL}\n", stderr), stderr
    assert left_in(disk) == ["filler"]


@pytest.mark.parametrize("callers_mode", [0, 1])
def test_gdal_runs_with_exceptions_and_the_callers_mode_is_kept(tmp_path, monkeypatch, callers_mode):
    # GDAL 3.13 warns, and GDAL 4 changes behaviour, wherever a GDAL call runs without
    # a mode chosen; every call of a run, on every thread, must have exceptions on
    from osgeo import osr
    seen = []

    def spy(owner, name, module=gdal):
        real = getattr(owner, name)

        def call(*args, **kwargs):
            seen.append((name, module.GetUseExceptions()))
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, call)
    for owner, name in ((gdal, "OpenEx"), (gdal, "Translate"), (gdal.Driver, "Create"),
                        (gdal.Band, "ReadAsArray"), (gdal.Band, "WriteArray"), (gdal.Band, "ReadRaster"),
                        (gdal.Dataset, "FlushCache")):
        spy(owner, name)
    if hasattr(gdal, "_SetExceptionsLocal"):   # GDAL 3.7+, where osr warns too (3.6 keeps its mode apart)
        spy(osr.SpatialReference, "ImportFromWkt", osr)
    was = gdal.GetUseExceptions()
    gdal.UseExceptions() if callers_mode else gdal.DontUseExceptions()
    try:
        run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "o.tif"), "bicubic", 2, cog=True))
        after = gdal.GetUseExceptions()
    finally:
        gdal.UseExceptions() if was else gdal.DontUseExceptions()
    assert {name for name, _ in seen} - {"ImportFromWkt"} == {
        "OpenEx", "Translate", "Create", "ReadAsArray", "WriteArray", "ReadRaster", "FlushCache"}
    assert [call for call in seen if call[1] != 1] == []
    assert after == callers_mode
