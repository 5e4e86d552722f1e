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


# --- cancel inside a tile ---------------------------------------------------------------

NETWORKS = ["dganet", "dganet_large", "gpsr", "degan", "rcan"]


class CountingCancel:
    """``is_cancelled`` that says yes from the ``at``-th question asked inside the network on.

    It counts every question, and those a layer asks (``cancel.watch``)
    apart: a batch of small tiles asks once per tile before the network starts.
    """

    def __init__(self, at=None):
        self.at, self.calls, self.in_layers, self.after = at, 0, 0, 0

    def __call__(self):
        import sys
        self.calls += 1
        self.in_layers += sys._getframe(1).f_code.co_name == "_hook"
        if self.at is not None and self.in_layers >= self.at:
            self.after += 1
            return True
        return False


@pytest.mark.parametrize("model", NETWORKS)
def test_cancel_lands_inside_one_large_tile(tmp_path, model):
    """One 128^2 tile: the cancel is seen at the 12th layer, and no layer runs after it."""
    from helpers import AERIAL
    asked = CountingCancel(at=12)
    job = SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), model, 4, 5, tile_size=1024)
    with pytest.raises(Cancelled, match="inside a tile"):
        run_job(job, is_cancelled=asked)
    assert asked.after == 1          # asked once more would mean a layer ran after the cancel
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", NETWORKS)
def test_every_layer_asks_before_it_runs(model):
    """The latency unit is one layer: a tile asks at least once per layer the network has, per pass."""
    from backend.cancel import leaf_modules
    from backend.engine import build_engine, engine_config
    from backend.normalise import BandStats
    from backend.tiling import super_resolve_tiles
    from backend.window import Window
    from backend.tiling import Tile
    import numpy as np
    engine = build_engine(engine_config(model, 4, BandStats((0.0,) * 3, (255.0,) * 3), 3, True, "uint8",
                                        ise_iterations=2))
    side = engine.fixed_tile or 40
    tile = Tile(0, Window(0, 0, side, side), Window(0, 0, side, side), Window(0, 0, side, side), 0)
    values = np.random.default_rng(0).integers(0, 255, (3, side, side), dtype=np.uint8)
    ran = []
    handles = [m.register_forward_hook(lambda *a: ran.append(1)) for m in leaf_modules(engine.net)]
    asked = CountingCancel()
    super_resolve_tiles(engine, [tile], [values], is_cancelled=asked)
    for h in handles:
        h.remove()
    # each layer that ran asked first; and once more before ISE
    assert asked.in_layers == len(ran) > 10 and asked.calls == asked.in_layers + 1, (asked.calls, len(ran))


def test_progress_moves_inside_a_tile_without_strips(tmp_path):
    """gpsr has no strips of its own: its layers move the progress within its one tile."""
    from helpers import AERIAL
    seen = []
    res = run_job(SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), "gpsr", 4, 0), progress=seen.append)
    assert res.tiles == 1
    inside = [f for f in seen if 0 < f < 1]
    assert len(inside) >= 10 and seen == sorted(seen) and seen[-1] == 1.0


def test_cancel_does_not_wait_for_a_writer_that_is_behind():
    """A batch of many small tiles (DEGAN's) goes to the writer at once: a cancel stops the writing too."""
    import time
    import numpy as np
    from backend.arrays import ArrayReader, ArrayWriter
    from backend.engine import build_engine, engine_config
    from backend.normalise import BandStats
    from backend.tiling import plan_tiles, run_tiles
    from backend.window import Window
    from helpers import read
    img = read(LANDSAT)
    engine = build_engine(engine_config("bicubic", 2, BandStats((0.0,) * 3, (1e4,) * 3), 3, False, img.dtype))
    tiles = plan_tiles(Window(0, 0, 128, 128), 128, 128, 16, 4)            # 64 tiles, batches of 16
    out = ArrayWriter((3, 256, 256), img.dtype)
    written = []
    real_write = out.write

    def slow_write(*args):
        time.sleep(0.2)
        written.append(1)
        real_write(*args)

    out.write = slow_write

    def is_cancelled():
        return len(written) > 0          # once the writer has begun a batch of 16
    with pytest.raises(Cancelled):
        run_tiles(ArrayReader(img, [None] * 3), out, tiles, engine, is_cancelled=is_cancelled, batch_size=16)
    assert len(written) <= 8, len(written)   # not the batch's 16, nor the queue's 32
    assert np.count_nonzero(out.array) < out.array.size
