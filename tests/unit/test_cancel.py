"""Cancel or error leaves no output and no partial file."""
import pytest

from backend.errors import Cancelled, SuperResError
from backend.job import SuperResolveJob, run_job
from helpers import LANDSAT


@pytest.mark.parametrize("at", [0, 4, 8])  # the first, a middle and the last of 9 tiles
def test_cancel_leaves_nothing(tmp_path, at):
    calls = {"n": 0}

    def is_cancelled():
        calls["n"] += 1
        return calls["n"] > at

    seen = []
    job = SuperResolveJob(str(LANDSAT), str(tmp_path / "out.tif"), "bicubic", 2, tile_size=48)
    with pytest.raises(Cancelled, match=f"before tile {at + 1} of 9"):
        run_job(job, progress=seen.append, is_cancelled=is_cancelled)
    assert list(tmp_path.iterdir()) == []
    # progress after each finished tile, as the share of output pixels done
    # (cores of 48, 48 and 32 px per row and column of tiles)
    sides = [48, 48, 32]
    areas = [h * w for h in sides for w in sides]
    assert len(seen) == at and (not seen or seen[-1] == pytest.approx(sum(areas[:at]) / 128 ** 2))


def test_error_mid_run_leaves_nothing(tmp_path, monkeypatch):
    from backend import raster_io
    real = raster_io.GdalReader.read
    count = {"n": 0}

    def flaky(self, window):
        count["n"] += 1
        if count["n"] == 3:
            raise OSError("simulated read failure")
        return real(self, window)

    monkeypatch.setattr(raster_io.GdalReader, "read", flaky)
    job = SuperResolveJob(str(LANDSAT), str(tmp_path / "out.tif"), "bicubic", 2, tile_size=48)
    with pytest.raises(SuperResError, match=r"tile 3 of 9 \(pixels x 85-128, y 0-59\)"):
        run_job(job)
    assert list(tmp_path.iterdir()) == []


def test_progress_moves_within_a_single_tile(tmp_path):
    """A small raster is one tile: progress still moves as the network works through it."""
    from helpers import AERIAL
    seen = []
    res = run_job(SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), "dganet", 4, 5), progress=seen.append)
    assert res.tiles == 1
    assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 0.5
